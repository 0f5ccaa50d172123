"""Benchmark the browser app headless (Debian's Chromium + Playwright) beside img.ly's
in-browser remover (`@imgly/background-removal`, a pinned dev dependency) and `alphacut remove`.

    flock /tmp/alphacut-bench.lock .venv/bin/python bench/browser_bench.py \
        [--sizes 1,12,48] [--batch 10] [--apps alphacut,imgly] [--json out.json]

Both apps run in the same process, on the same photos, in the same Chromium, each in a
fresh browser (fresh profile) behind a cross-origin-isolated local server (COOP/COEP), on
threaded WASM. img.ly's library is bundled by esbuild (a dev dependency) into a small test
page (bench/imgly/) whose `publicPath` points at the data package in `node_modules`
(its `medium` model: the same fp16 IS-Net weights alphacut's default is widened from).

Timing pass (nothing samples memory: that slows threaded WASM by about 40 %; `--rounds N`:
N passes with the apps' order alternating, each cell's median and every round's ratios, as
the machine's speed drifts over minutes):
- cold time to first result: fresh profile, page load → model download and session, first
  ~1 MP photo done; bytes the server sent until then (first-visit transfer);
- warm per-photo time at ~1, 12 and 48 MP, queue → result file (alphacut: the verified file
  offered for download, with the worker's stage times and inference time; img.ly: its own
  inference time, its ONNX Runtime session.run calls timed in its test page);
- optionally a batch of N 12 MP photos queued at once (`--batch N`), beside the sum of their
  inference times;
- the longest main-thread stall while a photo is processed.
Memory pass (`--no-memory` skips it), a second fresh browser per app running the same
photos: Chromium's peak RSS and PSS (summed over this run's Chromium processes, sampled
from /proc every 100 ms) while each photo ran.
Then the ratios alphacut / img.ly, and the Python pipeline's time on the same files.
Photos are real (scikit-image's coffee) upscaled with Lanczos and saved as JPEG.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SIZES = {1: (1224, 816), 12: (4000, 3000), 48: (8000, 6000)}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def make_photos(d: Path, sizes) -> dict[int, Path]:
    from PIL import Image
    from skimage import data

    src = Image.fromarray(data.coffee())  # 600x400 real photo
    out = {}
    for mp in sizes:
        w, h = SIZES[mp]
        p = d / f"photo-{mp}mp.jpg"
        src.resize((w, h), Image.Resampling.LANCZOS).save(p, quality=90)
        out[mp] = p
    return out


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


class MemorySampler(threading.Thread):
    """Peak of the summed RSS / PSS of Chromium processes started by this Python process, per
    phase (set ``phase`` before each photo), and each phase's PSS by process kind at its peak."""

    def __init__(self):
        super().__init__(daemon=True)
        self.phase = "start"
        self.phases: dict[str, tuple[int, int]] = {}
        self.parts: dict[str, dict[str, int]] = {}  # phase → PSS per process kind at its peak
        self.stop = threading.Event()

    def sample(self):
        rss = pss = 0
        parts: dict[str, int] = {}
        for pid in descendants(os.getpid()):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if not f.read().startswith("chrom"):
                        continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().replace(b"\0", b" ").split()  # Chromium rewrites its title
                kind = next((a[7:].decode() for a in args if a.startswith(b"--type=")), "browser")
                before = pss
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1]) * 1024
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                parts[kind] = parts.get(kind, 0) + pss - before
            except OSError:
                continue
        r, p = self.phases.get(self.phase, (0, 0))
        if pss > p:
            self.parts[self.phase] = parts
        self.phases[self.phase] = (max(r, rss), max(p, pss))

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.1)


def wait_js(page, expr, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if page.evaluate(expr):
            return
        time.sleep(0.1)
    raise TimeoutError(expr)


STALL_PROBE = """() => {
  window.__stall = 0; let last = performance.now();
  clearInterval(window.__probe);
  window.__probe = setInterval(() => { const t = performance.now(); window.__stall = Math.max(window.__stall, t - last - 50); last = t; }, 50);
}"""


class App:
    """One app under test: where its page is, and where it records its events."""

    def __init__(self, name: str, url: str, events: str, counter: ByteCounter):
        self.name, self.url, self.events, self.counter = name, url, events, counter

    def finished(self) -> str:
        return f"{self.events}.filter(e => e.type === 'done' || e.type === 'error')"


def run_files(page, app: App, paths: list[Path], timeout=900) -> tuple[float, list[dict]]:
    """Queue ``paths`` at once; wall time until all are finished, and their events."""
    n = page.evaluate(f"{app.finished()}.length")
    page.evaluate(STALL_PROBE)
    t = time.perf_counter()
    page.set_input_files("#files", [str(p) for p in paths])
    wait_js(page, f"{app.finished()}.length >= {n + len(paths)}", timeout)
    wall = time.perf_counter() - t
    evs = page.evaluate(f"{app.finished()}.slice({n})")
    for ev in evs:
        if ev["type"] == "error":
            raise RuntimeError(f"{app.name}: {ev.get('name', '')}: {ev['message']}")
    return wall, evs


def run_one(page, app: App, path: Path) -> dict:
    wall, (ev,) = run_files(page, app, [path])
    out = {"wall_s": wall, "max_main_thread_stall_ms": page.evaluate("window.__stall")}
    if "timings" in ev:  # alphacut's worker reports its stages
        out["stages_s"] = {k: v / 1000 for k, v in ev["timings"].items()}
        out["backend"] = ev["backend"]
    elif ev.get("infer_ms"):  # img.ly's page times its ONNX Runtime session.run calls
        out["infer_s"] = ev["infer_ms"] / 1000
    return out


class ByteCounter:
    """Response body bytes a server sent (the first-visit transfer)."""

    def __init__(self):
        self.bytes = 0
        self.lock = threading.Lock()

    def add(self, n: int):
        with self.lock:
            self.bytes += n


def counting(app, counter: ByteCounter):
    """ASGI middleware counting response body bytes."""

    async def wrapped(scope, receive, send):
        async def counted(msg):
            if msg["type"] == "http.response.body":
                counter.add(len(msg.get("body", b"")))
            await send(msg)

        await app(scope, receive, counted)

    return wrapped


def imgly_app(tmp: Path):
    """The img.ly test page as an ASGI app: its bundle, the data package's dist/ under data/,
    and the same cross-origin isolation headers as alphacut's server."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    www = tmp / "imgly"
    www.mkdir(exist_ok=True)
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    data = ROOT / "node_modules" / "@imgly" / "background-removal-data" / "dist"
    if not esbuild.exists() or not (ROOT / "node_modules" / "@imgly" / "background-removal").is_dir() or not data.is_dir():
        raise SystemExit("img.ly column: run `npm ci --ignore-scripts` (dev dependencies) first")
    subprocess.run([str(esbuild), str(ROOT / "bench" / "imgly" / "page.js"), "--bundle", "--format=esm",
                    "--platform=browser", "--log-level=warning", f"--outfile={www / 'page.js'}"], check=True)
    shutil.copyfile(ROOT / "bench" / "imgly" / "index.html", www / "index.html")

    class Isolated(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            r = await call_next(request)
            r.headers["Cross-Origin-Opener-Policy"] = "same-origin"
            r.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
            r.headers["Cross-Origin-Resource-Policy"] = "same-origin"
            return r

    return Starlette(routes=[Mount("/data", StaticFiles(directory=data)),
                             Mount("/", StaticFiles(directory=www, html=True))],
                     middleware=[Middleware(Isolated)])


def run_app(name: str, pw, photos: dict, sizes: list[int], batch: list[Path], args, mem: MemorySampler | None) -> dict:
    """One app in a fresh browser: cold first result, then each size warm, then the batch."""
    from browser.conftest import CHROMIUM, Server

    counter = ByteCounter()
    if name == "alphacut":
        from alphacut.models.catalog import DEFAULT_MODEL
        from alphacut.serve.app import create_app

        server = Server(counting(create_app(model=args.model or DEFAULT_MODEL), counter))
        app = App(name, server.url + args.query, "window.alphacut.events", counter)
    else:
        server = Server(counting(imgly_app(args.tmp), counter))
        app = App(name, server.url, "window.imgly.events", counter)
    res: dict = {}
    if args.disk_profile:  # a fresh profile on disk (Cache Storage on disk, as in a normal window)
        browser = pw.chromium.launch_persistent_context(str(Path(tempfile.mkdtemp(dir=args.tmp, prefix="profile-"))),
                                                        executable_path=CHROMIUM, args=ARGS)
    else:  # a fresh incognito context: Cache Storage (alphacut's cached model) held in memory
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        if mem:
            mem.phase = "cold"
        page = browser.new_page() if args.disk_profile else browser.new_context().new_page()
        t = time.perf_counter()
        page.goto(app.url)
        wait_js(page, f"window.{app.events.split('.')[1]} && {app.events}.some(e => e.type === 'inited')", 120)
        res["cold"] = run_one(page, app, photos[1])
        res["cold_first_result_s"] = time.perf_counter() - t
        res["first_visit_mb"] = counter.bytes / 1e6
        if name == "alphacut":
            ready = page.evaluate("window.alphacut.events.find(e => e.type === 'ready')")
            res["cold_model_s"] = ready["timings"]["model"] / 1000
            res["cold_session_s"] = ready["timings"]["session"] / 1000
        for mp in sizes:
            runs = []
            for _ in range(args.repeat):
                if mem:
                    mem.phase = f"{mp}mp"
                runs.append(run_one(page, app, photos[mp]))
            res[f"{mp}mp"] = min(runs, key=lambda r: r["wall_s"])
            walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
            print(f"{name} {mp} MP: {walls} s", flush=True)
        if batch:
            if mem:
                mem.phase = "batch"
            wall, evs = run_files(page, app, batch, timeout=3600)
            res["batch"] = {"n": len(batch), "wall_s": wall,
                            "infer_sum_s": sum(e["timings"]["infer"] for e in evs) / 1000 if name == "alphacut" else None}
            print(f"{name} batch of {len(batch)}: {wall:.1f} s", flush=True)
    finally:
        browser.close()
        server.stop()
    return res


def python_times(photos: dict[int, Path], model: str | None) -> dict[int, dict]:
    from alphacut import Remover

    r = Remover(model)  # the model the page runs
    r.remove(photos[min(photos)]).encode("png")  # warm-up: session creation
    out = {}
    for mp, p in photos.items():
        t = time.perf_counter()
        cut = r.remove(p)
        cut.encode("png")
        out[mp] = {"wall_s": time.perf_counter() - t, "stages_s": dict(cut.timings)}
    return out


def median_result(runs: list[dict]) -> dict:
    """One app's results over rounds: each photo's median run (by wall time), the median of
    each number."""
    out: dict = {}
    for k, v in runs[0].items():
        vals = [r[k] for r in runs if k in r]
        if isinstance(v, dict) and "wall_s" in v:
            out[k] = sorted(vals, key=lambda x: x["wall_s"])[(len(vals) - 1) // 2]
        elif isinstance(v, (int, float)):
            out[k] = statistics.median(vals)
        else:
            out[k] = v
    return out


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def report(res: dict, sizes: list[int]) -> None:
    t = res["time"]
    a, i = t.get("alphacut", {}), t.get("imgly", {})
    print(f"\nmachine: {os.cpu_count()} CPUs, load average before/after {res['load_before']} / {res['load_after']}; "
          f"alphacut backend: {a.get('cold', {}).get('backend', '-')}; img.ly: threaded WASM (its proxy worker)")
    print("| photo | img.ly s | alphacut s | alphacut / img.ly | alphacut inference s | img.ly inference s | python s | alphacut stages (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for mp in sizes:
        k = f"{mp}mp"
        aw, iw = a.get(k, {}).get("wall_s"), i.get(k, {}).get("wall_s")
        st = a.get(k, {}).get("stages_s", {})
        py = res["python"].get(k, {}).get("wall_s")
        ii = i.get(k, {}).get("infer_s")
        w, h = SIZES[mp]
        print(f"| {w * h / 1e6:.1f} MP warm | {iw or 0:.2f} | {aw or 0:.2f} | **{ratio(aw, iw)}** | {st.get('infer', 0):.2f} "
              f"(queue → file / inference {ratio(aw, st.get('infer'))}) | {ii or 0:.2f} ({ratio(iw, ii)}) | {py or 0:.2f} | "
              f"{', '.join(f'{s} {v:.2f}' for s, v in st.items())} |")
    ac, ic = a.get("cold_first_result_s"), i.get("cold_first_result_s")
    print(f"| cold first result | {ic or 0:.2f} | {ac or 0:.2f} | **{ratio(ac, ic)}** | "
          f"{a.get('cold', {}).get('stages_s', {}).get('infer', 0):.2f} | {i.get('cold', {}).get('infer_s') or 0:.2f} | | "
          f"model {a.get('cold_model_s', 0):.2f}, "
          f"session {a.get('cold_session_s', 0):.2f} |")
    am, im = a.get("first_visit_mb"), i.get("first_visit_mb")
    print(f"| first-visit transfer MB | {im or 0:.1f} | {am or 0:.1f} | {ratio(am, im)} | | | | |")
    if "batch" in a or "batch" in i:
        ab, ib = a.get("batch", {}), i.get("batch", {})
        print(f"| batch of {ab.get('n') or ib.get('n')} x 12 MP | {ib.get('wall_s') or 0:.2f} | {ab.get('wall_s') or 0:.2f} | "
              f"**{ratio(ab.get('wall_s'), ib.get('wall_s'))}** | sum {ab.get('infer_sum_s') or 0:.2f} "
              f"(batch / inference sum {ratio(ab.get('wall_s'), ab.get('infer_sum_s'))}) | | | |")
    if len(res.get("rounds", [])) > 1:
        cells = [(f"{mp} MP", lambda r, k=f"{mp}mp": r.get(k, {}).get("wall_s")) for mp in sizes]
        cells.append(("cold", lambda r: r.get("cold_first_result_s")))
        per = "; ".join(f"{label} " + " / ".join(ratio(f(rd.get("alphacut", {})), f(rd.get("imgly", {}))) for rd in res["rounds"])
                        for label, f in cells)
        print(f"| alphacut / img.ly in each of {len(res['rounds'])} rounds | {per} | | | | | | |")
    stall = max((a.get(f"{mp}mp", {}).get("max_main_thread_stall_ms", 0) for mp in sizes), default=0)
    istall = max((i.get(f"{mp}mp", {}).get("max_main_thread_stall_ms", 0) for mp in sizes), default=0)
    print(f"| longest main-thread stall ms | {istall:.0f} | {stall:.0f} | | | | | |")
    m = res.get("memory", {})
    if m:
        print("\nChromium peak memory (separate pass, sampled every 100 ms), RSS / PSS GiB:")
        print("| phase | img.ly | alphacut | PSS alphacut / img.ly |")
        print("|---|---:|---:|---:|")
        for ph in ["cold", *[f"{mp}mp" for mp in sizes], "batch"]:
            ma, mi = m.get("alphacut", {}).get(ph), m.get("imgly", {}).get(ph)
            if not ma and not mi:
                continue
            f = lambda v: f"{v[0]:.2f} / {v[1]:.2f}" if v else "-"
            print(f"| {ph} | {f(mi)} | {f(ma)} | **{ratio(ma and ma[1], mi and mi[1])}** |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,12,48", help="megapixel classes to run (of 1, 12, 48)")
    ap.add_argument("--apps", default="alphacut,imgly", help="apps to run (alphacut, imgly)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per warm photo (the fastest is reported)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="timing passes, the apps' order alternating; the table gives each cell's median "
                         "and every round's ratios")
    ap.add_argument("--batch", type=int, default=0, help="also queue N 12 MP photos at once")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    ap.add_argument("--memory-only", action="store_true", help="skip the timing pass")
    ap.add_argument("--disk-profile", action="store_true",
                    help="fresh profiles on disk instead of incognito contexts (whose Cache Storage, "
                         "alphacut's cached model, is held in the browser process's memory)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--no-python", action="store_true", help="skip the Python pipeline timings")
    ap.add_argument("--query", default="", help="alphacut page query, e.g. '?threads=1'")
    ap.add_argument("--model", default=None, help="model the server hands to the page and the Python side runs (default: the catalog default)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    apps = args.apps.split(",")

    from playwright.sync_api import sync_playwright

    args.tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    atexit.register(shutil.rmtree, args.tmp, True)  # the photos, img.ly's page, any disk profiles
    photos = make_photos(args.tmp, sorted({1, *sizes, *([12] if args.batch else [])}))
    batch = []
    for n in range(args.batch):
        batch.append(args.tmp / f"batch-{n}.jpg")
        shutil.copyfile(photos[12], batch[-1])
    res: dict = {"time": {}, "memory": {}, "python": {}, "load_before": round(os.getloadavg()[0], 1)}
    with sync_playwright() as pw:
        # timing pass (nothing samples memory), in rounds that alternate the apps' order, so
        # that a machine whose speed drifts over minutes weighs on both sides alike
        rounds = []
        for r in range(args.rounds if not args.memory_only else 0):
            order = apps if r % 2 == 0 else apps[::-1]
            rounds.append({name: run_app(name, pw, photos, sizes, batch, args, None) for name in order})
        if rounds:
            res["rounds"] = rounds
            res["time"] = {name: median_result([rd[name] for rd in rounds]) for name in apps}
        if not args.no_memory:
            args.repeat = 1
            for name in apps:
                mem = MemorySampler()
                mem.start()
                run_app(name, pw, photos, sizes, [], args, mem)
                mem.stop.set()
                mem.join()
                res["memory"][name] = {k: (r / 2**30, p / 2**30) for k, (r, p) in mem.phases.items()}
                for phase, parts in mem.parts.items():
                    kinds = ", ".join(f"{k} {v / 2**30:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
                    print(f"{name} {phase} peak PSS by process (GiB): {kinds}", flush=True)
    res["load_after"] = round(os.getloadavg()[0], 1)
    if not args.no_python and "alphacut" in apps:
        res["python"] = {f"{k}mp": v for k, v in python_times({mp: photos[mp] for mp in sizes}, args.model).items()}
    report(res, sizes)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

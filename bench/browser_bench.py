"""Benchmark the browser app headless (Debian's Chromium + Playwright) beside `alphacut remove`.

    .venv/bin/python bench/browser_bench.py [--sizes 1,12,48] [--json out.json]

Prints, for threaded WASM in the page:
- cold time to first result: fresh profile, page load → model download, SHA-256 check,
  ONNX Runtime session, first image (~1 MP) done and verified;
- warm time for the same ~1 MP photo, then per-image time for ~12 and ~48 MP photos
  (from queueing to the verified file offered for download), with the worker's stage times;
- the longest main-thread stall seen while a photo is processed (the page must not freeze);
- Chromium's peak memory: the sum of RSS (and of PSS, which does not double-count shared
  pages) of this run's Chromium processes, sampled from /proc every 100 ms;
and the Python pipeline's time (`alphacut.Remover`: decode, model, refine, compose, PNG
encode, verify) on the same files, after one warm-up run.
Photos are real (scikit-image's coffee) upscaled with Lanczos and saved as JPEG.
"""

from __future__ import annotations

import argparse
import json
import os
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
    """Peak of the summed RSS / PSS of Chromium processes started by this Python process."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_rss = self.peak_pss = 0
        self.peak_parts: dict[str, int] = {}
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
        if pss > self.peak_pss:
            self.peak_parts = parts
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)

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


def run_one(page, path: Path, timeout=900) -> dict:
    n = page.evaluate("window.alphacut.events.filter(e => e.type === 'done' || e.type === 'error').length")
    page.evaluate(STALL_PROBE)
    t = time.perf_counter()
    page.set_input_files("#files", str(path))
    wait_js(page, f"window.alphacut.events.filter(e => e.type === 'done' || e.type === 'error').length > {n}", timeout)
    wall = time.perf_counter() - t
    ev = page.evaluate("window.alphacut.events.filter(e => e.type === 'done' || e.type === 'error').at(-1)")
    if ev["type"] == "error":
        raise RuntimeError(f"{path.name}: {ev['message']}")
    stall = page.evaluate("window.__stall")
    return {"wall_s": wall, "stages_s": {k: v / 1000 for k, v in ev["timings"].items()},
            "backend": ev["backend"], "max_main_thread_stall_ms": stall}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,12,48", help="megapixel classes to run (of 1, 12, 48)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--no-python", action="store_true", help="skip the Python pipeline timings")
    ap.add_argument("--query", default="", help="page query, e.g. '?threads=1'")
    ap.add_argument("--model", default=None, help="model the server hands to the page and the Python side runs (default: the catalog default)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from browser.conftest import CHROMIUM, Server
    from playwright.sync_api import sync_playwright

    from alphacut.models.catalog import DEFAULT_MODEL
    from alphacut.serve.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    photos = make_photos(tmp, sorted({1, *sizes}))
    server = Server(create_app(model=args.model or DEFAULT_MODEL))
    res: dict = {"browser": {}, "python": {}, "load_before": round(os.getloadavg()[0], 1)}
    mem = MemorySampler()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        mem.start()
        ctx = browser.new_context()
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(server.url + args.query)
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 120)
        first = run_one(page, photos[1])
        res["browser"]["cold_first_result_s"] = time.perf_counter() - t
        ready = page.evaluate("window.alphacut.events.find(e => e.type === 'ready')")
        res["browser"]["cold_model_s"] = ready["timings"]["model"] / 1000
        res["browser"]["cold_session_s"] = ready["timings"]["session"] / 1000
        res["browser"]["cold_image"] = first
        res["browser"]["backend"] = first["backend"]
        for mp in sizes:
            res["browser"][f"{mp}mp"] = run_one(page, photos[mp])
            print(f"browser {mp} MP: {res['browser'][f'{mp}mp']['wall_s']:.1f} s", flush=True)
        res["browser"]["peak_rss_gib"] = mem.peak_rss / 2**30
        res["browser"]["peak_pss_gib"] = mem.peak_pss / 2**30
        res["browser"]["peak_pss_by_process_gib"] = {k: round(v / 2**30, 2) for k, v in mem.peak_parts.items()}
        # second visit (the first page closed): model from Cache Storage
        page.close()
        page2 = ctx.new_page()
        t = time.perf_counter()
        page2.goto(server.url + args.query)
        wait_js(page2, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 120)
        run_one(page2, photos[1])
        res["browser"]["second_visit_first_result_s"] = time.perf_counter() - t
        mem.stop.set()
        mem.join()
        browser.close()
    server.stop()
    if not args.no_python:
        res["python"] = {f"{k}mp": v for k, v in python_times({mp: photos[mp] for mp in sizes}, args.model).items()}

    b = res["browser"]
    print(f"\nbackend: {b['backend']}; load average before/after: {res['load_before']} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"cold, time to first result (~1 MP): {b['cold_first_result_s']:.1f} s "
          f"(model {b['cold_model_s']:.1f} s, session {b['cold_session_s']:.1f} s)")
    print(f"second visit (model from Cache Storage), first result: {b['second_visit_first_result_s']:.1f} s")
    print(f"{'photo':>8} {'browser s':>10} {'python s':>9} {'stall ms':>9}  browser stages (s)")
    for mp in sizes:
        bb = b[f"{mp}mp"]
        py = res["python"].get(f"{mp}mp", {}).get("wall_s", float("nan"))
        st = ", ".join(f"{k} {v:.2f}" for k, v in bb["stages_s"].items())
        w, h = SIZES[mp]
        print(f"{w * h / 1e6:>6.1f}MP {bb['wall_s']:>10.1f} {py:>9.1f} {bb['max_main_thread_stall_ms']:>9.0f}  {st}")
    print(f"Chromium peak memory: RSS sum {b['peak_rss_gib']:.2f} GiB, PSS sum {b['peak_pss_gib']:.2f} GiB "
          f"(PSS by process type at the peak: {b['peak_pss_by_process_gib']})")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

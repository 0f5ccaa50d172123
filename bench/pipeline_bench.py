"""Benchmark of the Python pipeline (a benchmark, not a test: it prints numbers).

Per image size (about 1, 12 and 48 megapixels) it prints each stage's time and the ratio of
end-to-end time to inference alone. Then it times whole processes on one batch (three ~1 MP
photos and one 48 MP photo): `alphacut remove`, four bare ONNX Runtime inferences of the same
model (the floor), and rembg with its `dis_custom` session on the same IS-Net file, with each
process's peak memory. rembg is optional and no dependency: install it in a venv of its own
and pass that venv's python with --rembg-python; it is skipped if missing.

    .venv/bin/python bench/pipeline_bench.py [--sizes 1,12,48] [--no-rembg] [--rembg-python PY] [--no-batch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def make_photo(path: Path, megapixels: float, seed: int = 0) -> Path:
    """A real photo (scikit-image's) resized to the target size, with sensor-like noise."""
    from skimage import data

    src = [data.astronaut, data.coffee, data.chelsea][seed % 3]()
    h0, w0 = src.shape[:2]
    scale = (megapixels * 1e6 / (w0 * h0)) ** 0.5
    w, h = int(w0 * scale), int(h0 * scale)
    img = Image.fromarray(src).resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16)
    noise = np.random.default_rng(seed).integers(-3, 4, arr.shape, dtype=np.int16)
    Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


REMBG_EACH = textwrap.dedent(
    """
    import os, sys, time
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    from pathlib import Path
    from rembg import new_session, remove
    s = new_session("dis_custom", model_path=sys.argv[1])
    paths = sys.argv[3:]
    remove(Path(paths[0]).read_bytes(), session=s)  # warm-up, as for alphacut
    for p in paths:
        t = time.perf_counter()
        data = remove(Path(p).read_bytes(), session=s)
        (Path(sys.argv[2]) / (Path(p).stem + ".png")).write_bytes(data)
        print(Path(p).name, time.perf_counter() - t)
    """
)


def rembg_times(paths: list[Path], out_dir: Path, rpy: str) -> dict[str, float]:
    """Seconds per photo for rembg (warm session, the same IS-Net file, file to PNG file)."""
    from alphacut.models import store

    model = store.resolve(None)[1]
    proc = subprocess.run([rpy, "-c", REMBG_EACH, str(model), str(out_dir), *map(str, paths)], capture_output=True,
                          env={**os.environ, "U2NET_HOME": str(model.parent)})
    if proc.returncode != 0:
        print(proc.stderr.decode()[-1000:])
        return {}
    return {name: float(t) for name, t in (line.split() for line in proc.stdout.decode().splitlines())}


def stage_times(paths: list[Path], out_dir: Path) -> dict[str, tuple[float, float]]:
    from alphacut import Remover
    from alphacut._memory import configure_malloc

    configure_malloc()  # as the CLI and the server set it
    r = Remover()
    r.remove(paths[0])  # warm-up: session creation and first-run allocations
    totals = {}
    print(f"{'image':>14} {'MP':>5} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'total':>7} {'÷infer':>7}")
    for p in paths:
        t0 = time.perf_counter()
        cut = r.remove(p)
        cut.save(out_dir / (p.stem + ".png"), overwrite=True)
        total = time.perf_counter() - t0
        w, h = cut.size
        row = " ".join(f"{cut.timings.get(s, 0):9.3f}" for s in STAGES)
        print(f"{p.name:>14} {w * h / 1e6:5.1f} {row} {total:7.2f} {total / cut.timings['infer']:7.2f}")
        totals[p.name] = (total, cut.timings["infer"])
    return totals


STAGES = ["decode", "preprocess", "infer", "upscale", "settle", "refine", "compose", "encode", "verify", "write"]


PEAK = "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); sys.exit(p.returncode) if p.returncode else print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def run_measured(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time and peak RSS (GiB) of one child process (measured under a fresh parent, so
    ru_maxrss covers that process alone)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, **kw)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr.decode()[-2000:])
        return wall, float("nan"), proc
    lines = proc.stdout.decode().split()
    return wall, int(lines[-1]) / 2**20, proc


BARE = textwrap.dedent(
    """
    import sys, time
    from alphacut.models import store  # first: alphacut turns ONNX Runtime's telemetry off before it loads
    from alphacut.stages import infer
    import numpy as np, onnxruntime as ort
    spec, path = store.resolve(None)
    s = infer.get_session(path, spec)
    x = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024)).astype(np.float32) * 0.5
    t = time.perf_counter()
    for _ in range(int(sys.argv[1])):
        s.run(x)
    print(time.perf_counter() - t)
    """
)

REMBG = textwrap.dedent(
    """
    import os, sys, time
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # as alphacut sets it, before ONNX Runtime loads
    from pathlib import Path
    from rembg import new_session, remove
    s = new_session("dis_custom", model_path=sys.argv[1])
    out = Path(sys.argv[2])
    for p in sys.argv[3:]:
        data = remove(Path(p).read_bytes(), session=s)
        (out / (Path(p).stem + ".png")).write_bytes(data)
    """
)


def batch(paths: list[Path], tmp: Path, with_rembg: bool, rembg_python: str | None = None) -> dict:
    py = sys.executable
    results = {}
    wall, peak, proc = run_measured([py, "-c", BARE, str(len(paths))])
    results["bare_runs_s"] = float(proc.stdout.decode().split()[-2])
    results["bare_peak_gib"] = peak
    results["bare_process_s"] = wall
    out = tmp / "alphacut-out"
    wall, peak, _ = run_measured([str(VENV_BIN / "alphacut"), "remove", *map(str, paths), "-o", str(out), "-q", "--overwrite"])
    results["alphacut_s"], results["alphacut_peak_gib"] = wall, peak
    if with_rembg:
        rpy = rembg_python or py
        if subprocess.run([rpy, "-c", "import rembg"], capture_output=True).returncode != 0:
            print(f"rembg not importable by {rpy}: pip install rembg, or --rembg-python a venv's python that has it (skipping)")
        else:
            out = tmp / "rembg-out"
            out.mkdir(exist_ok=True)
            from alphacut.models import store

            # the same IS-Net file; rembg looks for custom models in its own folder: point it at our store
            model = store.resolve(None)[1]
            wall, peak, _ = run_measured([rpy, "-c", REMBG, str(model), str(out), *map(str, paths)],
                                         env={**os.environ, "U2NET_HOME": str(model.parent)})
            results["rembg_s"], results["rembg_peak_gib"] = wall, peak
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,12,48", help="megapixels per image, comma-separated")
    ap.add_argument("--no-rembg", action="store_true")
    ap.add_argument("--rembg-python", help="a Python that can import rembg (its own venv: rembg is no dependency of ours)")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--no-stages", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="alphacut-bench-") as d:
        tmp = Path(d)
        print(f"cpu cores: {os.cpu_count()}")
        if not args.no_stages:
            sizes = [float(s) for s in args.sizes.split(",")]
            paths = [make_photo(tmp / f"photo-{mp:g}mp.jpg", mp, i) for i, mp in enumerate(sizes)]
            totals = stage_times(paths, tmp)
            if not args.no_rembg:
                rpy = args.rembg_python or sys.executable
                if subprocess.run([rpy, "-c", "import rembg"], capture_output=True).returncode == 0:
                    (tmp / "rembg-each").mkdir(exist_ok=True)
                    for name, t in rembg_times(paths, tmp / "rembg-each", rpy).items():
                        ours, infer = totals[name]
                        print(f"{name:>14}: rembg {t:.2f} s, alphacut {ours:.2f} s (alphacut / rembg {ours / t:.2f}; "
                              f"alphacut's inference {infer:.2f} s)")
        if not args.no_batch:
            small = [make_photo(tmp / f"small-{i}.jpg", 1.0, i) for i in range(3)]
            big = make_photo(tmp / "big-48mp.jpg", 48.0, 1)
            res = batch(small + [big], tmp, not args.no_rembg, args.rembg_python)
            print(json.dumps(res, indent=1))
            floor = res["bare_runs_s"]
            print(f"batch of 3 x 1 MP + 1 x 48 MP: alphacut {res['alphacut_s']:.1f} s "
                  f"({res['alphacut_s'] / floor:.2f}x four bare inferences = {floor:.1f} s; "
                  f"bare process incl. start-up {res['bare_process_s']:.1f} s), peak {res['alphacut_peak_gib']:.2f} GiB")
            if "rembg_s" in res:
                print(f"rembg (dis_custom, the same IS-Net file): {res['rembg_s']:.1f} s "
                      f"({res['rembg_s'] / floor:.2f}x four bare inferences), peak {res['rembg_peak_gib']:.2f} GiB")


if __name__ == "__main__":
    main()

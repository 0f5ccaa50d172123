"""Cost of the settle stage and of `--quality best` against one inference, in one process
(a benchmark, not a test: it prints numbers). Hold the bench lock on a shared machine:

    flock /tmp/alphacut-bench.lock .venv/bin/python bench/settle_bench.py [--mp 12] [--photo P] [--rounds 3]
    .venv/bin/python bench/settle_bench.py --memory 48     # peak RSS only, a separate pass

Timing pass: the photo (default: the dev set's two flowers, where settle has work to do,
resized to ``--mp`` megapixels and saved as JPEG) is cut out in turn by Removers for the
default mode without and with settle, and for `--quality best` (settle on); every round
prints each one's stage times, so the inference of the same round sits beside them.
Memory pass: one `alphacut.remove`-like call in a fresh process for each configuration,
peak RSS from the kernel (``ru_maxrss``), nothing sampled while timing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT.parent / "shared" / "eval" / "dev" / "images" / "alphamatting_GT01.png"  # from /work/main; give --photo in a worktree
CONFIGS = {  # name -> Remover keywords
    "default, no settle": {"settle": False},
    "default": {},
    "best": {"quality": "best"},
}


def make_photo(src: Path, megapixels: float, out: Path) -> Path:
    with Image.open(src) as im:
        im = im.convert("RGB")
        k = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
        im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.BICUBIC).save(out, quality=92)
    return out


def timing(photo: Path, rounds: int) -> None:
    from alphacut import Remover
    from alphacut._memory import configure_malloc

    configure_malloc()
    removers = {name: Remover(**kw) for name, kw in CONFIGS.items()}
    for r in removers.values():
        r.remove(photo)  # warm-up: session, first-run allocations, SciPy import
    stages = ("decode", "preprocess", "infer", "settle", "upscale", "refine", "compose")
    print(f"{'round':>5} {'config':>20} " + " ".join(f"{s:>10}" for s in stages) + f" {'uncertain':>9}")
    ratios: dict[str, list[float]] = {n: [] for n in CONFIGS}
    for k in range(rounds):
        for name, r in removers.items():
            cut = r.remove(photo)
            t = cut.timings
            print(f"{k:>5} {name:>20} " + " ".join(f"{t.get(s, 0):10.3f}" for s in stages) + f" {cut.uncertain:9.3f}")
            # one inference: this configuration's own (best runs two), so a load spike between
            # configurations does not enter the ratio
            one = t["infer"] / (2 if name == "best" else 1)
            mask_work = t["infer"] + t.get("settle", 0) + t["upscale"] + t["refine"]
            ratios[name].append(mask_work / one)
            ratios.setdefault(name + ": settle / one inference", []).append(t.get("settle", 0) / one)
            ratios.setdefault(name + ": all stages / one inference", []).append(sum(t.values()) / one)
    print("\n(inference + settle + upscale + refine) / one inference of the same call (median):")
    for name, v in ratios.items():
        print(f"  {name:>40}: {np.median(v):.3f}  ({', '.join(f'{x:.3f}' for x in v)})")


def memory(photo: Path) -> None:
    code = (
        "import resource, sys, json\n"
        "from alphacut import Remover\n"
        "from alphacut._memory import configure_malloc\n"
        "configure_malloc()\n"
        "kw = json.loads(sys.argv[2])\n"
        "cut = Remover(**kw).remove(sys.argv[1])\n"
        "cut.save(sys.argv[3], overwrite=True)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)\n"
    )
    with tempfile.TemporaryDirectory() as d:
        for name, kw in CONFIGS.items():
            out = subprocess.run([sys.executable, "-c", code, str(photo), json.dumps(kw), str(Path(d) / "o.png")],
                                 capture_output=True, text=True, check=True)
            print(f"{name:>20}: peak RSS {float(out.stdout.split()[-1]):.2f} GiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    ap.add_argument("--mp", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory", type=float, default=None, help="megapixels: measure peak memory instead of time")
    a = ap.parse_args()
    if not a.photo.is_file():
        sys.exit(f"{a.photo}: not found (give --photo)")
    with tempfile.TemporaryDirectory() as d:
        mp = a.memory or a.mp
        t = time.perf_counter()
        photo = make_photo(a.photo, mp, Path(d) / f"photo-{mp:g}mp.jpg")
        with Image.open(photo) as im:
            print(f"{a.photo.name} at {im.width}x{im.height} ({im.width * im.height / 1e6:.1f} MP), "
                  f"made in {time.perf_counter() - t:.1f} s")
        memory(photo) if a.memory else timing(photo, a.rounds)


if __name__ == "__main__":
    main()

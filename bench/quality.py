"""Quality and refinement-cost bench (thin wrapper over alphacut.evaluate).

    .venv/bin/python bench/quality.py [SET_DIR] [--variant NAME ...] [--json OUT] [--markdown OUT]
    .venv/bin/python bench/quality.py --refine-cost [--sizes 1,4,12,48]

The first form scores variants on a set (default ../shared/eval/dev) and can write the
Markdown table used in docs/quality.md. The second times each refinement on a real photo
and mask from the set, resized to the given megapixel counts (the model mask upscaled as the
pipeline would), and prints ms per image and per MP next to one measured inference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT.parent / "shared" / "eval" / "dev"


def refine_cost(set_dir: Path, sizes: list[float], methods: list[str], with_inference: bool = False) -> None:
    from alphacut import evaluate as ev
    from alphacut.stages import mask as mm
    from alphacut.stages import refine as rf

    items = {it.name: it for it in ev.load_set(set_dir)}
    it = items.get("alphamatting_GT04") or next(iter(items.values()))
    rgba0 = ev.load_image(it.image)
    outs = ev.Outputs()  # the default model
    raw, infer_s = outs.get(it, rgba0, "pipeline")
    small = mm.from_output(raw, outs.spec)
    h0, w0 = rgba0.shape[:2]
    print(f"photo {it.name} {w0}x{h0}; one inference (cached measurement): {infer_s:.2f} s")
    print(f"{'MP':>6} {'size':>11} " + " ".join(f"{m + ' ms':>16} {'ms/MP':>7}" for m in methods)
          + "  band%" + ("  infer ms  refine/infer" if with_inference else ""))
    for mp in sizes:
        k = (mp * 1e6 / (w0 * h0)) ** 0.5
        w, h = round(w0 * k), round(h0 * k)
        rgba = np.asarray(Image.fromarray(rgba0).resize((w, h), Image.Resampling.BICUBIC))
        full = mm.upscale(small, (w, h))
        band = float(((full > 0.004) & (full < 0.996)).mean())
        cells = []
        for m in methods:
            best = float("inf")
            for _ in range(2 if mp < 20 else 1):
                t = time.perf_counter()
                rf.refine(m, rgba, full)
                best = min(best, time.perf_counter() - t)
            cells.append(f"{best * 1000:16.0f} {best * 1000 / (w * h / 1e6):7.1f}")
        line = f"{w * h / 1e6:6.1f} {f'{w}x{h}':>11} " + " ".join(cells) + f"  {100 * band:5.0f}"
        if with_inference:
            # Same process, same moment: preprocess + one model run, then the default refinement
            # again, alternated, so the ratio holds on a busy machine.
            from alphacut.stages import preprocess

            ti, tr = [], []
            for _ in range(2):
                t = time.perf_counter()
                outs.session.run(preprocess.preprocess(rgba, outs.spec))
                ti.append(time.perf_counter() - t)
                t = time.perf_counter()
                rf.refine(rf.DEFAULT_REFINE, rgba, full)
                tr.append(time.perf_counter() - t)
            line += f"  {1000 * min(ti):8.0f}  {100 * min(tr) / min(ti):9.1f}%"
        print(line)
        del rgba, full


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir", nargs="?", type=Path, default=DEFAULT_SET)
    ap.add_argument("--model", default=None, help="model id (default: the catalog default)")
    ap.add_argument("--variant", action="append", dest="variants")
    ap.add_argument("--json", type=Path, dest="json_out")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--refine-cost", action="store_true")
    ap.add_argument("--sizes", default="1,4,12,48")
    ap.add_argument("--methods", default="cwgf,cwgf-grey,gf-colour")
    ap.add_argument("--with-inference", action="store_true", help="also time one inference per size")
    a = ap.parse_args(argv)
    if not (a.set_dir / "manifest.json").is_file():
        print(f"{a.set_dir}: no evaluation set there", file=sys.stderr)
        return 2
    if a.refine_cost:
        refine_cost(a.set_dir, [float(s) for s in a.sizes.split(",")], a.methods.split(","), a.with_inference)
        return 0
    from alphacut import evaluate as ev

    if a.markdown is None:
        return ev.main(a.set_dir, a.model, a.variants, a.json_out)
    results = ev.evaluate(a.set_dir, a.model, a.variants)
    rows = ev.aggregate(results)
    ev.print_tables(rows)
    a.markdown.write_text(ev.markdown_table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

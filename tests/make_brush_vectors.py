"""Generate tests/vectors/brush.json from the Python brush (stages/brush.py, contract rule 10).

Run `python tests/make_brush_vectors.py` after an intended change to the brush rule; the JS
tests (tests/js/brush.test.js) and tests/stages/test_brush.py read the file, so the browser
editor and the Python stage cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alphacut.stages import brush

OUT = Path(__file__).parent / "vectors" / "brush.json"


def cases():
    rng = np.random.default_rng(20261202)
    ones = np.ones((9, 12), np.float32)
    yield "hard_dot_erase", ones, [{"mode": "erase", "radius": 3.0, "softness": 0.0, "points": [[6.0, 4.5]]}]
    yield "soft_line_erase", ones, [{"mode": "erase", "radius": 3.5, "softness": 0.6, "points": [[1.25, 2.0], [10.5, 6.75]]}]
    m = rng.random((10, 14), dtype=np.float32)
    yield "soft_restore_crossing_itself", m, [{"mode": "restore", "radius": 2.75, "softness": 0.5,
                                               "points": [[2.0, 2.0], [11.0, 8.0], [11.0, 2.0], [2.0, 8.0], [2.0, 8.0]]}]
    yield "fully_soft_partly_outside", m, [{"mode": "erase", "radius": 4.0, "softness": 1.0, "points": [[-1.5, 3.3], [5.2, -2.0]]}]
    yield "erase_then_restore", m, [
        {"mode": "erase", "radius": 2.5, "softness": 0.3, "points": [[3.0, 5.0], [9.0, 5.0]]},
        {"mode": "restore", "radius": 1.7, "softness": 0.9, "points": [[6.1, 1.0], [6.1, 9.5]]},
    ]
    yield "tiny_radius", m, [{"mode": "erase", "radius": 0.4, "softness": 0.25, "points": [[4.5, 4.5], [4.6, 4.4]]}]
    yield "outside_the_image", m, [{"mode": "erase", "radius": 2.0, "softness": 0.0, "points": [[30.0, 30.0], [40.0, 31.0]]}]


def main() -> None:
    out = []
    for name, mask, strokes in cases():
        got = mask.copy()
        for s in strokes:
            brush.apply_stroke(got, s)
        h, w = mask.shape
        out.append({"name": name, "width": w, "height": h, "mask": [float(v) for v in mask.reshape(-1)],
                    "strokes": strokes, "expected": [float(v) for v in got.reshape(-1)]})
    OUT.write_text(json.dumps({"rule": "docs/alpha-contract.md rule 10", "cases": out}, indent=None) + "\n")


if __name__ == "__main__":
    main()

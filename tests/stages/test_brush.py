"""The brush rule (docs/alpha-contract.md rule 10) in Python, against the shared vectors the
browser editor (web/brush.js) also passes, and against the rule computed pixel by pixel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from alphacut.stages import brush

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "brush.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_shared_vectors(case):
    m = np.array(case["mask"], np.float32).reshape(case["height"], case["width"])
    for s in case["strokes"]:
        brush.apply_stroke(m, s)
    assert m.reshape(-1).tolist() == case["expected"]


def test_vectors_file_is_current(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mbv", Path(__file__).parents[1] / "make_brush_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path / "brush.json")
    mod.main()
    assert json.loads((tmp_path / "brush.json").read_text()) == VECTORS


def _reference(mask, s):
    """The rule literally: per pixel, the largest weight over the segments, then the edit."""
    h, w = mask.shape
    out = mask.copy()
    pts = s["points"]
    segs = [(pts[0], pts[0])] + list(zip(pts[:-1], pts[1:]))
    r, soft = s["radius"], s["softness"]
    inner = r * (1 - soft)
    for y in range(h):
        for x in range(w):
            best = 0.0
            for (ax, ay), (bx, by) in segs:
                px, py = x + 0.5, y + 0.5
                dx, dy = bx - ax, by - ay
                n = dx * dx + dy * dy
                t = 0.0 if n == 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / n))
                d = math.hypot(px - (ax + t * dx), py - (ay + t * dy))
                wt = 1.0 if d <= inner else 0.0 if d >= r else (r - d) / (r - inner)
                best = max(best, wt)
            if best > 0:
                m = float(mask[y, x])
                out[y, x] = np.float32(m * (1 - best) if s["mode"] == "erase" else m + (1 - m) * best)
    return out


def test_matches_the_rule_pixel_by_pixel():
    rng = np.random.default_rng(3)
    m = rng.random((23, 31), dtype=np.float32)
    for s in ({"mode": "erase", "radius": 5.5, "softness": 0.35, "points": [[2.2, 3.1], [25.0, 19.5], [29.0, 2.0]]},
              {"mode": "restore", "radius": 3.0, "softness": 1.0, "points": [[15.0, 11.0]]}):
        got = brush.apply_stroke(m.copy(), s)
        ref = _reference(m, s)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7)
        assert (got != m).any()


def test_erase_to_zero_in_the_core_and_untouched_outside():
    m = np.full((40, 40), 0.8, np.float32)
    brush.apply_stroke(m, {"mode": "erase", "radius": 6, "softness": 0.5, "points": [[5, 20], [35, 20]]})
    assert (m[20, 5:35] == 0).all()  # on the path, within the hard core of radius 3
    assert (m[:13] == np.float32(0.8)).all() and (m[28:] == np.float32(0.8)).all()
    band = m[15:18, 10:30]  # 2.5..4.5 px from the path: the soft edge
    assert ((band > 0) & (band < np.float32(0.8))).any()


def test_bad_strokes_are_refused():
    m = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError):
        brush.apply_stroke(m, {"mode": "paint", "radius": 1, "softness": 0, "points": [[1, 1]]})
    with pytest.raises(ValueError):
        brush.apply_stroke(m, {"mode": "erase", "radius": 0, "softness": 0, "points": [[1, 1]]})
    with pytest.raises(ValueError):
        brush.apply_stroke(m.astype(np.float64), {"mode": "erase", "radius": 1, "softness": 0, "points": [[1, 1]]})

"""Generate tests/js/refine_vectors.json: the Python refinement's output on small synthetic
photos, which the JS port (src/alphacut/serve/web/refine.js) must match within 1e-4.

Run `.venv/bin/python tests/js/make_refine_vectors.py` after an intended change to
alphacut.stages.refine; tests/js/refine.test.mjs and tests/test_refine.py read the file.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from alphacut.stages import refine as rf

OUT = Path(__file__).parent / "refine_vectors.json"


def scene(h: int, w: int, seed: int):
    """A textured two-region photo with a wavy boundary and an upscaled-looking soft mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    boundary = w * 0.5 + 0.15 * w * np.sin(yy / max(h, 8) * 6.0) + 0.05 * w * np.sin(yy / 3.0)
    d = xx - boundary
    fg = d < 0
    rgb = np.empty((h, w, 3), np.float32)
    rgb[..., 0] = np.where(fg, 190 + 30 * np.sin(xx / 5), 40 + 20 * np.cos(yy / 7))
    rgb[..., 1] = np.where(fg, 120, 150 + 40 * np.sin((xx + yy) / 9))
    rgb[..., 2] = np.where(fg, 60, 200)
    rgb += rng.normal(0, 6, rgb.shape).astype(np.float32)
    rgba = np.concatenate([np.clip(np.rint(rgb), 0, 255), np.full((h, w, 1), 255)], -1).astype(np.uint8)
    width = max(1.5, max(h, w) / 1024 * 3)
    m = 1 / (1 + np.exp(np.clip((d + 2.0) / width, -60, 60)))  # slightly misplaced, soft
    m = np.clip(m + rng.normal(0, 0.01, m.shape), 0, 1).astype(np.float32)
    m[m < 0.002] = 0.0
    m[m > 0.998] = 1.0
    return rgba, m


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()


def cases():
    d = rf.CWGF
    yield "cwgf 48x64 (cell 1)", 48, 64, 1, d, {}
    yield "cwgf 64x40 tiles of 8", 64, 40, 2, replace(d, tile=8), {"tile": 8}
    yield "cwgf 6x1536 (cell 2)", 6, 1536, 3, d, {}
    yield "cwgf 2600x4 (cell 3, tall)", 2600, 4, 4, d, {}
    yield "gf-colour 40x50", 40, 50, 5, rf.GF_COLOUR, {"gamma": 0, "k": 0}
    yield "cwgf-grey 40x50", 40, 50, 6, replace(d, colour=False), {"colour": False}
    yield "cwgf 3x2 tiny", 3, 2, 7, d, {}


def main():
    out = []
    for name, h, w, seed, params, js_opts in cases():
        rgba, m = scene(h, w, seed)
        ref = rf.guided_refine(rgba, m, params)
        out.append({"name": name, "width": w, "height": h, "options": js_opts,
                    "rgba_b64": b64(rgba), "mask_f32_b64": b64(m), "expected_f32_b64": b64(ref)})
    OUT.write_text(json.dumps({"tolerance": 1e-4, "cases": out}, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(out)} cases)")


if __name__ == "__main__":
    main()

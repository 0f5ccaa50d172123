"""Generate tests/js/settle_vectors.json: the Python settle stage's output on synthetic
scenes, which the JS port (src/alphacut/serve/web/settle.js) must match (tests/js/settle.test.mjs).

Run `.venv/bin/python tests/js/make_settle_vectors.py` after an intended change to
alphacut.stages.settle. Arrays are stored zlib-compressed, base64 (the scenes are flat).
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np

from alphacut.stages import settle as st

OUT = Path(__file__).parent / "settle_vectors.json"
G = st.GRID


def pack(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 9)).decode()


def scene(seed: int):
    """A red subject with a half-believed red part and a half-believed blue part attached, a
    detached red patch, a thin band, textured blue background; shifted by ``seed``."""
    yy, xx = np.mgrid[:G, :G]
    rgb = np.zeros((G, G, 3), np.uint8)
    rgb[...] = (30, 40, 200)
    rgb += ((xx * 7 + yy * 13 + seed) % 12).astype(np.uint8)[..., None]
    m = np.full((G, G), 0.02, np.float32)
    o = 10 * seed
    red = (210, 40, 30)
    core, part, blue, far = (slice(100 + o, 300), slice(100, 300)), (slice(300, 400), slice(120, 280 - o)), \
        (slice(120, 280), slice(300, 380)), (slice(430, 500), slice(420, 500))
    for sl in (core, part, far):
        rgb[sl] = red
    rgb[part] += ((xx[part] * 3 + yy[part]) % 20).astype(np.uint8)[..., None]
    m[core] = 0.97
    m[part] = 0.35 + 0.002 * ((xx[part] + yy[part]) % 50)
    m[blue] = 0.4
    m[far] = 0.35
    m[98 + o:100 + o, 100:300] = 0.5
    return rgb, m


def main() -> None:
    cases = []
    for seed, big in ((0, True), (1, False)):
        rgb, m = scene(seed)
        mask = np.repeat(np.repeat(m, 2, 0), 2, 1) if big else m
        if big:  # not a plain repeat: a smooth ramp so the halving is exercised
            mask = (mask * np.float32(0.98) + np.float32(0.01) * (np.arange(mask.shape[1], dtype=np.float32) // 64 / 16)).astype(np.float32)
        s = st.settle(rgb, mask)
        cases.append({
            "name": f"scene {seed} on a {mask.shape[0]} grid", "size": mask.shape[0],
            "guide": pack(rgb), "mask": pack(mask), "expected": pack(s.mask),
            "settled": s.settled, "uncertain": s.uncertain, "box": list(s.box) if s.box else None,
        })
    # the guide from a tensor built by the same integer formula on both sides
    y, x = np.mgrid[: 2 * G, : 2 * G]
    pix = np.stack([(x * 3 + y * 5 + c * 7) % 256 for c in range(3)]).astype(np.float32)
    mean, std = [128.0, 128.0, 128.0], [256.0, 256.0, 256.0]
    tensor = ((pix - 128) / 256)[None].astype(np.float32)
    guide = st.guide_from_tensor(tensor, mean, std)
    OUT.write_text(json.dumps({
        "cases": cases, "tolerance": 1e-6,
        "guide": {"mean": mean, "std": std, "formula": "(x*3 + y*5 + c*7) % 256", "expected": pack(guide)},
    }))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""Generate tests/vectors/contract.json from the Python implementation of the alpha contract.

Run `python tests/make_vectors.py` after an intended change to the contract; the JS unit
tests and tests/test_contract.py read the file, so the two implementations cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alphacut.stages import compose

OUT = Path(__file__).parent / "vectors" / "contract.json"


def cases():
    rng = np.random.default_rng(20261128)
    f32 = np.float32
    boundary = [
        f32(0.5 / 255), np.nextafter(f32(0.5 / 255), f32(0)), f32(2.5 / 255), f32(127.5 / 255),
        np.nextafter(f32(127.5 / 255), f32(1)), f32(0.9999), f32(1.0), f32(0.0), f32(0.5),
        f32(254.5 / 255), np.nextafter(f32(254.5 / 255), f32(0)),
    ]
    yield "boundaries", np.array([[[255, 10, 20, 255]] * len(boundary)], np.uint8), np.array([boundary], np.float32)
    # Input alpha × mask, hidden RGB under alpha 0, every alpha level.
    a_in = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    m = rng.random((16, 16), dtype=np.float32)
    yield "alpha_levels", np.dstack([rgb, a_in]), m
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    yield "hidden_rgb", rgba, np.ones((8, 8), np.float32)
    m = (rng.integers(0, 256 * 4, (12, 12)) / (255.0 * 4)).astype(np.float32)
    yield "quarter_steps", np.dstack([rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), np.full((12, 12), 255, np.uint8)]), m


def main() -> None:
    out = []
    for name, rgba, m in cases():
        res = compose.apply_mask(rgba, m)
        bg = (255, 255, 255) if name != "alpha_levels" else (12, 200, 99)
        flat = compose.flatten(res, bg)
        out.append(
            {
                "name": name,
                "width": int(rgba.shape[1]),
                "height": int(rgba.shape[0]),
                "rgba_in": rgba.reshape(-1).tolist(),
                # float32 values written with 9 significant digits round-trip exactly
                "mask": [float(f"{v:.9g}") for v in m.reshape(-1).tolist()],
                "expected_rgba": res.reshape(-1).tolist(),
                "background": list(bg),
                "expected_flat": flat.reshape(-1).tolist(),
            }
        )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"contract": "docs/alpha-contract.md", "cases": out}, separators=(",", ":")))
    print(f"wrote {OUT} ({len(out)} cases)")


if __name__ == "__main__":
    main()

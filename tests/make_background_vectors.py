"""Generate tests/vectors/background.json from the Python stage (stages/background.py, rule 11).

Run `python tests/make_background_vectors.py` after an intended change to rule 11; the JS
tests (tests/js/background.test.js) and tests/stages/test_background.py read the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alphacut.stages import background as bgs

OUT = Path(__file__).parent / "vectors" / "background.json"


def photo(rng, w, h):
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot((xx - w * 0.45) / (w * 0.25), (yy - h * 0.55) / (h * 0.3))
    rgba[..., 3] = np.clip((1.2 - d) * 400, 0, 255).astype(np.uint8)
    return rgba


def cases():
    rng = np.random.default_rng(11)
    p = photo(rng, 23, 17)
    img = rng.integers(0, 256, (9, 31, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, (40, 7, 3), dtype=np.uint8)
    yield "colour", p, {"background": {"kind": "color", "color": [200, 30, 90]}}
    yield "colour_shadow", p, {"background": {"kind": "color", "color": [250, 240, 230]}, "shadow": True}
    yield "image_wide", p, {"background": {"kind": "image", "image": img, "x": 0.2, "y": 0.5}}
    yield "image_tall_shadow", p, {"background": {"kind": "image", "image": tall, "x": 0.5, "y": 0.9}, "shadow": True}
    yield "blur", p, {"background": {"kind": "blur", "radius": 3}}
    yield "crop_px", p, {"crop": {"padding": "2", "aspect": None}}
    yield "crop_pct_aspect_colour", p, {"crop": {"padding": "10%", "aspect": [16, 9]}, "background": {"kind": "color", "color": [0, 0, 0]}}
    yield "crop_square_blur_shadow", p, {"crop": {"padding": "0", "aspect": [1, 1]}, "background": {"kind": "blur", "radius": 2}, "shadow": True}


def run(rgba, o):
    b = o.get("background")
    bg = None
    if b:
        if b["kind"] == "color":
            bg = bgs.Background("color", color=tuple(b["color"]))
        elif b["kind"] == "image":
            bg = bgs.Background("image", image=b["image"], x=b["x"], y=b["y"])
        else:
            bg = bgs.Background("blur", radius=b["radius"])
    crop = o.get("crop")
    return bgs.compose_file(rgba, bg, shadow=o.get("shadow", False), crop=crop["padding"] if crop else None,
                            aspect=tuple(crop["aspect"]) if crop and crop["aspect"] else None)


def main() -> None:
    out = []
    for name, rgba, o in cases():
        got = run(rgba, o)
        js = json.loads(json.dumps(o, default=lambda a: {"width": a.shape[1], "height": a.shape[0], "rgb": a.reshape(-1).tolist()}))
        out.append({"name": name, "width": rgba.shape[1], "height": rgba.shape[0], "rgba": rgba.reshape(-1).tolist(),
                    "options": js, "expected": {"width": got.shape[1], "height": got.shape[0], "rgba": got.reshape(-1).tolist()}})
    OUT.write_text(json.dumps({"rule": "docs/alpha-contract.md rule 11", "cases": out}) + "\n")


if __name__ == "__main__":
    main()

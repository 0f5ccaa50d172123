"""Generate tests/js/fixtures.json: Pillow BILINEAR resize results the JS resize must match.

Run `.venv/bin/python tests/js/make_fixtures.py` after changing the cases; `node --test
tests/js/` reads the JSON. The cases use the same Pillow calls as the Python pipeline:
``preprocess.resize_rgb`` (RGBX, 8-bit, antialiased downscale and stretch) and
``mask.upscale`` (mode F float upscale).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alphacut.models.catalog import CATALOG
from alphacut.stages import mask, preprocess

OUT = Path(__file__).parent / "fixtures.json"


def icc_cases() -> dict:
    """Files with and without an sRGB profile, as Pillow writes them, base64-encoded."""
    import base64
    import io
    import zlib

    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("RGBA", (3, 2), (10, 20, 30, 128))
    out = {"profile": base64.b64encode(icc).decode(), "crc_of_profile": zlib.crc32(icc)}
    for fmt, kw in (("png", {}), ("webp", {"lossless": True, "exact": True}), ("jpeg", {})):
        for with_icc in (True, False):
            buf = io.BytesIO()
            im = img.convert("RGB") if fmt == "jpeg" else img
            im.save(buf, fmt.upper(), **({"icc_profile": icc} if with_icc else {}), **kw)
            out[f"{fmt}{'_icc' if with_icc else ''}"] = base64.b64encode(buf.getvalue()).decode()
    return out


def png_cases() -> list:
    """PNGs written by Pillow (adaptive filters: all five types appear) and their pixels."""
    import base64
    import io

    from PIL import Image

    rng = np.random.default_rng(5)
    cases = []
    for w, h in ((64, 48), (1, 1), (7, 3)):
        yy, xx = np.mgrid[0:h, 0:w]
        rgba = np.dstack([(xx * 4) % 256, (yy * 5) % 256, (xx * yy) % 256, rng.integers(0, 256, (h, w))]).astype(np.uint8)
        rgba[h // 2 :, : w // 2] = rng.integers(0, 256, (h - h // 2, w // 2, 4), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, "PNG", optimize=True)
        cases.append({"w": w, "h": h, "png": base64.b64encode(buf.getvalue()).decode(), "rgba": rgba.reshape(-1).tolist()})
    return cases


def main() -> None:
    rng = np.random.default_rng(3)
    rgb_cases = []
    for (w, h), (ow, oh) in [((37, 23), (16, 16)), ((16, 16), (37, 23)), ((64, 9), (9, 64)),
                             ((90, 50), (17, 13)), ((20, 20), (20, 7)), ((13, 30), (5, 30))]:
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[: h // 3, :, 3] = 0  # hidden RGB must still reach the model
        small = preprocess.resize_rgb(rgba, (ow, oh))
        rgb_cases.append({"w": w, "h": h, "out_w": ow, "out_h": oh, "rgba": rgba.reshape(-1).tolist(),
                          "expected": small.reshape(-1).tolist()})
    spec = CATALOG["isnet"]
    rgb = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    tensor_case = {"w": 5, "h": 4, "rgb": rgb.reshape(-1).tolist(), "mean": list(spec.mean),
                   "std": list(spec.std),
                   "expected": [float(f"{v:.9g}") for v in preprocess.to_tensor(rgb, spec).reshape(-1).tolist()]}
    float_cases = []
    for (w, h), (ow, oh) in [((8, 8), (29, 17)), ((16, 16), (16, 40)), ((10, 6), (33, 6)), ((12, 12), (5, 7))]:
        m = rng.random((h, w), dtype=np.float32)
        m[0, :] = 1.0
        m[:, 0] = 0.0
        up = mask.upscale(m, (ow, oh))
        float_cases.append({"w": w, "h": h, "out_w": ow, "out_h": oh,
                            "mask": [float(f"{v:.9g}") for v in m.reshape(-1).tolist()],
                            "expected": [float(f"{v:.9g}") for v in up.reshape(-1).tolist()]})
    OUT.write_text(json.dumps({"resize_rgb": rgb_cases, "to_tensor": tensor_case,
                               "resize_float": float_cases, "icc": icc_cases(), "png": png_cases()}, separators=(",", ":")))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Encode stage: straight RGBA (or grey, or flattened RGB) → bytes of PNG, WebP or AVIF.

Every format here carries straight alpha and, where lossless, every RGB value, alpha 0
included:
- PNG through imagecodecs (libpng, level 1, RLE strategy, Sub filter: about as small as
  Pillow's default level and several times faster on large photos), with the source's ICC
  profile added as an iCCP chunk;
- WebP through Pillow, lossless with ``exact`` (libwebp otherwise discards RGB under alpha 0);
  sides over 16383 px are refused, as libwebp cannot hold them;
- AVIF through imagecodecs: lossless by default; ``quality`` < 100 is lossy, and the verify
  stage then allows the tolerance documented in docs/alpha-contract.md.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .errors import OutputError

FORMATS = {"png": ".png", "webp": ".webp", "avif": ".avif"}
WEBP_MAX_SIDE = 16383


def _png_with_icc(png: bytes, icc: bytes) -> bytes:
    """Insert an iCCP chunk right after IHDR (the PNG spec wants it before IDAT)."""
    ihdr_end = 8 + 4 + 4 + 13 + 4
    body = b"ICC Profile\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def encode(
    pixels: np.ndarray,
    fmt: str,
    *,
    icc_profile: bytes | None = None,
    quality: int | None = None,
    label: str = "output",
) -> bytes:
    """Encode (H, W), (H, W, 3) or (H, W, 4) uint8 pixels as ``fmt`` (png, webp, avif)."""
    import imagecodecs

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise OutputError(f"{label}: unknown format {fmt!r}; choose png, webp or avif")
    # A fresh C-ordered copy when needed: slices with a side of 1 can be "contiguous" with
    # strides the codecs reject (a 1x1 mask-only output did).
    if min(pixels.shape[:2]) == 1:
        pixels = np.array(pixels, dtype=np.uint8, order="C", copy=True)
    else:
        pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    try:
        if fmt == "png":
            data = imagecodecs.png_encode(pixels, level=1, strategy=3, filter=16)
            return _png_with_icc(data, icc_profile) if icc_profile else data
        if fmt == "webp":
            if max(w, h) > WEBP_MAX_SIDE:
                raise OutputError(
                    f"{label}: {w}x{h} is too large for WebP (at most {WEBP_MAX_SIDE} px a side); "
                    "use --format png or avif"
                )
            from io import BytesIO

            from PIL import Image

            mode = "L" if pixels.ndim == 2 else {3: "RGB", 4: "RGBA"}[pixels.shape[2]]
            buf = BytesIO()
            kw = {"icc_profile": icc_profile} if icc_profile else {}
            Image.fromarray(pixels, mode).save(
                buf, "WEBP", lossless=True, exact=True, quality=50, method=1, **kw
            )
            return buf.getvalue()
        # AVIF
        level = None if quality is None or quality >= 100 else int(quality)
        return imagecodecs.avif_encode(pixels, level=level, speed=8, numthreads=2)
    except OutputError:
        raise
    except Exception as e:  # codec libraries raise their own error types
        raise OutputError(f"{label}: cannot encode {fmt.upper()}: {e}") from None

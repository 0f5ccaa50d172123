"""Encode stage: straight RGBA (or grey, or flattened RGB) → bytes of PNG, WebP or AVIF.

Every format here carries straight alpha and, where lossless, every RGB value, alpha 0
included:
- PNG written here: each row Up-filtered, row strips of about 8 MB deflated independently
  by ISA-L (level 1) on a few threads and joined into one zlib stream (sync-flushed strips,
  combined Adler-32), one IDAT chunk a strip, the source's ICC profile as an iCCP chunk;
  any PNG decoder reads it, and the verify stage checks it. Two writes of the same pixels
  inflate to the same bytes but may differ in their deflated ones: ISA-L's streaming
  compressor now and then picks other matches for the same strip (2 in 200 calls in a loop
  that churned the heap between them). Kept over imagecodecs' encoders
  because it is faster and smaller (``bench/png_bench.py`` on real cut-outs, best of three
  interleaved rounds, 2 shared cores at load average 12, IS-Net inference 3.2-3.8 s in the
  same run): 1 / 12 / 48 MP in 0.01 / 0.16 / 0.55 s (1.4 / 11.9 / 38.4 MiB); libpng
  (``png_encode`` level 1) 0.11 / 0.98 / 3.33 s (1.4 / 13.3 / 43.2 MiB); libpng level 1 with
  RLE and Sub, OpenCV's fast settings, 0.06 / 0.53 / 1.78 s (1.7 / 14.6 / 48.3 MiB); libspng
  (``spng_encode`` level 1) 0.11 / 1.23 / 4.77 s: 3.3-8.8x slower;
- WebP through Pillow, lossless with ``exact`` (libwebp otherwise discards RGB under alpha 0);
  sides over 16383 px are refused, as libwebp cannot hold them;
- AVIF through imagecodecs: lossless by default; ``quality`` < 100 is lossy, and the verify
  stage then allows the tolerance documented in docs/alpha-contract.md.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib

from alphacut import formats, parallel
from alphacut.errors import OutputError, UsageError

#: JPEG as the contract (rule 11) has it: quality 90, no chroma subsampling, no ICC profile,
#: checked within a mean absolute error of 3 levels over the RGB samples.
JPEG_QUALITY = 90
JPEG_MAE = 3.0
WEBP_MAX_SIDE = formats.FORMATS["webp"].max_side


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG colour type (grey, RGB, RGBA)
PNG_STRIP_BYTES = 1 << 23  # about 8 MB of pixels per independently deflated strip (NumPy puts
# buffers of 4 MiB and more on huge pages: far fewer page faults than 4 MB ones)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = isal_zlib.crc32(body, isal_zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _adler32_combine(a1: int, a2: int, len2: int) -> int:
    """Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine)."""
    base = 65521
    rem = len2 % base
    s1 = (a1 & 0xFFFF) + (a2 & 0xFFFF) + base - 1
    s2 = rem * (a1 & 0xFFFF) + (a1 >> 16) + (a2 >> 16) + base - rem
    return (s1 % base) | ((s2 % base) << 16)


def _png_strip(flat: np.ndarray, y0: int, y1: int) -> tuple[bytes, int, int]:
    """Rows y0..y1 of ``flat`` (H, row bytes) Up-filtered (filter byte 2: each byte minus the
    one above it, mod 256; the first row's "above" is zeros) and raw-deflated; the last strip
    ends the deflate stream, the others end on a sync flush so the strips concatenate.
    Returns (IDAT chunk, Adler-32 of the filtered bytes, their length)."""
    rows = flat[y0:y1]
    filtered = np.empty((y1 - y0, 1 + flat.shape[1]), np.uint8)
    filtered[:, 0] = 2
    if y0 == 0:
        filtered[0, 1:] = rows[0]
    else:
        np.subtract(rows[0], flat[y0 - 1], out=filtered[0, 1:])
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    raw = memoryview(filtered).cast("B")
    z = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
    last = y1 == flat.shape[0]
    data = z.compress(raw) + z.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH)
    return _png_chunk(b"IDAT", data), isal_zlib.adler32(raw), len(raw)


def encode_png(pixels: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    """8-bit grey, RGB or RGBA PNG of C-contiguous (H, W[, C]) uint8 pixels, strips in parallel."""
    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    flat = pixels.reshape(h, w * c)
    rows = max(1, PNG_STRIP_BYTES // (w * c))
    strips = parallel.map_ordered(lambda y: _png_strip(flat, y, min(h, y + rows)), range(0, h, rows), "alphacut-png")
    parts = [PNG_SIGNATURE, _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, PNG_COLOUR_TYPES[c], 0, 0, 0))]
    if icc_profile:
        parts.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    parts.append(_png_chunk(b"IDAT", b"\x78\x01"))  # zlib header: deflate, 32 KiB window
    adler = 1
    for chunk, a, n in strips:
        parts.append(chunk)
        adler = _adler32_combine(adler, a, n)
    parts.append(_png_chunk(b"IDAT", struct.pack(">I", adler)))  # zlib trailer
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def check_output(fmt: str, *, background=None, mask_only: bool = False, surface: str = "python") -> str:
    """``fmt`` (lower case) if it can hold the requested output, else a ``UsageError``: the
    format rules of ``options.py`` (stated there once), options named as ``surface`` spells them."""
    from alphacut import options

    try:
        return options.check_format(fmt, background=background, mask_only=mask_only, surface=surface)
    except options.OptionError as e:
        raise UsageError(str(e)) from None


def format_for_path(path, fmt: str | None = None, *, background=None, mask_only: bool = False,
                    surface: str = "python") -> str:
    """The format an output file at ``path`` is written in: the one its extension names
    (``formats.for_extension``: ``.png``, ``.webp``, ``.avif``; ``.jpg``/``.jpeg`` for a
    flattened output), or ``fmt`` for a path without an extension. A ``UsageError`` for any
    other extension, for an explicit ``fmt`` the extension contradicts, or for a format that
    cannot hold the output: the bytes in a file always match its name. The CLI and
    ``CutOut.save`` both ask here."""
    from pathlib import PurePath

    ext = PurePath(path).suffix.lower()
    named = formats.for_extension(ext) if ext else None
    if ext and named is None:
        known = ", ".join(e for f in formats.native().values() for e in f.extensions)
        raise UsageError(f"{path}: cannot tell the output format from {ext!r}; use {known} "
                         "(.jpg/.jpeg only with --background)")
    if fmt is not None and named is not None and fmt.lower() != named.name:
        raise UsageError(f"{path}: the name says {named.name} but the format asked for is {fmt.lower()}; choose one")
    return check_output(named.name if named else fmt or formats.DEFAULT_FORMAT, background=background,
                        mask_only=mask_only, surface=surface)


def encode(
    pixels: np.ndarray,
    fmt: str,
    *,
    icc_profile: bytes | None = None,
    quality: int | None = None,
    label: str = "output",
) -> bytes:
    """Encode (H, W), (H, W, 3) or (H, W, 4) uint8 pixels as ``fmt`` (png, webp, avif; jpeg
    for (H, W, 3) only)."""
    import imagecodecs

    fmt = fmt.lower()
    if fmt not in formats.native():
        raise OutputError(f"{label}: unknown format {fmt!r}; choose {formats.choices_text()}")
    if not formats.FORMATS[fmt].alpha and (pixels.ndim != 3 or pixels.shape[2] != 3):
        raise OutputError(f"{label}: {fmt.upper()} holds opaque RGB only; flatten onto a background first")
    # A fresh C-ordered copy when needed: slices with a side of 1 can be "contiguous" with
    # strides the codecs reject (a 1x1 mask-only output did).
    if min(pixels.shape[:2]) == 1:
        pixels = np.array(pixels, dtype=np.uint8, order="C", copy=True)
    else:
        pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    try:
        if fmt == "png":
            return encode_png(pixels, icc_profile)
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
        if fmt == "jpeg":
            from io import BytesIO

            from PIL import Image

            buf = BytesIO()
            Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
            return buf.getvalue()
        # AVIF
        level = None if quality is None or quality >= 100 else int(quality)
        return imagecodecs.avif_encode(pixels, level=level, speed=8, numthreads=2)
    except OutputError:
        raise
    except Exception as e:  # codec libraries raise their own error types
        raise OutputError(f"{label}: cannot encode {fmt.upper()}: {e}") from None

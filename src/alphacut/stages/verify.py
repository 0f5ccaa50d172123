"""Verify stage: decode what was written and compare it with what we meant to write.

WebP and AVIF are decoded with Pillow, a different decoder from the one they were encoded
with, so a codec bug or an option that silently drops RGB under alpha 0 (libwebp without
``exact``) is caught. PNG is read by this module's own reader, written from the PNG spec
apart from the writer in ``encode.py``: every chunk's CRC, the header, the whole zlib stream
(inflated by ISA-L, Adler-32 checked) and every row under the filter its filter byte names.
Rows are compared in the filter domain: a row decodes to the intended pixels exactly when its
filtered bytes equal the intended row filtered the same way against the (already checked)
row above, so no decoded copy of a large photo is made and the check costs about a third of
a Pillow decode. The strips ``encode.py`` deflates apart are inflated and checked apart, on a
few threads (``_check_strips``); any other stream, or any doubt, is read in one go. PNGs it does not read (interlaced, 16-bit, palette) go to Pillow.
Lossless formats must match byte for byte; lossy AVIF must stay within the stated
tolerance. A mismatch raises ``VerifyError``: the file is not kept.
"""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from isal import isal_zlib
from PIL import Image

from alphacut import parallel
from alphacut.errors import VerifyError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

def lossy_tolerance(quality: int) -> float:
    """Largest mean absolute error (0..255 levels) allowed for lossy AVIF at ``quality``.

    max(4, (100 - quality) / 4): 4 levels at quality 84 and above, 10 at 60, 15 at 40.
    """
    return max(4.0, (100 - quality) / 4)


def decode_image(data: bytes, channels: int) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    return img if img.mode == mode else img.convert(mode)


def _bands(img: Image.Image, rows: int):
    """(y0, pixels of rows y0..y0+rows) from a Pillow image, without a full-size NumPy copy."""
    w, h = img.size
    for y in range(0, h, rows):
        yield y, np.asarray(img.crop((0, y, w, min(h, y + rows))))


def _png_chunks(data: bytes, label: str):
    """(type, body) of each chunk up to IEND, CRCs checked."""
    view = memoryview(data)
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise VerifyError(f"{label}: the written PNG is truncated (no IEND chunk)")
        (n,) = struct.unpack_from(">I", data, pos)
        kind = bytes(view[pos + 4 : pos + 8])
        body = view[pos + 8 : pos + 8 + n]
        if pos + 12 + n > len(data):
            raise VerifyError(f"{label}: the written PNG is truncated in its {kind!r} chunk")
        (crc,) = struct.unpack_from(">I", data, pos + 8 + n)
        if isal_zlib.crc32(body, isal_zlib.crc32(kind)) & 0xFFFFFFFF != crc:
            raise VerifyError(f"{label}: the written PNG has a bad CRC in its {kind!r} chunk")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + n


def _filter_rows(types: np.ndarray, rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """The intended ``rows`` (k, row bytes) filtered with each row's declared filter type
    (PNG spec, section 9), ``above`` being the row before the first (zeros at the top)."""
    if (types == 2).all():  # what alphacut writes
        out = np.empty_like(rows)
        np.subtract(rows[0], above, out=out[0])
        np.subtract(rows[1:], rows[:-1], out=out[1:])
        return out
    up = np.concatenate([above[None], rows[:-1]])
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    pred = np.zeros_like(rows)
    for t, sel in ((1, types == 1), (2, types == 2), (3, types == 3), (4, types == 4)):
        if not sel.any():
            continue
        a, b = left[sel], up[sel]
        if t == 1:
            pred[sel] = a
        elif t == 2:
            pred[sel] = b
        elif t == 3:
            pred[sel] = ((a.astype(np.uint16) + b) >> 1).astype(np.uint8)
        else:
            c = np.zeros_like(b)
            c[:, bpp:] = b[:, :-bpp]
            a16, b16, c16 = (v.astype(np.int16) for v in (a, b, c))
            p = a16 + b16 - c16
            pa, pb, pc = np.abs(p - a16), np.abs(p - b16), np.abs(p - c16)
            pred[sel] = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return rows - pred


#: The sync-flush marker (an empty stored block) that ends every strip but the last.
SYNC_FLUSH = b"\x00\x00\xff\xff"


def _check_strips(idats: list, want: np.ndarray, stride: int, check_rows) -> bool:
    """The fast path for the layout ``encode.encode_png`` writes: a 2-byte zlib header chunk,
    then one IDAT a strip of whole rows deflated on its own (a fresh compressor, ended by a
    sync flush, the last by the final block), all strips the same number of rows but the
    last, then the 4-byte Adler-32. Such strips inflate apart, so each is inflated and checked
    on its own, on a few threads (about half the time of the sequential check at 48 MP).
    True: every strip inflated on its own to exactly its intended rows, each non-final one
    ending on a block boundary, the last one ending the stream, and the combined Adler-32
    equals the trailer: what inflating the stream in one go gives. False: another layout, or
    anything unexpected (a mismatch included): then the sequential check decides, and words
    any error."""
    if len(idats) < 3 or len(idats[0]) != 2 or len(idats[-1]) != 4:
        return False
    cmf, flg = idats[0][0], idats[0][1]
    if cmf != 0x78 or (cmf * 256 + flg) % 31 or flg & 0x20:  # deflate, 32 KiB window, no dictionary
        return False
    strips = idats[1:-1]
    if any(len(b) < 4 or bytes(b[-4:]) != SYNC_FLUSH for b in strips[:-1]):
        return False
    h, n = want.shape[0], len(strips)

    def one(i: int):
        """(rows, Adler-32) of strip i, checked; None when it is not what the layout says."""
        d = isal_zlib.decompressobj(-15)
        try:
            raw = d.decompress(strips[i])
        except isal_zlib.error:
            return None
        if d.eof != (i == n - 1) or d.unused_data or d.unconsumed_tail or len(raw) % stride or not raw:
            return None
        k = len(raw) // stride
        y = h - k if i == n - 1 else i * k  # checked below: equal strips but the last
        if y < 0 or y + k > h:
            return None
        try:
            check_rows(np.frombuffer(raw, np.uint8).reshape(k, stride), y)
        except VerifyError:
            return None
        return k, isal_zlib.adler32(raw), len(raw)

    got = parallel.map_ordered(one, range(n), "alphacut-verify")
    if any(g is None for g in got):
        return False
    k = got[0][0]
    if any(g[0] != k for g in got[:-1]) or got[-1][0] > k or (n - 1) * k + got[-1][0] != h:
        return False
    adler = 1
    for _, a, size in got:
        adler = _adler32_combine(adler, a, size)
    return adler == struct.unpack(">I", bytes(idats[-1]))[0]


def _adler32_combine(a1: int, a2: int, len2: int) -> int:
    """Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine),
    written apart from the writer's copy in ``encode.py``."""
    mod = 65521
    n = len2 % mod
    s1 = ((a1 & 0xFFFF) + (a2 & 0xFFFF) - 1) % mod
    s2 = ((a1 >> 16) + (a2 >> 16) + n * (a1 & 0xFFFF) - n) % mod
    return s1 | (s2 << 16)


def _check_png(data: bytes, expected: np.ndarray, label: str) -> bool:
    """Check a PNG against ``expected`` (see the module docstring); False when this reader
    does not handle the file's layout (then Pillow decodes it)."""
    h, w = expected.shape[:2]
    c = 1 if expected.ndim == 2 else expected.shape[2]
    chunks = _png_chunks(data, label)  # the caller has seen the PNG signature
    kind, ihdr = next(chunks)
    if kind != b"IHDR" or len(ihdr) != 13:
        raise VerifyError(f"{label}: the written PNG does not start with its header")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (height, width) != (h, w):
        raise VerifyError(f"{label}: decoded size {(width, height)} differs from {(w, h)}")
    if depth != 8 or interlace != 0 or colour != {1: 0, 3: 2, 4: 6}[c]:
        return False
    stride = 1 + w * c
    want = np.ascontiguousarray(expected).reshape(h, w * c)

    def check_rows(got: np.ndarray, y: int) -> None:
        if got[:, 0].max() > 4:
            raise VerifyError(f"{label}: the written PNG has an unknown row filter near row {y}")
        above = want[y - 1] if y else np.zeros(w * c, np.uint8)
        bad = got[:, 1:] != _filter_rows(got[:, 0], want[y : y + len(got)], above, c)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise VerifyError(
                f"{label}: decoded pixels differ from the intended ones "
                f"(first at x={col // c}, y={y + row}, channel {col % c})"
            )

    idats = [body for kind, body in chunks if kind == b"IDAT"]
    if _check_strips(idats, want, stride, check_rows):
        return True
    # Inflating is sequential; the rows already inflated are checked on a second thread
    # meanwhile (both release the GIL), one batch in flight.
    inflate = isal_zlib.decompressobj()
    pending = b""
    y = 0
    with ThreadPoolExecutor(1, thread_name_prefix="alphacut-verify") as pool:
        in_flight = None
        for body in idats:
            if inflate.eof:
                raise VerifyError(f"{label}: the written PNG has data after its image stream")
            try:
                pending += inflate.decompress(body)
            except isal_zlib.error as e:
                raise VerifyError(f"{label}: the written PNG's image data does not inflate: {e}") from None
            k = min(len(pending) // stride, h - y)
            if k == 0:
                continue
            got = np.frombuffer(pending, np.uint8, count=k * stride).reshape(k, stride)
            if in_flight is not None:
                in_flight.result()
            in_flight = pool.submit(check_rows, got, y)
            y += k
            pending = pending[k * stride :]
        if in_flight is not None:
            in_flight.result()
    if not inflate.eof or y != h or pending or inflate.unused_data:
        raise VerifyError(f"{label}: the written PNG holds {y} of {h} rows or a damaged image stream")
    return True


def verify(
    data: bytes, expected: np.ndarray, *, lossless: bool, label: str = "output", quality: int = 90,
    tolerance: float | None = None,
) -> None:
    """Decode ``data`` again and compare with ``expected``: exactly when ``lossless``, else
    within ``tolerance`` (default: ``lossy_tolerance(quality)``) mean levels."""
    channels = 1 if expected.ndim == 2 else expected.shape[2]
    if lossless and data.startswith(PNG_SIGNATURE) and _check_png(data, expected, label):
        return
    try:
        img = decode_image(data, channels)
    except Exception as e:
        raise VerifyError(f"{label}: the written file does not decode: {e}") from None
    if (img.size[1], img.size[0]) != expected.shape[:2]:
        raise VerifyError(f"{label}: decoded size {img.size} differs from {expected.shape[1::-1]}")
    rows = max(1, (1 << 22) // max(1, expected.shape[1] * channels))  # ~4 MB bands
    if lossless:
        bad = 0
        first = None
        for y, got in _bands(img, rows):
            want = expected[y : y + got.shape[0]].reshape(got.shape)
            if not np.array_equal(got, want):
                diff = np.argwhere(got != want)
                bad += len(diff)
                if first is None:
                    first = (int(diff[0][1]), y + int(diff[0][0]))
        if bad:
            raise VerifyError(
                f"{label}: decoded pixels differ from the intended ones at {bad} samples "
                f"(first at x={first[0]}, y={first[1]})"
            )
        return
    err_sum = np.zeros(channels, np.float64)
    visible = 0
    for y, got in _bands(img, rows):
        want = expected[y : y + got.shape[0]].reshape(got.shape)
        err = np.abs(got.astype(np.int16) - want.astype(np.int16)).reshape(-1, channels)
        if channels == 4:
            # Colour under alpha 0 is invisible and lossy codecs may change it; alpha may not drift.
            vis = want.reshape(-1, 4)[:, 3] > 0
            err_sum[:3] += err[vis, :3].sum(axis=0)
            err_sum[3] += err[:, 3].sum()
            visible += int(vis.sum())
        else:
            err_sum += err.sum(axis=0)
    n = expected.shape[0] * expected.shape[1]
    if channels == 4:
        worst = max(err_sum[:3].sum() / max(1, 3 * visible), err_sum[3] / n)
    else:
        worst = err_sum.sum() / (n * channels)
    advice = ""
    if tolerance is None:
        tolerance = lossy_tolerance(quality)
        advice = f" for quality {quality}; use a higher quality"
    if worst > tolerance:
        raise VerifyError(
            f"{label}: lossy output drifts by {worst:.2f} levels on average, over the tolerance "
            f"{tolerance:g}{advice}"
        )

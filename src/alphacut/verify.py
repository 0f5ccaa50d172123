"""Verify stage: decode what was written and compare it with what we meant to write.

Decoding uses Pillow, a different decoder from the one most files were encoded with, so a
codec bug or an option that silently drops RGB under alpha 0 (libwebp without ``exact``) is
caught. Lossless formats must match byte for byte; lossy AVIF must stay within the stated
tolerance. A mismatch raises ``VerifyError``: the file is not kept.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .errors import VerifyError

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


def decode_bytes(data: bytes, channels: int) -> np.ndarray:
    return np.asarray(decode_image(data, channels))


def _bands(img: Image.Image, rows: int):
    """(y0, pixels of rows y0..y0+rows) from a Pillow image, without a full-size NumPy copy."""
    w, h = img.size
    for y in range(0, h, rows):
        yield y, np.asarray(img.crop((0, y, w, min(h, y + rows))))


def verify(
    data: bytes, expected: np.ndarray, *, lossless: bool, label: str = "output", quality: int = 90
) -> None:
    channels = 1 if expected.ndim == 2 else expected.shape[2]
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
    tolerance = lossy_tolerance(quality)
    if worst > tolerance:
        raise VerifyError(
            f"{label}: lossy output drifts by {worst:.2f} levels on average, over the tolerance "
            f"{tolerance:g} for quality {quality}; use a higher quality"
        )

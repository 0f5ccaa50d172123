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

#: Lossy AVIF (quality < 100): largest allowed mean absolute error per channel, in 0..255.
LOSSY_MEAN_TOLERANCE = 4.0


def decode_bytes(data: bytes, channels: int) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if img.mode != mode:
        img = img.convert(mode)
    return np.asarray(img)


def verify(data: bytes, expected: np.ndarray, *, lossless: bool, label: str = "output") -> None:
    channels = 1 if expected.ndim == 2 else expected.shape[2]
    try:
        got = decode_bytes(data, channels)
    except Exception as e:
        raise VerifyError(f"{label}: the written file does not decode: {e}") from None
    if got.shape != expected.shape:
        raise VerifyError(f"{label}: decoded size {got.shape} differs from {expected.shape}")
    if lossless:
        if not np.array_equal(got, expected):
            diff = np.argwhere(got != expected)
            y, x = diff[0][:2]
            raise VerifyError(
                f"{label}: decoded pixels differ from the intended ones at {len(diff)} samples "
                f"(first at x={x}, y={y})"
            )
        return
    err = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    if channels == 4:
        # Colour under alpha 0 is invisible and lossy codecs may change it; alpha may not drift.
        visible = expected[..., 3] > 0
        rgb_err = err[..., :3][visible].mean() if visible.any() else 0.0
        alpha_err = err[..., 3].mean()
        worst = max(rgb_err, alpha_err)
    else:
        worst = err.mean()
    if worst > LOSSY_MEAN_TOLERANCE:
        raise VerifyError(
            f"{label}: lossy output drifts by {worst:.2f} on average, over the tolerance "
            f"{LOSSY_MEAN_TOLERANCE}"
        )

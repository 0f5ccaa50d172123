"""Mask stage: raw model output → float32 mask in [0, 1] at full resolution.

The mask stays float32 from here until the single quantisation in the compose stage. The
model's low-resolution output is upscaled as float (bilinear, pixel centres aligned, edges
clamped), never as 8-bit, so no banding or truncation enters before refinement. Min-max
normalisation is only applied where a model's reference code does it, and then guarded: an
output with almost no range (an image with no subject) is not stretched into a false one.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .catalog import ModelSpec

#: Below this output range min-max would amplify noise into foreground; keep the values.
MINMAX_MIN_RANGE = 0.05


def from_output(raw: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Model output (any leading singleton dims) → (h, w) float32 in [0, 1]."""
    m = np.asarray(raw, dtype=np.float32)
    while m.ndim > 2:
        m = m[0]
    if spec.activation == "sigmoid":
        m = 1.0 / (1.0 + np.exp(-m))
    if spec.normalize == "minmax":
        lo, hi = float(m.min()), float(m.max())
        if hi - lo >= MINMAX_MIN_RANGE:
            m = (m - lo) / (hi - lo)
    return np.clip(m, 0.0, 1.0).astype(np.float32, copy=False)


def upscale(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear float upscale of an (h, w) mask to ``size`` = (W, H); float32 [0, 1]."""
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask.astype(np.float32, copy=True)
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32), mode="F")
    big = img.resize(tuple(size), Image.Resampling.BILINEAR)
    out = np.array(big, dtype=np.float32)
    # Bilinear weights are non-negative, so values stay in range; clip anyway so the
    # contract's [0, 1] holds whatever the filter does.
    return np.clip(out, 0.0, 1.0, out=out)


def threshold(mask: np.ndarray, t: float) -> np.ndarray:
    """Hard mask, only when the user asks for one (``--threshold``)."""
    return (mask >= t).astype(np.float32)

"""Mask stage: raw model output → float32 mask in [0, 1] at full resolution.

The mask stays float32 from here until the single quantisation in the compose stage. The
model's low-resolution output is upscaled as float (bilinear, pixel centres aligned, edges
clamped), never as 8-bit, so no banding or truncation enters before refinement. Min-max
normalisation is only applied where a model's reference code does it, and then guarded: an
output with almost no range (an image with no subject) is not stretched into a false one.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import parallel
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


def bilinear_coeffs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BILINEAR resampling weights along one axis (``precompute_coeffs`` in its
    Resample.c, in the same float64 steps): for each output index the first source index
    and the normalised weights of its taps, (out, taps) each; unused taps weigh 0."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    taps = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((center - support + 0.5).astype(np.int64), 0)  # C's (int): toward zero
    count = np.minimum((center + support + 0.5).astype(np.int64), in_size) - first
    x = np.arange(taps)
    w = np.maximum(1.0 - np.abs((x + first[:, None] - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    w[x >= count[:, None]] = 0.0
    total = w.sum(axis=1, keepdims=True)  # ww += w in tap order: the same sum for <= 3 taps
    w = np.divide(w, total, out=w, where=total != 0)
    return first, w


def _resample_rows(src64: np.ndarray, first: np.ndarray, w: np.ndarray, rows: slice) -> np.ndarray:
    """Output rows ``rows`` of a pass along axis 0 of float64 ``src64`` (the vertical pass;
    the horizontal one runs on the transpose): each is the weighted sum of source rows
    ``first + t`` accumulated tap by tap in float64, as Pillow does (the caller rounds to
    float32)."""
    first, w = first[rows], w[rows]
    last = src64.shape[0] - 1
    acc = np.take(src64, first, axis=0)
    acc *= w[:, :1]
    for t in range(1, w.shape[1]):
        if w[:, t].any():
            tap = np.take(src64, np.minimum(first + t, last), axis=0)
            tap *= w[:, t : t + 1]
            acc += tap
    return acc


def upscale(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear float resize of an (h, w) mask to ``size`` = (W, H); float32 [0, 1].

    The same values as Pillow's mode-F BILINEAR resize (``web/resize.js`` ports the same).
    Enlarging, Pillow runs the horizontal pass, then the vertical one, float64 sums rounded
    to float32 after each; that is computed here with NumPy into one output array, the
    vertical pass in row bands on a few threads: at 48 MP Pillow took 0.9-1.8 s on 2 cores
    and needed a second full-size copy."""
    src = np.ascontiguousarray(mask, dtype=np.float32)
    (h, w), (W, H) = src.shape, size
    if (W, H) == (w, h):
        return src.copy()
    if W < w or H < h:
        # Shrinking (photos under the model's size: small and cheap): Pillow itself, which
        # then picks its own pass order.
        small = Image.fromarray(src, mode="F").resize((W, H), Image.Resampling.BILINEAR)
        return np.clip(np.array(small, dtype=np.float32), 0.0, 1.0)
    if W != w:  # horizontal pass on the small mask: cheap, one go
        first, wt = bilinear_coeffs(w, W)
        src = np.ascontiguousarray(_resample_rows(src.T.astype(np.float64), first, wt, slice(None)).T, np.float32)
    src64 = src.astype(np.float64)
    out = np.empty((H, W), np.float32)
    if H == h:
        out[:] = src
        bands = []
    else:
        first, wt = bilinear_coeffs(h, H)
        rows = max(1, (1 << 21) // W)  # ~16 MB of float64 temporaries a band (huge pages)
        bands = [slice(y, min(H, y + rows)) for y in range(0, H, rows)]

    def band(rows: slice) -> None:
        out[rows] = _resample_rows(src64, first, wt, rows)  # rounded to float32 here
        # Bilinear weights are non-negative, so values stay in range; clip anyway so the
        # contract's [0, 1] holds whatever the filter does.
        np.clip(out[rows], 0.0, 1.0, out=out[rows])

    parallel.map_ordered(band, bands, "alphacut-upscale")
    if not bands:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def threshold(mask: np.ndarray, t: float) -> np.ndarray:
    """Hard mask, only when the user asks for one (``--threshold``)."""
    return (mask >= t).astype(np.float32)

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

from alphacut import parallel
from alphacut.models.catalog import ModelSpec

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


def _vertical_rows(src64: np.ndarray, first: np.ndarray, w: np.ndarray, rows: slice, out: np.ndarray) -> None:
    """Output rows ``rows`` of the vertical pass of float64 ``src64`` into float32 ``out``.

    Enlarging, consecutive output rows share their source rows: each run of rows with the same
    ``first`` is the outer product of its weights with those few source rows, summed tap by
    tap in float64 as Pillow does and rounded to float32 on the way into ``out``. The run's
    temporaries (a few rows) stay in the CPU cache, so the pass costs little more than
    writing the output once."""
    f, wt = first[rows], w[rows]
    last, width = src64.shape[0] - 1, src64.shape[1]
    taps = [t for t in range(1, wt.shape[1]) if wt[:, t].any()]
    starts = np.flatnonzero(np.diff(f, prepend=-1))
    ends = np.append(starts[1:], len(f))
    longest = int((ends - starts).max())
    acc = np.empty((longest, width), np.float64)
    tap = np.empty_like(acc)
    for a, b in zip(starts.tolist(), ends.tolist()):
        k, r = b - a, int(f[a])
        dst = out[rows.start + a : rows.start + b]
        if not taps:
            np.multiply(wt[a:b, :1], src64[r], out=dst, casting="same_kind")
        else:
            np.multiply(wt[a:b, :1], src64[r], out=acc[:k])
            for t in taps:
                np.multiply(wt[a:b, t : t + 1], src64[min(r + t, last)], out=tap[:k])
                np.add(acc[:k], tap[:k], out=dst if t == taps[-1] else acc[:k], casting="same_kind")
        # Bilinear weights are non-negative and sum to one, so values stay in range; clip
        # anyway (while the rows are in cache) so the contract's [0, 1] holds whatever.
        np.clip(dst, 0.0, 1.0, out=dst)


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
    src64 = src.astype(np.float64)
    if W != w:
        src64 = _horizontal(src64, W)
    if H == h:
        return np.clip(src64, 0.0, 1.0).astype(np.float32)
    first, wt = bilinear_coeffs(h, H)
    out = np.empty((H, W), np.float32)
    rows = max(1, (1 << 21) // W)  # bands of ~2 MP: a few per thread
    bands = [slice(y, min(H, y + rows)) for y in range(0, H, rows)]
    parallel.map_ordered(lambda r: _vertical_rows(src64, first, wt, r, out), bands, "alphacut-upscale")
    return out


def _horizontal(src64: np.ndarray, W: int) -> np.ndarray:
    """The horizontal pass of float64 ``src64`` to ``W`` columns: float64 values already
    rounded to float32, as Pillow stores its intermediate image. Row bands of ~256 K
    samples (their gathered taps stay in cache) on a few threads."""
    h, w = src64.shape
    first, wt = bilinear_coeffs(w, W)
    taps = [(np.minimum(first + t, w - 1), wt[:, t]) for t in range(wt.shape[1]) if t == 0 or wt[:, t].any()]
    out = np.empty((h, W), np.float64)
    rows = max(1, (1 << 18) // W)

    def band(y: int) -> None:
        s = slice(y, min(h, y + rows))
        acc = np.take(src64[s], taps[0][0], axis=1)
        acc *= taps[0][1]
        for idx, weight in taps[1:]:
            tap = np.take(src64[s], idx, axis=1)
            tap *= weight
            acc += tap
        out[s] = acc.astype(np.float32)

    parallel.map_ordered(band, range(0, h, rows), "alphacut-upscale")
    return out


def threshold(mask: np.ndarray, t: float) -> np.ndarray:
    """Hard mask, only when the user asks for one (``--threshold``)."""
    return (mask >= t).astype(np.float32)

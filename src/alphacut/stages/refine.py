"""Refine stage: improve the upscaled float mask at full resolution, guided by the photo.

Each method takes the full-resolution RGBA pixels and the float32 mask upscaled from the
model's output, and returns a float32 mask in [0, 1] of the same size. ``none`` keeps the
plain float upscale.

The guided methods are a fast guided filter (He, Sun & Tang; fast variant He & Sun 2015)
with a colour (or grey) guide:

- the local linear model ``alpha ≈ a·I + b`` is fitted on a grid of about the model's own
  resolution (``s = max(1, round(long side / 1024))`` full-resolution pixels a cell), then its
  coefficients are upsampled bilinearly and applied to the full-resolution photo, so edges
  follow the photo's own pixels at a cost linear in pixels;
- in the *confidence-weighted* form (``cwgf``) each pixel's weight in the local regression is
  its confidence ``|2m - 1|^gamma`` (plus a small floor), so the colour model is learned from
  pixels the network is sure about and then applied to the uncertain ones, instead of
  reproducing the blur of the upscaled mask;
- the result only replaces the mask inside the uncertain band (weight ``1 - |2m - 1|^delta``);
  confident pixels are kept;
- the work is done in tiles of the coarse grid with a halo wide enough that tiles do not see
  each other; tiles without any uncertain pixel are skipped, and in the others only the cells
  bounding the uncertain pixels (plus the halo) are solved: memory is bounded by the tile
  size (a 48 MP photo needs a few tens of MB beyond the output), and the cost falls with the
  band's share of the photo.

The regression is computed in float64 on the coarse grid (so that the browser's JavaScript
port, which computes in float64 numbers, matches to about 1e-6); the full-resolution part in
float32.

The optional colour decontamination (``--decontaminate``) is its own stage, ``foreground.py``;
it shares this module's coarse-grid helpers.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from alphacut import parallel

_NOT_LOADED = object()
#: SciPy's running-sum box filter (C; a declared dependency), loaded on first use: a
#: callable (x, size per axis) -> box mean with mirrored edges. None: the NumPy fallback
#: (and in tests).
_uniform_filter = _NOT_LOADED
_load_lock = threading.Lock()


def _load_nd_image():
    """SciPy's ``ndimage._nd_image`` C module loaded on its own, without running the
    ``scipy.ndimage`` package: importing that package costs 0.4 s here (its array-API
    set-up), more than the whole refinement of a small photo, for the one routine we call."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(base, "ndimage", "_nd_image" + suffix)
            if os.path.exists(path):
                loader = importlib.machinery.ExtensionFileLoader("scipy.ndimage._nd_image", path)
                module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
                loader.exec_module(module)
                return module
    return None


def _direct_uniform_filter(nd_image):
    """``scipy.ndimage.uniform_filter(x, size, mode="reflect")`` through its C routine, the
    calls that function makes (one pass per axis, the output filtered in place)."""

    def uniform_filter(x: np.ndarray, size: list[int]) -> np.ndarray:
        x = np.asarray(x)
        out = np.empty_like(x)
        src = x
        for axis, n in enumerate(size):
            if n > 1:
                nd_image.uniform_filter1d(src, n, axis, out, 2, 0.0, 0)  # 2: "reflect"
                src = out
        if src is x:
            out[...] = x
        return out

    return uniform_filter


def _scipy_uniform_filter():
    global _uniform_filter
    with _load_lock:  # the first tiles ask for it from several threads at once
        if _uniform_filter is _NOT_LOADED:
            _uniform_filter = _find_uniform_filter()
    return _uniform_filter


def _find_uniform_filter():
    """The direct C routine if it matches the NumPy reference on a probe array (it is
    private), else SciPy's public function, else None."""
    try:
        direct = _direct_uniform_filter(_load_nd_image())
        probe = np.random.default_rng(0).random((2, 9, 11))
        if np.abs(direct(probe, [1, 7, 7]) - _box_numpy(probe, 3)).max() < 1e-12:
            return direct
    except Exception:
        pass
    try:
        from scipy.ndimage import uniform_filter as public
    except ImportError:  # pragma: no cover - keeps an install without SciPy working, slower
        return None
    return lambda x, size: public(x, size=size, mode="reflect")


Refiner = Callable[..., np.ndarray]  # (rgba, mask, *, in_place=False) -> refined mask


@dataclass(frozen=True)
class GuidedParams:
    radius: float = 3.0  # window radius in model-grid pixels (1024 across the long side)
    min_radius: int = 2  # in full-resolution pixels, for photos smaller than the model grid
    eps: float = 3e-4  # regularisation (guide in 0..1 units)
    colour: bool = True  # colour guide (3x3 covariance) or grey (luma)
    gamma: float = 1.0  # confidence weighting exponent; 0 = plain guided filter
    weight_floor: float = 0.02  # weight of the least confident pixel in the regression
    k: float = 1.0  # blend: result = m + u (q - m), u = (4m(1-m))^k (0 at m <= lo, m >= 1-lo)
    lo: float = 0.02  # pixels with m <= lo or m >= 1 - lo are confident: kept as they are
    tile: int = 128  # tile side on the coarse grid


#: Coarse rows per band of the whole-grid block means (bands run on the stage threads).
GRID_BAND = 32

#: Share of uncertain pixels above which a tile is computed whole rather than pixel by pixel.
DENSE_SHARE = 0.3


def grid_geometry(h: int, w: int, p: GuidedParams) -> tuple[int, int]:
    """(cell size s in full-res pixels, radius on the coarse grid)."""
    long_side = max(h, w)
    s = max(1, math.ceil(long_side / 1024))  # the coarse grid never exceeds the model grid
    r_full = max(float(p.min_radius), p.radius * long_side / 1024)
    r = max(1, math.floor(r_full / s + 0.5))
    return s, r


def _box(x: np.ndarray, r: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Mean over a (2r+1)² window on two axes, mirrored edges (…c b a | a b c…), float64 for
    float64 input."""
    uniform_filter = _scipy_uniform_filter()
    if uniform_filter is not None:
        size = [1] * x.ndim
        for ax in axes:
            size[ax] = 2 * r + 1
        return uniform_filter(x, size)
    return _box_numpy(x, r, axes)


def _box_numpy(x: np.ndarray, r: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """The same box mean with cumulative sums (used when SciPy is missing, and in tests)."""
    size = 2 * r + 1
    out = x
    for ax in axes:
        n = out.shape[ax]
        j = np.mod(np.arange(-r - 1, n + r), 2 * n)
        j = np.where(j >= n, 2 * n - 1 - j, j)
        c = np.cumsum(np.take(out, j, axis=ax), axis=ax, dtype=np.float64)
        hi = np.take(c, np.arange(size, size + n), axis=ax)
        lo = np.take(c, np.arange(n), axis=ax)
        out = ((hi - lo) / size).astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
    return out


def _block_sum_axis0(x: np.ndarray, s: int, n: int, dtype=np.float32) -> np.ndarray:
    """Sums of s consecutive rows (axis 0) into n rows, in ``dtype``; rows past the end
    repeat the last row."""
    acc = np.zeros((n, *x.shape[1:]), dtype)
    last = x[-1].astype(dtype)
    for j in range(s):
        rows = x[j::s]
        k = rows.shape[0]
        acc[:k] += rows
        if k < n:
            acc[k:] += last
    return acc


def _downsample(x: np.ndarray, s: int, ny: int, nx: int) -> np.ndarray:
    """Block means of s×s cells of x (H, W[, C]) (uint8 or float), float64 (ny, nx[, C]); the
    last partial cells repeat the edge pixels. uint8 cells are summed as integers (uint16
    up to 16x16 cells: half the bytes float32 would move), float ones in float32."""
    if s == 1:
        return x.astype(np.float64)
    if x.dtype == np.uint8:
        dtype = np.uint16 if s * s * 255 < 1 << 16 else np.uint32
    else:
        dtype = np.float32
    rows = _block_sum_axis0(x, s, ny, dtype)
    cells = _block_sum_axis0(np.swapaxes(rows, 0, 1), s, nx, dtype)
    return np.swapaxes(cells, 0, 1).astype(np.float64) / (s * s)


def _taps(pos: np.ndarray, i0: int, n: int, s: int):
    """Bilinear taps on the coarse grid for full-res positions ``pos`` of a tile starting at
    coarse cell ``i0``: cell centres at (j + 0.5)·s - 0.5, edges clamped (Pillow's bilinear
    with a source box); (lower index, upper index, weight of the upper)."""
    u = i0 + (pos + 0.5) / s - 0.5
    lo = np.floor(u)
    f = u - lo
    lo = lo.astype(np.intp)
    return np.clip(lo, 0, n - 1), np.clip(lo + 1, 0, n - 1), f


def _h_pass(c: np.ndarray, s: int, ix: int, ww: int) -> np.ndarray:
    """First (horizontal) pass of the coefficient upsample: every coarse row at the tile's
    ``ww`` full-res columns, rounded to float32 as Pillow's two-pass resample does;
    (ny, ww, k) float32."""
    x0, x1, fx = _taps(np.arange(ww), ix, c.shape[2], s)
    c64 = np.moveaxis(c.astype(np.float32), 0, -1).astype(np.float64)  # (ny, nx, k)
    fx = fx[None, :, None]
    return (c64[:, x0] * (1 - fx) + c64[:, x1] * fx).astype(np.float32)


def _v_pass(top: np.ndarray, bot: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Second (vertical) pass from the two gathered first-pass rows; float32."""
    top = top.astype(np.float64)
    bot = bot.astype(np.float64)
    top *= 1 - fy
    bot *= fy
    top += bot
    return top.astype(np.float32)


def _sample(c: np.ndarray, s: int, iy: int, ix: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``_upsample_dense`` evaluated only at the full-res pixels (ys, xs) of the tile; float32
    (n, k). Used where few pixels are uncertain: each pixel gathers its two first-pass rows."""
    k, ny, nx = c.shape
    if s == 1:
        table = np.ascontiguousarray(np.moveaxis(c.astype(np.float32), 0, -1)).reshape(-1, k)
        return table[(iy + ys) * nx + (ix + xs)]
    ww = int(xs.max()) + 1 if xs.size else 0
    rows = _h_pass(c, s, ix, ww).reshape(-1, k)
    y0, y1, fy = _taps(ys, iy, ny, s)
    return _v_pass(rows[y0 * ww + xs], rows[y1 * ww + xs], fy[:, None])


def _upsample_dense(c: np.ndarray, s: int, iy: int, ix: int, hh: int, ww: int) -> np.ndarray:
    """Coarse maps c (k, ny, nx) → the (hh, ww) full-res pixels starting at coarse cell
    (iy, ix): bilinear, cell centres at full-res (j + 0.5)·s - 0.5, edges clamped, in two
    passes with float32 rounding after each (Pillow's bilinear with a source box); float32
    (hh, ww, k), the same values as ``_sample`` at every pixel.
    Used for the foreground bands (dense refinement tiles use ``_apply_dense``, the same
    operations a few rows at a time): whole first-pass rows are gathered instead of single
    values, and only the coarse rows the output touches get a first pass."""
    ny = c.shape[1]
    if s == 1:
        return np.moveaxis(c[:, iy : iy + hh, ix : ix + ww].astype(np.float32), 0, -1)
    y0, y1, fy = _taps(np.arange(hh), iy, ny, s)
    first = int(y0.min())
    rows = _h_pass(c[:, first : int(y1.max()) + 1], s, ix, ww)
    return _v_pass(rows[y0 - first], rows[y1 - first], fy[:, None, None])


#: The guide's products needed for the 3x3 covariance: (0,0), (0,1), (0,2), (1,1), (1,2), (2,2).
_PAIRS = ([0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2])


def _solve_coeffs(I: np.ndarray, m: np.ndarray, w: np.ndarray | None, r: int, eps: float):
    """Guided-filter coefficients on the coarse grid. I (k, ny, nx), m (ny, nx), w weights or
    None; returns (mean a (k, ny, nx), mean b (ny, nx)), float64.

    Every (weighted) local mean of one tile is taken in one box-filter call over the stacked
    planes (w, I·w, m·w, I·m·w, Ii·Ij·w), and the coefficients' means in a second: the same
    values as a call a quantity (each plane is filtered on its own), 2 calls a tile
    instead of 12."""
    k = I.shape[0]
    n_pairs = 1 if k == 1 else 6
    products = I * I if k == 1 else I[_PAIRS[0]] * I[_PAIRS[1]]
    planes = [I, m[None], I * m, products]
    stack = np.concatenate(([w[None]] if w is not None else []) + planes)
    if w is not None:
        stack[1:] *= w
    boxed = _box(stack, r)
    if w is not None:
        boxed = boxed[1:] / boxed[0]
    mI, mp, mIm, mII = boxed[:k], boxed[k], boxed[k + 1 : 2 * k + 1], boxed[2 * k + 1 : 2 * k + 1 + n_pairs]
    cov = mIm - mI * mp
    if k == 1:
        var = mII[0] - mI * mI
        a = cov / (var + eps)
    else:
        # Symmetric 3x3 (Σ + eps·Id) a = cov, solved in closed form per cell.
        S = {}
        for n, (i, j) in enumerate(zip(*_PAIRS)):
            S[i, j] = mII[n] - mI[i] * mI[j]
        a00, a01, a02 = S[0, 0] + eps, S[0, 1], S[0, 2]
        a11, a12, a22 = S[1, 1] + eps, S[1, 2], S[2, 2] + eps
        c00 = a11 * a22 - a12 * a12
        c01 = a02 * a12 - a01 * a22
        c02 = a01 * a12 - a02 * a11
        c11 = a00 * a22 - a02 * a02
        c12 = a01 * a02 - a00 * a12
        c22 = a00 * a11 - a01 * a01
        det = a00 * c00 + a01 * c01 + a02 * c02
        a = np.stack(
            [
                (c00 * cov[0] + c01 * cov[1] + c02 * cov[2]) / det,
                (c01 * cov[0] + c11 * cov[1] + c12 * cov[2]) / det,
                (c02 * cov[0] + c12 * cov[1] + c22 * cov[2]) / det,
            ]
        )
    b = mp - (a * mI).sum(axis=0)
    ab = _box(np.concatenate([a, b[None]]), r)
    return ab[:k], ab[k]


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in 0..255 units, float32, (..., 3) → (...): float32 products summed in
    float64, then rounded, exactly as ``web/refine.js`` does (a BLAS matrix product would
    round differently depending on the array's length and layout)."""
    p = rgb.astype(np.float32) * np.array([0.299, 0.587, 0.114], np.float32)
    return (p[..., 0].astype(np.float64) + p[..., 1] + p[..., 2]).astype(np.float32)


def _blend_weight(m: np.ndarray, p: GuidedParams) -> np.ndarray:
    """How much of the refined value replaces m: (4m(1-m))^k, shifted so it is exactly 0 at
    m <= lo and m >= hi (= 1 - lo) and continuous; k = 0 replaces the band fully."""
    if p.k == 0:
        return ((m > p.lo) & (m < 1 - p.lo)).astype(np.float32)
    v = m * (1 - m)
    v *= 4
    if p.k != 1:
        v **= np.float32(p.k)
    v0 = np.float32((4 * p.lo * (1 - p.lo)) ** p.k)
    v -= v0
    v *= np.float32(1 / (1 - v0))
    return np.maximum(v, 0, out=v)


def _coarse_grid(rgba, mask, s: int, ny: int, nx: int, colour: bool, band: int):
    """Block means of the guide (k, ny, nx; 0..1) and the mask (ny, nx) over the whole coarse
    grid, float64, computed in bands of ``band`` coarse rows (bounded temporaries). Cells line
    up with the tiles', so each tile slices the same sums it would have computed itself, once
    instead of again for every overlapping halo."""
    k = 3 if colour else 1
    guide = np.empty((k, ny, nx), np.float64)
    m_lo = np.empty((ny, nx), np.float64)
    h = mask.shape[0]

    def rows(cy: int) -> None:  # bands write disjoint rows: they run on a few threads
        cy1 = min(ny, cy + band)
        fy0, fy1 = cy * s, min(h, cy1 * s)
        if colour:  # all four channels: contiguous rows sum 2x faster than an RGB view
            src = rgba[fy0:fy1]
        else:
            src = _luma(rgba[fy0:fy1, :, :3])[..., None]
        guide[:, cy:cy1] = np.moveaxis(_downsample(src, s, cy1 - cy, nx)[..., :k], -1, 0) / 255.0
        m_lo[cy:cy1] = _downsample(mask[fy0:fy1], s, cy1 - cy, nx)

    parallel.map_ordered(rows, range(0, ny, band), "alphacut-refine")
    return guide, m_lo


#: Full-resolution pixels per step of a dense tile: the step's temporaries stay small (about a
#: MB a thread) instead of tile-sized arrays (tens of MB each, fresh pages every time), yet each
#: NumPy call is long enough to leave the GIL to the other tile threads most of the time:
#: at 1 << 14 two threads gained 1.3x over one, at 1 << 16 1.4x and both ran 20 % faster
#: (48 MP photo with a 23 MP uncertain band, quiet 2 cores: 0.58 -> 0.45 s; same bytes).
APPLY_PIXELS = 1 << 16


def _apply(coef: np.ndarray, gi: np.ndarray, mv: np.ndarray, p: GuidedParams) -> np.ndarray:
    """The refined value at pixels with coefficients ``coef`` (..., k) (or the k planes of a
    sequence), guide ``gi`` (..., 3) uint8 and mask ``mv``: q = b + a·I clipped, blended
    into ``mv`` by the band weight; float32 in the order ``web/refine.js`` computes it."""
    q = np.array(coef[-1] if isinstance(coef, list) else coef[..., -1], np.float32)
    plane = (lambda c: coef[c]) if isinstance(coef, list) else (lambda c: coef[..., c])
    if p.colour:
        for c in range(3):
            q += plane(c) * gi[..., c]
    else:
        q += plane(0) * _luma(gi)
    np.clip(q, 0.0, 1.0, out=q)
    q -= mv
    q *= _blend_weight(mv, p)
    q += mv
    return np.clip(q, 0.0, 1.0, out=q)


def _apply_dense(
    c: np.ndarray, s: int, iy: int, ix: int, gi: np.ndarray, mt: np.ndarray, sel: np.ndarray, dst: np.ndarray, p: GuidedParams
) -> None:
    """A dense tile: the coefficients upsampled as ``_upsample_dense`` does (the same float
    operations, so the same values), applied and written to ``dst`` where ``sel``, a few rows
    at a time. ``dst`` may be ``mt`` itself: each step reads its rows before writing them.

    The rows between two coarse rows share their two first-pass rows, so their vertical
    pass is an outer product of those rows with the rows' weights: no gathered copies."""
    k, ny = c.shape[0], c.shape[1]
    hh, ww = mt.shape
    if s == 1:
        planes = c[:, iy : iy + hh, ix : ix + ww].astype(np.float32)
        step = max(1, APPLY_PIXELS // max(ww, 1))
        for a in range(0, hh, step):
            b = min(hh, a + step)
            span = _span(sel[a:b])
            if span is not None:
                x = slice(*span)
                q = _apply([pl[a:b, x] for pl in planes], gi[a:b, x], mt[a:b, x], p)
                np.copyto(dst[a:b, x], q, where=sel[a:b, x])
        return
    y0, y1, fy = _taps(np.arange(hh), iy, ny, s)
    first, last = int(y0.min()), int(y1.max())
    # the first pass (float32 values) as float64 planes (k, coarse rows, ww)
    rows = np.ascontiguousarray(np.moveaxis(_h_pass(c[:, first : last + 1], s, ix, ww), -1, 0), np.float64)
    fy0 = 1 - fy
    # runs of rows sharing both first-pass rows (at most s rows; edges are clamped)
    starts = np.flatnonzero((np.diff(y0, prepend=-1) != 0) | (np.diff(y1, prepend=-1) != 0))
    longest = int(np.diff(np.append(starts, hh)).max())
    starts = starts.tolist() + [hh]
    step = max(APPLY_PIXELS // max(ww, 1), 1)
    coef = np.empty((k, step + longest, ww), np.float32)
    t0 = np.empty((longest, ww), np.float64)
    t1 = np.empty_like(t0)
    i = 0
    while i < len(starts) - 1:
        a = starts[i]
        j = i + 1
        while j < len(starts) - 1 and starts[j + 1] - a <= step:
            j += 1
        b = starts[j]  # rows a..b: whole runs, about ``step`` rows
        span = _span(sel[a:b])
        if span is not None:  # only the columns from the first to the last uncertain pixel
            x0, x1 = span
            x, n_x = slice(x0, x1), x1 - x0
            for u, v in zip(starts[i:j], starts[i + 1 : j + 1]):
                top, bot = rows[:, y0[u] - first, x], rows[:, y1[u] - first, x]
                n = v - u
                for m in range(k):
                    np.multiply(top[m], fy0[u:v, None], out=t0[:n, :n_x])
                    np.multiply(bot[m], fy[u:v, None], out=t1[:n, :n_x])
                    np.add(t0[:n, :n_x], t1[:n, :n_x], out=coef[m, u - a : v - a, :n_x], casting="same_kind")
            q = _apply([pl[: b - a, :n_x] for pl in coef], gi[a:b, x], mt[a:b, x], p)
            np.copyto(dst[a:b, x], q, where=sel[a:b, x])
        i = j


def _span(sel: np.ndarray) -> tuple[int, int] | None:
    """(first, last + 1) column holding a True in ``sel``, or None."""
    cols = np.flatnonzero(sel.any(axis=0))
    return (int(cols[0]), int(cols[-1]) + 1) if cols.size else None


def guided_refine(
    rgba: np.ndarray, mask: np.ndarray, p: GuidedParams = GuidedParams(), *, stats: dict | None = None, in_place: bool = False
) -> np.ndarray:
    """Fast (optionally confidence-weighted) guided filter in the uncertain band, tiled.

    Tiles write disjoint parts of the output and read only shared inputs, so they run on a
    few threads; the result does not depend on the order or the thread count. With ``in_place`` a writable
    float32 mask becomes the output (no second full-size array): each tile reads its own pixels of the mask before it writes them, and the coarse
    grid is computed before any tile runs."""
    h, w = mask.shape
    s, r = grid_geometry(h, w, p)
    ny, nx = -(-h // s), -(-w // s)
    halo = 2 * r + 2  # coarse cells: the regression window, the coefficient mean, interpolation
    T = max(8, p.tile)
    writable = mask.dtype == np.float32 and mask.flags.writeable and mask.flags.c_contiguous
    out = mask if in_place and writable else mask.astype(np.float32, copy=True)
    lo, hi = np.float32(p.lo), np.float32(1 - p.lo)

    def uncertain(ty: int) -> list[tuple[int, int, int, int]]:
        """The coarse cells (y0, y1, x0, x1) bounding the uncertain pixels of each tile of one
        row of tiles; tiles without any are left out."""
        found = []
        for tx in range(0, nx, T):
            mt = mask[ty * s : min(h, (ty + T) * s), tx * s : min(w, (tx + T) * s)]
            sel = (mt > lo) & (mt < hi)
            rows = np.flatnonzero(sel.any(axis=1))
            if rows.size:
                cols = np.flatnonzero(sel.any(axis=0))
                found.append((ty + rows[0] // s, ty + rows[-1] // s + 1, tx + cols[0] // s, tx + cols[-1] // s + 1))
        return found

    todo = [t for row in parallel.map_ordered(uncertain, range(0, ny, T), "alphacut-refine") for t in row]
    if stats is not None:
        stats.update(tiles=-(-ny // T) * -(-nx // T), tiles_refined=len(todo), cell=s, radius=r)
    if not todo:
        return out
    # (guide, mask) block means on the whole coarse grid: each tile slices its crop with halo
    coarse = _coarse_grid(rgba, mask, s, ny, nx, p.colour, GRID_BAND)

    def tile(by0: int, by1: int, bx0: int, bx1: int) -> None:
        # Only the tile's cells around its uncertain pixels: a thin band leaves most of a
        # tile out (2.5x fewer coarse cells to solve on the photos of bench/), and the
        # regression at each kept cell sees the same window as on the whole grid.
        y0, y1 = by0 * s, min(h, by1 * s)  # those cells' full-resolution pixels
        x0, x1 = bx0 * s, min(w, bx1 * s)
        mt = mask[y0:y1, x0:x1]
        sel = (mt > lo) & (mt < hi)  # only these pixels can change
        cy0, cy1 = max(0, by0 - halo), min(ny, by1 + halo)  # coarse crop with halo
        cx0, cx1 = max(0, bx0 - halo), min(nx, bx1 + halo)
        I_lo = coarse[0][:, cy0:cy1, cx0:cx1]
        m_lo = coarse[1][cy0:cy1, cx0:cx1]
        wt = None
        if p.gamma > 0:
            wt = np.abs(2.0 * m_lo - 1.0) ** p.gamma + p.weight_floor
        A, B = _solve_coeffs(I_lo, m_lo, wt, r, p.eps)
        A /= 255.0  # so that the full-res guide is used in 0..255 units
        coefs = np.concatenate([A, B[None]])
        if np.count_nonzero(sel) > DENSE_SHARE * sel.size:
            # Most of the tile is uncertain: compute it whole, keep the band's values.
            _apply_dense(coefs, s, by0 - cy0, bx0 - cx0, rgba[y0:y1, x0:x1, :3], mt, sel, out[y0:y1, x0:x1], p)
            return
        ys, xs = np.nonzero(sel)
        coef = _sample(coefs, s, by0 - cy0, bx0 - cx0, ys, xs)
        q = _apply(coef, rgba[y0 + ys, x0 + xs, :3], mt[ys, xs], p)
        out[y0 + ys, x0 + xs] = q

    parallel.map_ordered(lambda t: tile(*t), todo, "alphacut-refine")
    return out


# ----------------------------------------------------------------------------- registry


def _none(rgba: np.ndarray, mask: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    return mask


def _guided(params: GuidedParams) -> Refiner:
    fn = partial(guided_refine, p=params)
    fn.params = params  # type: ignore[attr-defined]
    return fn


GF_GREY = GuidedParams(colour=False, gamma=0.0, k=0.0)
GF_COLOUR = GuidedParams(colour=True, gamma=0.0, k=0.0)
CWGF = GuidedParams()  # measured default: radius 3, eps 3e-4, gamma 1, k 1

REFINERS: dict[str, Refiner] = {
    "none": _none,
    "gf-grey": _guided(GF_GREY),
    "gf-colour": _guided(GF_COLOUR),
    "cwgf-grey": _guided(replace(CWGF, colour=False)),
    "cwgf": _guided(CWGF),
}
DEFAULT_REFINE = "cwgf"


def refine(method: str, rgba: np.ndarray, mask: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    try:
        fn = REFINERS[method]
    except KeyError:
        raise ValueError(f"unknown refinement {method!r}; choose from {', '.join(REFINERS)}") from None
    return fn(rgba, mask, in_place=in_place)

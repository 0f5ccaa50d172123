"""Foreground stage (optional, ``--decontaminate``): estimate the subject's own colour in
semi-transparent pixels, so no background colour bleeds onto a new background.

It runs after compose on the cut-out's own alpha and changes RGB only where 0 < alpha < 255;
the coarse-grid helpers (box mean, block downsample, bilinear upsample) are the refine
stage's.
"""

from __future__ import annotations

import math

import numpy as np

from alphacut.stages.refine import _box, _downsample, _upsample_dense


def estimate_foreground(rgba: np.ndarray, alpha: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Foreground colours for semi-transparent pixels (colour decontamination).

    Blur-fusion estimator (Germer, Uelwer, Conrad & Harmeling, "Fast multi-level foreground
    estimation" / blur fusion, 2021), two passes: a large window estimates smooth foreground
    and background colours, a small one refines them. The large pass is smooth by nature, so it
    runs on the coarse grid (cells of ceil(long side / 1024) pixels) and is upsampled; the
    small pass runs at full resolution in row bands: cost linear in pixels, memory bounded.
    ``alpha`` (H, W): float in [0, 1], or uint8 read as A / 255; returns (H, W, 3) uint8.
    Pixels with alpha 0 or 1 (0 or 255) keep their colour exactly; in between, the colour
    becomes the estimated foreground.
    """
    h, w = alpha.shape
    if radius is None:
        radius = max(32, round(90 * max(h, w) / 1024))
    small = max(2, radius // 15)
    out = rgba[..., :3].copy()
    # uint8 alpha (the cut-out's own alpha channel) is read as A / 255 band by band, so the
    # caller needs no float copy of a large photo's alpha.
    full_scale = 255 if alpha.dtype == np.uint8 else 1
    inner_all = (alpha > 0) & (alpha < full_scale)
    if not inner_all.any():
        return out
    # Pass 1 on the coarse grid: smooth foreground / background colour estimates.
    s = max(1, math.ceil(max(h, w) / 1024))
    ny, nx = -(-h // s), -(-w // s)
    img_c = (_downsample(rgba[..., :3], s, ny, nx) / 255.0).astype(np.float32)
    a_src = alpha if full_scale == 255 else alpha.astype(np.float32, copy=False)
    a_c = np.clip(_downsample(a_src, s, ny, nx) / full_scale, 0, 1).astype(np.float32)[..., None]
    r_c = max(1, round(radius / s))
    bF, bB = _blur_means(img_c, img_c, a_c, r_c)
    coarse = np.moveaxis(np.concatenate([bF, bB], -1), -1, 0)  # (6, ny, nx)
    # Pass 2 at full resolution, in row bands aligned to the coarse cells.
    halo = -(-(small + 1) // s) * s
    band = max(s, ((1 << 20) // max(w, 1)) // s * s)
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        inner = inner_all[y0:y1]
        if not inner.any():
            continue
        cy0, cy1 = max(0, y0 - halo), min(h, y1 + halo)
        img = rgba[cy0:cy1, :, :3].astype(np.float32) * np.float32(1 / 255)
        a = np.clip(alpha[cy0:cy1].astype(np.float32) / np.float32(full_scale), 0, 1)[..., None]
        up = _upsample_dense(coarse, s, cy0 // s, 0, cy1 - cy0, w)
        bF1, bB1 = up[..., :3], up[..., 3:]
        F1 = np.clip(bF1 + a * (img - a * bF1 - (1 - a) * bB1), 0, 1)
        bF2, bB2 = _blur_means(F1, bB1, a, small)
        F2 = np.clip(bF2 + a * (img - a * bF2 - (1 - a) * bB2), 0, 1)
        sl = slice(y0 - cy0, y1 - cy0)
        res = np.floor(F2[sl] * 255 + 0.5).astype(np.uint8)
        out[y0:y1][inner] = res[inner]
    return out


def _blur_means(F, B, a, r):
    """Alpha-weighted local means of F and (1 - alpha)-weighted local means of B (H, W, C)."""
    ba = _box(a, r, (0, 1))
    bF = _box(F * a, r, (0, 1)) / (ba + 1e-5)
    bB = _box(B * (1 - a), r, (0, 1)) / ((1 - ba) + 1e-5)
    return bF, bB

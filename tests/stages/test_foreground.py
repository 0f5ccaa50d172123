"""Colour decontamination (the foreground stage): the true colour recovered in the soft band,
opaque and clear pixels kept, uint8 alpha read as A / 255, bounded memory at 48 MP."""

from __future__ import annotations

import tracemalloc

import numpy as np

from alphacut.stages.foreground import estimate_foreground


def _composite(h=256, w=384, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    F = np.stack([np.full((h, w), 230.0), 120 + 40 * np.sin(yy / 9), np.full((h, w), 20.0)], -1)
    B = np.stack([20 + 30 * np.cos(xx / 11), np.full((h, w), 60.0), np.full((h, w), 210.0)], -1)
    alpha = np.clip((w / 2 - xx) / 12 + 0.5, 0, 1).astype(np.float32)  # a soft band
    alpha = np.clip(alpha + rng.normal(0, 0.02, alpha.shape).astype(np.float32) * (alpha > 0) * (alpha < 1), 0, 1)
    I = alpha[..., None] * F + (1 - alpha[..., None]) * B
    rgba = np.concatenate([np.clip(np.rint(I), 0, 255), np.full((h, w, 1), 255)], -1).astype(np.uint8)
    return rgba, alpha, F


def test_estimate_foreground_recovers_true_colour_in_the_band():
    rgba, alpha, F = _composite()
    est = estimate_foreground(rgba, alpha)
    assert est.shape == rgba.shape[:2] + (3,) and est.dtype == np.uint8
    band = (alpha > 0.1) & (alpha < 0.9)
    err_in = np.abs(rgba[..., :3].astype(float) - F)[band].mean()
    err_est = np.abs(est.astype(float) - F)[band].mean()
    assert err_est < 0.5 * err_in, (err_in, err_est)
    # Opaque and fully transparent pixels keep their colour.
    keep = (alpha == 0) | (alpha == 1)
    assert np.array_equal(est[keep], rgba[..., :3][keep])


def test_estimate_foreground_without_band_is_identity():
    rgba = np.random.default_rng(0).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    alpha = np.zeros((20, 30), np.float32)
    alpha[:, :10] = 1
    assert np.array_equal(estimate_foreground(rgba, alpha), rgba[..., :3])


def test_estimate_foreground_48mp_memory_is_bounded():
    """Colour decontamination on 8000x6000 works in bands: memory beyond the output is bounded."""
    h, w = 6000, 8000
    y = np.arange(h, dtype=np.float32)
    col = np.clip((3000.5 - y) / 40.0 + 0.5, 0, 1).astype(np.float32)  # one soft horizontal edge
    alpha = np.broadcast_to(col[:, None], (h, w))
    rgba = np.broadcast_to(np.array([[180, 90, 40, 255]], np.uint8), (h, w, 4))
    tracemalloc.start()
    try:
        out = estimate_foreground(rgba, alpha)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (h, w, 3)
    extra = peak - out.nbytes
    assert extra < 400 * 2**20, f"{extra / 2**20:.0f} MiB beyond the output"
    # A flat colour is its own foreground everywhere.
    assert np.array_equal(out[2900:3100, ::500], np.broadcast_to([180, 90, 40], (200, 16, 3)))


def test_estimate_foreground_reads_uint8_alpha():
    rgba, alpha, _ = _composite()
    a8 = np.floor(alpha * 255 + 0.5).astype(np.uint8)
    from_u8 = estimate_foreground(rgba, a8)
    from_f = estimate_foreground(rgba, a8.astype(np.float32) / 255)
    assert np.abs(from_u8.astype(int) - from_f).max() <= 1
    keep = (a8 == 0) | (a8 == 255)
    assert np.array_equal(from_u8[keep], rgba[..., :3][keep])

"""The mask stage's float resize (a NumPy port of Pillow's mode-F BILINEAR) and the
full-resolution stages that run in bands on threads."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alphacut.stages import compose, mask, refine


def _pillow_resize(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.array(Image.fromarray(m, "F").resize(size, Image.Resampling.BILINEAR), np.float32)
    return np.clip(out, 0.0, 1.0)


@pytest.mark.parametrize(
    ("src", "size"),
    [
        ((64, 64), (1000, 700)),  # upscale, non-integer factors
        ((64, 64), (64, 301)),  # one axis unchanged
        ((64, 64), (333, 64)),
        ((64, 48), (40, 30)),  # shrinking: Pillow's own (it may run the vertical pass first)
        ((64, 64), (1, 1)),
        ((13, 17), (171, 29)),  # up on one axis, down on the other
        ((48, 64), (1000, 130)),  # non-square, enlarged on both axes
        ((5, 7), (5, 7)),  # unchanged: a copy
    ],
)
@pytest.mark.parametrize("threads", ["1", "3"])
def test_upscale_is_pillow_mode_f_bilinear_bit_for_bit(src, size, threads, rng, monkeypatch):
    monkeypatch.setenv("ALPHACUT_THREADS", threads)
    m = rng.random(src, dtype=np.float32)
    m[0, 0], m[-1, -1] = 0.0, 1.0
    got = mask.upscale(m, size)
    assert got.dtype == np.float32 and got.shape == (size[1], size[0])
    assert np.array_equal(got, _pillow_resize(m, size))
    assert got is not m


def test_refine_in_place_gives_the_same_mask_in_the_same_array(rng):
    h, w = 700, 900
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.clip(1.3 - np.hypot(yy - 350, xx - 450) / 250, 0, 1).astype(np.float32)
    kept = m.copy()
    copied = refine.refine("cwgf", rgba, m)
    assert np.array_equal(m, kept)  # not in place: the input is untouched
    same = refine.refine("cwgf", rgba, m, in_place=True)
    assert same is m
    assert np.array_equal(same, copied) and not np.array_equal(same, kept)


def test_compose_bands_do_not_depend_on_thread_count(rng, monkeypatch):
    h, w = 1700, 1500  # several 2 MP bands
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    m = rng.random((h, w), dtype=np.float32)
    outs = []
    for n in ("1", "3"):
        monkeypatch.setenv("ALPHACUT_THREADS", n)
        outs.append(compose.apply_mask(rgba, m))
    assert np.array_equal(outs[0], outs[1])
    want = np.floor(rgba[..., 3].astype(np.float64) * m + 0.5).astype(np.uint8)
    assert np.array_equal(outs[0][..., 3], want) and np.array_equal(outs[0][..., :3], rgba[..., :3])
    inplace = rgba.copy()
    assert compose.apply_mask(inplace, m, in_place=True) is inplace
    assert np.array_equal(inplace, outs[0])

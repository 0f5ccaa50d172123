"""Refinement: synthetic cases (sharper edges across colour edges, flat regions kept, range and
dtype, tile invariance, bounded memory on a 48 MP call)."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

from alphacut.stages import foreground
from alphacut.stages import refine as rf


def _edge_case(h=48, w=1024, width=6.0):
    """Red | blue with a sharp vertical edge at w/2, and a mask blurred across it (about as
    wide as an upscaled model mask's transition)."""
    x = np.arange(w, dtype=np.float32) - (w / 2 - 0.5)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, : w // 2, 0] = 220  # subject: red
    rgba[:, w // 2 :, 2] = 200  # background: blue
    rgba[:, : w // 2, 1] = 40
    step = np.broadcast_to((x < 0).astype(np.float32), (h, w))
    blurred = np.broadcast_to(1 / (1 + np.exp(np.clip(x / (width / 4), -50, 50))), (h, w)).astype(np.float32)
    return rgba, np.ascontiguousarray(blurred), step


@pytest.mark.parametrize("method", ["cwgf", "cwgf-grey"])
def test_blurred_edge_across_colour_edge_gets_sharper(method):
    rgba, m, step = _edge_case()
    out = rf.refine(method, rgba, m)
    before = np.abs(m - step).sum()
    after = np.abs(out - step).sum()
    assert after < 0.8 * before, (method, before, after)
    # Steeper across the edge, and the 0.5 crossing stays on the colour edge.
    assert np.array_equal(out >= 0.5, step >= 0.5)
    c = m.shape[1] // 2
    assert out[0, c - 1] - out[0, c] > 1.5 * (m[0, c - 1] - m[0, c])


def test_plain_guided_filter_is_not_worse_on_the_edge():
    rgba, m, step = _edge_case()
    out = rf.refine("gf-colour", rgba, m)
    assert np.abs(out - step).sum() <= np.abs(m - step).sum()


def test_default_is_measured_method_and_none_kept():
    assert rf.DEFAULT_REFINE == "cwgf"
    rgba, m, _ = _edge_case()
    assert rf.refine("none", rgba, m) is m
    with pytest.raises(ValueError):
        rf.refine("nope", rgba, m)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.002, 0.999])
def test_confident_regions_unchanged(value):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (64, 80, 4), dtype=np.uint8)
    m = np.full((64, 80), value, np.float32)
    out = rf.refine(rf.DEFAULT_REFINE, rgba, m)
    assert np.array_equal(out, m)


def test_flat_image_keeps_a_flat_uncertain_mask():
    rgba = np.full((40, 50, 4), 128, np.uint8)
    m = np.full((40, 50), 0.3, np.float32)
    out = rf.refine(rf.DEFAULT_REFINE, rgba, m)
    assert np.allclose(out, 0.3, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (57, 33), (300, 450), (1500, 700)])
def test_range_dtype_shape(shape):
    rng = np.random.default_rng(sum(shape))
    rgba = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    m = rng.random(shape, dtype=np.float32)
    for method in rf.REFINERS:
        out = rf.refine(method, rgba, m)
        assert out.shape == shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("shape", [(300, 420), (2300, 900)])  # cell 1 and cell 2
def test_tiles_do_not_change_the_result(shape):
    rng = np.random.default_rng(7)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    m = np.clip(0.5 + (np.sin(xx / 37.0) + np.cos(yy / 23.0)) * 0.8, 0, 1).astype(np.float32)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 0] = (m * 200).astype(np.uint8)
    p = rf.CWGF
    one = rf.guided_refine(rgba, m, rf.GuidedParams(**{**p.__dict__, "tile": 4096}))
    many = rf.guided_refine(rgba, m, rf.GuidedParams(**{**p.__dict__, "tile": 16}))
    assert np.abs(one - many).max() < 1e-5


@pytest.mark.parametrize("shape", [(600, 800), (1500, 2100)])  # cell 1 and cell 3
def test_solving_only_around_the_band_changes_nothing(shape):
    """A tile solves only the cells bounding its uncertain pixels plus the halo: a small soft
    blob gives the same values as when uncertain pixels in two far corners stretch that box
    over the whole photo."""
    rng = np.random.default_rng(11)
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    d = np.hypot(yy - h * 0.45, xx - w * 0.55) - min(h, w) * 0.08
    m = np.clip(0.5 - d / 6.0, 0, 1).astype(np.float32)  # a disc with a soft edge
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 1] = np.where(d < 0, 220, 30).astype(np.uint8)
    p = replace(rf.CWGF, tile=4096)  # one tile
    small_box = rf.guided_refine(rgba, m, p)
    wide = m.copy()
    wide[0, 0] = wide[-1, -1] = 0.5
    whole = rf.guided_refine(rgba, wide, p)
    band = (m > 0.02) & (m < 0.98)
    assert band.sum() > 1000 and np.abs(small_box - m)[band].max() > 0.01  # it did refine
    far = np.ones((h, w), bool)
    far[:64, :64] = far[-64:, -64:] = False  # the corners' own neighbourhoods differ
    assert np.abs(small_box - whole)[far].max() < 1e-6


def test_48mp_call_has_bounded_memory():
    """A 48 MP photo (8000x6000): beyond the output mask, memory is bounded by the tile size."""
    h, w = 6000, 8000
    x = np.arange(w, dtype=np.float32)
    row = np.clip((4000.5 - x) / 24.0 + 0.5, 0, 1).astype(np.float32)  # one soft vertical edge
    mask = np.broadcast_to(row, (h, w))  # no memory of its own
    px = np.array([[200, 30, 30, 255]], np.uint8)
    rgba = np.broadcast_to(px, (h, w, 4))
    stats: dict = {}
    tracemalloc.start()
    try:
        out = rf.guided_refine(rgba, mask, stats=stats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra = peak - out.nbytes
    assert stats["cell"] == 8 and 0 < stats["tiles_refined"] < stats["tiles"]
    assert extra < 160 * 2**20, f"{extra / 2**20:.0f} MiB beyond the output"
    assert out.shape == (h, w) and out.dtype == np.float32


def test_cost_is_linear_band_only():
    """Tiles without an uncertain pixel are skipped: cost follows the band, not the photo."""
    stats: dict = {}
    m = np.zeros((2048, 2048), np.float32)
    m[:, :1024] = 1.0
    m[:, 1020:1028] = 0.5
    rgba = np.zeros((2048, 2048, 4), np.uint8)
    rf.guided_refine(rgba, m, stats=stats)
    assert stats["tiles_refined"] <= stats["tiles"] // 2 + 1


# ----------------------------------------------------------------------------- foreground


def test_js_vectors_are_current():
    """tests/js/refine_vectors.json (checked by the JS port) still matches this implementation."""
    import base64
    import json
    import sys
    from pathlib import Path

    here = Path(__file__).parents[1] / "js"
    data = json.loads((here / "refine_vectors.json").read_text())
    sys.path.insert(0, str(here))
    try:
        import make_refine_vectors as mk
    finally:
        sys.path.pop(0)
    by_name = {c["name"]: c for c in data["cases"]}
    for name, h, w, seed, params, _ in mk.cases():
        rgba, m = mk.scene(h, w, seed)
        stored = np.frombuffer(base64.b64decode(by_name[name]["expected_f32_b64"]), "<f4").reshape(h, w)
        assert np.abs(rf.guided_refine(rgba, m, params) - stored).max() < 1e-6, name


def test_box_mean_without_scipy_matches(monkeypatch):
    """The NumPy fallback box mean (an install without SciPy) gives the same refinement."""
    rgba, m, _ = _edge_case(h=40, w=300)
    x = np.random.default_rng(2).random((3, 7, 5))
    for r in (1, 3, 9):  # 9: the window is wider than the array (repeated mirroring)
        assert np.abs(rf._box(x, r) - rf._box_numpy(x, r)).max() < 1e-12
    with_scipy = rf.refine("cwgf", rgba, m)
    fg_scipy = foreground.estimate_foreground(rgba, m)
    monkeypatch.setattr(rf, "_uniform_filter", None)
    assert np.abs(rf.refine("cwgf", rgba, m) - with_scipy).max() < 1e-6
    assert np.abs(foreground.estimate_foreground(rgba, m).astype(int) - fg_scipy).max() <= 1


def test_box_filter_loaded_without_the_scipy_ndimage_package(monkeypatch):
    """SciPy's C box filter is loaded on its own (the package import costs 0.4 s) and gives
    what ``scipy.ndimage.uniform_filter`` gives, bit for bit; a routine that disagrees with
    the NumPy reference is not used."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from alphacut.stages import refine as rf; "
        "rf._box(np.ones((4, 5)), 1); print(rf._uniform_filter is not None, 'scipy.ndimage' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
    from scipy.ndimage import uniform_filter

    direct = rf._direct_uniform_filter(rf._load_nd_image())
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        for shape, size in (((7, 5), [3, 3]), ((3, 40, 30), [1, 7, 7]), ((40, 30, 3), [19, 19, 1]), ((6, 4), [1, 1])):
            x = rng.random(shape).astype(dtype)
            got = direct(x, size)
            assert got.dtype == dtype and np.array_equal(got, uniform_filter(x, size=size, mode="reflect"))

    class Wrong:
        @staticmethod
        def uniform_filter1d(src, n, axis, out, mode, cval, origin):
            out[...] = 0

    monkeypatch.setattr(rf, "_load_nd_image", lambda: Wrong)
    monkeypatch.setattr(rf, "_uniform_filter", rf._NOT_LOADED)
    x = rng.random((3, 20, 20))
    assert np.array_equal(rf._box(x, 2), uniform_filter(x, size=[1, 5, 5], mode="reflect"))  # the public one


@pytest.mark.parametrize("colour", [True, False])
def test_dense_and_sparse_tiles_give_the_same_values(monkeypatch, rng, colour):
    refine = rf
    """A tile mostly in the uncertain band is computed whole, a sparse one pixel by pixel;
    both must give exactly the values the other would (s > 1, several tiles, partial cells)."""
    h, w = 2300, 1700  # s = 3 on the coarse grid
    yy, xx = np.mgrid[0:h, 0:w]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgba[..., 3] = 255
    # left half: a soft ramp (dense band); right half: a sharp disc edge (thin band)
    m = np.where(xx < w // 2, xx / (w // 2), (np.hypot(yy - h / 2, xx - 3 * w / 4) < 300)).astype(np.float32)
    m[:, w // 2 :] = np.clip(m[:, w // 2 :] + rng.normal(0, 0.002, (h, w - w // 2)), 0, 1)
    p = refine.GuidedParams(colour=colour)
    st = {}
    mixed = refine.guided_refine(rgba, m, p, stats=st)
    monkeypatch.setattr(refine, "DENSE_SHARE", 2.0)  # never dense
    sparse = refine.guided_refine(rgba, m, p)
    monkeypatch.setattr(refine, "DENSE_SHARE", -1.0)  # always dense
    dense = refine.guided_refine(rgba, m, p)
    # in place, a dense tile reads each step's mask rows before it writes them
    monkeypatch.setattr(refine, "APPLY_PIXELS", 1000)  # many small steps
    in_place = refine.guided_refine(rgba, m.copy(), p, in_place=True)
    assert st["cell"] == 3 and st["tiles"] > 4
    assert np.array_equal(mixed, sparse) and np.array_equal(dense, sparse)
    assert np.array_equal(in_place, sparse)
    assert not np.array_equal(sparse, m)  # the refinement did change the band


def test_thread_count_does_not_change_the_result(monkeypatch, rng):
    """Tiles run on a thread pool; one thread or several must give the same bytes."""
    h, w = 1500, 2600  # s = 3: several tiles, partial cells
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.clip(1.2 - np.hypot(yy - 700, xx - 1300) / 600, 0, 1).astype(np.float32)
    outs = []
    for n in ("1", "3"):
        monkeypatch.setenv("ALPHACUT_THREADS", n)
        outs.append(rf.guided_refine(rgba, m))
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], m)

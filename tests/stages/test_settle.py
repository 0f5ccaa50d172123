"""Settle stage: large half-believed regions attached to the subject are restored when the
photo's colours say subject; edges, background-coloured regions, detached regions and the
background are left alone; what stays uncertain is reported."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from alphacut.models.catalog import CATALOG
from alphacut.stages import preprocess
from alphacut.stages import settle as st

G = st.GRID
#: The shared development set (never copied here); ALPHACUT_EVAL_DEV points elsewhere.
DEV = Path(os.environ.get("ALPHACUT_EVAL_DEV") or Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "dev")


def _scene():
    """On the working grid: a red subject (core believed 0.97), a red part of it the network
    half-believes (0.35) and a blue-background part it half-believes too (0.4), both
    attached to the core; a detached red patch at 0.35; a thin uncertain band around the
    core; blue background at 0.02 with some texture."""
    rng = np.random.default_rng(1)
    rgb = np.zeros((G, G, 3), np.uint8)
    rgb[...] = (30, 40, 200)
    rgb += rng.integers(0, 12, rgb.shape, dtype=np.uint8)
    m = np.full((G, G), 0.02, np.float32)
    core = (slice(100, 300), slice(100, 300))
    red_part = (slice(300, 400), slice(120, 280))  # below the core, red
    blue_part = (slice(120, 280), slice(300, 380))  # right of the core, background colour
    far = (slice(430, 500), slice(420, 500))  # detached
    for sl in (core, red_part, far):
        rgb[sl] = (210, 40, 30)
    m[core] = 0.97
    m[red_part] = 0.35
    m[blue_part] = 0.4
    m[far] = 0.35
    band = np.zeros((G, G), bool)
    band[98:100, 100:300] = True  # a 2 px uncertain band along the core's top edge, subject-red
    m[band] = 0.5
    rgb[band] = (210, 40, 30)
    return rgb, m, core, red_part, blue_part, far, band


def test_restores_a_half_believed_part_and_leaves_the_rest():
    rgb, m, core, red_part, blue_part, far, band = _scene()
    out = st.settle(rgb, m)
    assert out.mask.dtype == np.float32 and out.mask.shape == m.shape
    assert out.mask[red_part].min() > 0.9  # red, attached, half-believed: restored
    assert np.array_equal(out.mask[blue_part], m[blue_part])  # background colour: never lowered, not raised
    assert np.array_equal(out.mask[far], m[far])  # not attached to the subject
    assert np.array_equal(out.mask[band], m[band])  # a thin edge band is the refine stage's
    bg = m <= 0.02
    assert np.array_equal(out.mask[bg], m[bg]) and np.array_equal(out.mask[core], m[core])
    assert out.settled == pytest.approx(16000 / G**2, rel=0.05)
    # Still uncertain afterwards: the blue part and the detached patch (about 3 % of the frame).
    assert out.uncertain == pytest.approx((160 * 80 + 70 * 80) / G**2, rel=0.1)
    x0, y0, x1, _ = out.box
    assert (x0, y0) == pytest.approx((300 / G, 120 / G), abs=2 / G) and x1 == pytest.approx(500 / G, abs=2 / G)
    assert out.notice() is not None and "uncertain" in out.notice()


def test_works_on_the_model_grid_and_keeps_its_size():
    """The pipeline hands the fused 1024x1024 model mask: the decision is made on the working
    grid and applied as a smooth correction at the mask's own size."""
    rgb, m, *_ = _scene()
    big = np.repeat(np.repeat(m, 2, 0), 2, 1)
    out = st.settle(rgb, big)
    assert out.mask.shape == (2 * G, 2 * G)
    assert out.mask[620:780, 260:540].min() > 0.9  # the red part, inside its borders
    assert np.array_equal(out.mask[:150], big[:150])  # far from any region: untouched


def test_nothing_to_settle():
    """A confident mask, a flat grey one, and no confident background to learn from."""
    rgb, m, *_ = _scene()
    sure = (m > 0.5).astype(np.float32)
    out = st.settle(rgb, sure)
    assert np.array_equal(out.mask, sure) and out.settled == 0 and out.uncertain == 0 and out.notice() is None
    grey = np.full((G, G), 0.5, np.float32)
    out = st.settle(rgb, grey)  # all uncertain, nothing confident: no subject to attach to
    assert np.array_equal(out.mask, grey) and out.settled == 0 and out.uncertain == 1.0
    assert out.notice().startswith("100% of the photo stays uncertain")
    no_bg = np.where(m < 0.1, 0.5, m).astype(np.float32)
    out = st.settle(rgb, no_bg)
    assert np.array_equal(out.mask, no_bg) and out.settled == 0


def test_guide_is_the_model_input_reduced():
    spec = CATALOG["isnet"]
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (300, 500, 4), dtype=np.uint8)
    tensor = preprocess.preprocess(rgba, spec)
    g = st.guide_from_tensor(tensor, spec.mean, spec.std)
    assert g.shape == (G, G, 3) and g.dtype == np.uint8
    small = preprocess.resize_rgb(rgba, spec.input_size).astype(np.float32)
    ref = small.reshape(G, 2, G, 2, 3).mean(axis=(1, 3))
    assert np.abs(g - ref).max() <= 1.0  # block means of the model input, rounded


@pytest.mark.model
def test_pipeline_restores_a_half_believed_flower_and_says_what_stays_uncertain():
    """The real model on the dev set's two flowers (alphamatting GT01: the second flower and
    most petals come out at 0.2-0.8): with settle the cut-out is closer to the ground truth,
    and the part that stays uncertain is named in the notice and the API's headers."""
    from alphacut.pipeline import Remover
    from alphacut.serve.api import result_headers

    photo, gt_file = DEV / "images" / "alphamatting_GT01.png", DEV / "gt" / "alphamatting_GT01.png"
    if not photo.is_file():
        pytest.skip(f"dev evaluation set not present at {DEV}")
    from PIL import Image

    gt = np.asarray(Image.open(gt_file).convert("L"), np.float32) / 255
    on = Remover().remove(photo)
    off = Remover(settle=False).remove(photo)
    err_on = np.abs(on.alpha / 255 - gt).sum()
    err_off = np.abs(off.alpha / 255 - gt).sum()
    assert err_on < 0.8 * err_off  # measured: 62.5k -> 39k
    assert off.uncertain == 0 and off.notice is None
    assert on.uncertain >= st.DEFAULT.notice_area and "stays uncertain" in on.notice
    assert "settle" in on.timings and "settle" not in off.timings
    h = result_headers(on)
    assert float(h["X-Alphacut-Uncertain"]) == pytest.approx(on.uncertain, abs=1e-3)
    x0, y0, x1, y1 = map(float, h["X-Alphacut-Uncertain-Box"].split(","))
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert result_headers(off) == {"X-Alphacut-Uncertain": "0.000"}


def test_browser_vectors_are_current():
    """tests/js/settle_vectors.json (the JS port's reference) still says what this stage does;
    after an intended change, run tests/js/make_settle_vectors.py."""
    import base64
    import json
    import zlib

    vec = json.loads((Path(__file__).resolve().parents[1] / "js" / "settle_vectors.json").read_text())

    def unpack(s, dtype, shape):
        return np.frombuffer(zlib.decompress(base64.b64decode(s)), dtype).reshape(shape)

    for c in vec["cases"]:
        n = c["size"]
        out = st.settle(unpack(c["guide"], np.uint8, (G, G, 3)), unpack(c["mask"], np.float32, (n, n)).copy())
        assert np.array_equal(out.mask, unpack(c["expected"], np.float32, (n, n)))
        assert (out.settled, out.uncertain, list(out.box)) == (c["settled"], c["uncertain"], c["box"])

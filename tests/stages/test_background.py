"""Rule 11 (backgrounds, shadow, crop) in Python, against the shared vectors the browser's
web/background.js also passes, and end to end through CutOut and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.stages import background as bgs

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "background.json").read_text())


def _options(o):
    b = o.get("background")
    bg = None
    if b:
        if b["kind"] == "color":
            bg = bgs.Background("color", color=tuple(b["color"]))
        elif b["kind"] == "image":
            im = b["image"]
            bg = bgs.Background("image", image=np.array(im["rgb"], np.uint8).reshape(im["height"], im["width"], 3), x=b["x"], y=b["y"])
        else:
            bg = bgs.Background("blur", radius=b["radius"])
    crop = o.get("crop")
    return bg, {"shadow": o.get("shadow", False), "crop": crop["padding"] if crop else None,
                "aspect": tuple(crop["aspect"]) if crop and crop["aspect"] else None}


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_shared_vectors(case):
    rgba = np.array(case["rgba"], np.uint8).reshape(case["height"], case["width"], 4)
    bg, kw = _options(case["options"])
    got = bgs.compose_file(rgba, bg, **kw)
    assert got.shape == (case["expected"]["height"], case["expected"]["width"], 4)
    assert got.reshape(-1).tolist() == case["expected"]["rgba"]


def test_vectors_file_is_current(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mgv", Path(__file__).parents[1] / "make_background_vectors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path / "background.json")
    mod.main()
    assert json.loads((tmp_path / "background.json").read_text()) == VECTORS


def test_crop_box_padding_and_aspect():
    a = np.zeros((80, 100), np.uint8)
    a[20:60, 10:30] = 7
    assert bgs.crop_box(a, "0") == (10, 20, 30, 60)
    assert bgs.crop_box(a, "15") == (0, 5, 45, 75)
    assert bgs.crop_box(a, "5%") == (8, 18, 32, 62)  # 5 % of 40 = 2
    assert bgs.crop_box(a, "0", (16, 9)) == (0, 20, 72, 60)
    assert bgs.crop_box(np.zeros((4, 6), np.uint8), "3") == (0, 0, 6, 4)


def test_box_blur_keeps_constants_and_colour_flattening_matches_rule_5():
    flat = np.full((9, 13, 3), 77, np.uint8)
    assert (bgs.box_blur(flat, 4) == 77).all()
    rgba = np.array([[[200, 100, 50, 128]]], np.uint8)
    out = bgs.compose_file(rgba, bgs.Background("color", color=(255, 255, 255)))
    assert out.tolist() == [[[227, 177, 152, 255]]]  # the worked example of the contract


def test_parse_background(tmp_path):
    from PIL import Image

    assert bgs.parse_background("#ff0000") == bgs.Background("color", color=(255, 0, 0))
    assert bgs.parse_background("blur") == bgs.Background("blur")
    assert bgs.parse_background("blur:12").radius == 12
    p = tmp_path / "bg.png"
    Image.new("RGB", (4, 3), (1, 2, 3)).save(p)
    assert bgs.parse_background(str(p)).kind == "image"
    for bad in ("not-a-colour-or-file", "blur:0", "blur:x"):
        with pytest.raises(ValueError):
            bgs.parse_background(bad)
    with pytest.raises(ValueError):
        bgs.padding_pixels("5px", 1, 1)
    with pytest.raises(ValueError):
        bgs.compose_file(np.zeros((2, 2, 4), np.uint8), None, shadow=True)


def test_a_background_file_is_decoded_once_for_a_batch(tmp_path, monkeypatch):
    """The same file, unchanged, is decoded once; a changed file is decoded again."""
    from alphacut.stages import decode as decode_module

    path = tmp_path / "bg.png"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(path)
    calls = []
    real = decode_module.decode
    monkeypatch.setattr(decode_module, "decode", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    rgba = np.zeros((10, 12, 4), np.uint8)
    bg = bgs.Background("image", image=path)
    first = bgs.compose_file(rgba, bg)
    assert np.array_equal(bgs.compose_file(rgba, bg), first) and len(calls) == 1
    Image.fromarray(np.full((30, 40, 3), 10, np.uint8)).save(path)
    os.utime(path, ns=(1, 1))  # another modification time, whatever the clock's resolution
    assert not np.array_equal(bgs.compose_file(rgba, bg), first) and len(calls) == 2

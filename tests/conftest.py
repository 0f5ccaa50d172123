"""Shared fixtures: real sample photos (scikit-image ships them) and one real IS-Net Remover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """A few real photos as files: astronaut (PNG), coffee (JPEG), chelsea the cat (JPEG)."""
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    out = {}
    for name, arr, ext in (
        ("astronaut", data.astronaut(), ".png"),
        ("coffee", data.coffee(), ".jpg"),
        ("chelsea", data.chelsea(), ".jpg"),
    ):
        p = d / f"{name}{ext}"
        Image.fromarray(arr).save(p, quality=92) if ext == ".jpg" else Image.fromarray(arr).save(p)
        out[name] = p
    return out


@pytest.fixture(scope="session")
def remover():
    """The real embedded model, one session for the whole test run."""
    from alphacut import Remover

    return Remover()  # the default model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def playwright_instance():
    """One Playwright for the whole run: the sync API refuses to start a second one."""
    from chromium_setup import require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Debian's Chromium, headless, fresh profile, no background networking."""
    from chromium_setup import CHROMIUM, CHROMIUM_ARGS

    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


def make_tiny_model(d: Path) -> Path:
    """A 32x32 stand-in for a segmentation model (mean of the channels, then a sigmoid), with
    its spec beside it: for tests about everything but the mask (milliseconds, no store)."""
    import json

    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Sigmoid", ["m"], ["output"])]
    g = helper.make_graph(nodes, "tiny",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 32, 32])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = d / "tiny.onnx"
    path.write_bytes(m.SerializeToString())
    (d / "tiny.json").write_text(json.dumps({"input_size": [32, 32]}))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))

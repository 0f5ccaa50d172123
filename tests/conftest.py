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

    return Remover("isnet")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

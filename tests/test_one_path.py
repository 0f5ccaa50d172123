"""One pipeline path: every entry point writes the same file, and the quality harness scores
what ships.

A 20 MP JPEG (over ``LOW_MEMORY_PIXELS``, so its model input comes from a reduced-scale
decode) and a 1 MP PNG with its own alpha go through the CLI, ``alphacut.remove``,
``POST /api/v1/remove`` and ``--engine ray``; the four files must hold the same chunks, byte
for byte, and the same image data once inflated. Not the same deflated bytes: ISA-L's
streaming level-1 compressor (encode.py's strips) now and then deflates the same strip
differently (2 in 200 times in a loop that churned the heap between calls; both streams
valid), which once failed this test when it compared whole files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import alphacut
from alphacut import evaluate as ev
from alphacut.cli import app
from alphacut.pipeline import LOW_MEMORY_PIXELS
from alphacut.stages.encode import PNG_SIGNATURE
from alphacut.stages.verify import _png_chunks

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    from skimage import data

    d = tmp_path_factory.mktemp("one-path")
    big = Image.fromarray(data.astronaut()).resize((5200, 3900), Image.Resampling.BICUBIC)
    assert big.width * big.height > LOW_MEMORY_PIXELS
    big.save(d / "big.jpg", quality=90)
    rgba = np.asarray(Image.fromarray(data.coffee()).resize((1160, 870), Image.Resampling.BILINEAR).convert("RGBA")).copy()
    rgba[:, :200, 3] = np.linspace(0, 255, 200, dtype=np.uint8)  # input alpha, multiplied by the mask
    Image.fromarray(rgba, "RGBA").save(d / "small.png")
    return {"big": d / "big.jpg", "small": d / "small.png"}


def _png_content(png: bytes) -> tuple[list[tuple[bytes, bytes]], int, bytes]:
    """A PNG's chunks other than IDAT (type, body), its number of IDAT chunks and its image
    data inflated: everything in the file but the choices of the deflate compressor (read by
    the verify stage's chunk reader, which also checks each chunk's CRC)."""
    assert png[:8] == PNG_SIGNATURE
    chunks = [(kind, bytes(body)) for kind, body in _png_chunks(png, "test")]
    idat = [body for kind, body in chunks if kind == b"IDAT"]
    return [c for c in chunks if c[0] != b"IDAT"], len(idat), zlib.decompress(b"".join(idat))


def _by_cli(src: Path, out: Path) -> bytes:
    r = CliRunner().invoke(app, ["remove", str(src), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return out.read_bytes()


def _by_api(src: Path) -> bytes:
    from starlette.testclient import TestClient

    from alphacut.serve.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    with client:
        r = client.post("/api/v1/remove", content=src.read_bytes(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return r.content


def _by_ray(src_dir: Path, out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    ray_tmp = tempfile.mkdtemp(prefix="acr", dir="/tmp")  # Ray's session files; short: unix sockets
    env.update(RAY_USAGE_STATS_ENABLED="0", ALPHACUT_RAY_ACTORS="1", RAY_TMPDIR=ray_tmp)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "alphacut.cli", "remove", str(src_dir), "-o", str(out), "--engine", "ray", "-q"],
            env=env, capture_output=True, text=True, timeout=900,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return out


@pytest.mark.slow
def test_every_entry_point_writes_the_same_file(inputs, tmp_path):
    ray_out = _by_ray(inputs["big"].parent, tmp_path / "ray")
    for name, src in inputs.items():
        cli = _by_cli(src, tmp_path / f"{name}-cli.png")
        python = alphacut.remove(src).encode("png")
        api = _by_api(src)
        ray = (ray_out / f"{src.stem}.png").read_bytes()
        want = _png_content(cli)
        assert want[1] > 1 or name == "small", want[1]  # the 20 MP file is written in strips
        assert _png_content(python) == want, f"{name}: alphacut.remove differs from the CLI"
        assert _png_content(api) == want, f"{name}: the HTTP API differs from the CLI"
        assert _png_content(ray) == want, f"{name}: --engine ray differs from the CLI"
        # and it is a real cut-out: RGB kept, alpha neither all clear nor all opaque
        out = np.asarray(Image.open(io.BytesIO(cli)))
        with Image.open(src) as im:
            assert np.array_equal(out[..., :3], np.asarray(im.convert("RGBA"))[..., :3])
        assert out[..., 3].min() == 0 and out[..., 3].max() == 255


def test_eval_default_variant_scores_what_remove_writes(inputs, tmp_path):
    """The harness's ``default`` variant runs the shipped path: its float mask, quantised as the
    contract says, is the alpha `alphacut remove` writes (for an opaque photo)."""
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    item = ev.Item("astronaut", "alpha", "person", photo, photo, "0" * 64)
    outputs = ev.Outputs(cache=tmp_path / "cache")
    variants = ev.variants_available()
    first, infer_s, _ = ev.run_variant(variants["default"], item, ev.load_image(photo), outputs)
    again, cached_infer_s, _ = ev.run_variant(variants["default"], item, ev.load_image(photo), outputs)
    assert np.array_equal(first, again) and cached_infer_s == pytest.approx(infer_s)  # from the cache
    written = np.asarray(Image.open(io.BytesIO(_by_cli(photo, tmp_path / "cli.png"))))[..., 3]
    assert np.array_equal(np.floor(first.astype(np.float64) * 255 + 0.5).astype(np.uint8), written)
    # `best` is the CLI's --quality best, also on the shipped path
    best, _, _ = ev.run_variant(variants["best"], item, ev.load_image(photo), outputs)
    r = CliRunner().invoke(app, ["remove", str(photo), "-o", str(tmp_path / "best.png"), "--quality", "best", "-q"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.floor(best.astype(np.float64) * 255 + 0.5).astype(np.uint8),
                          np.asarray(Image.open(tmp_path / "best.png"))[..., 3])
    assert json.loads(next((tmp_path / "cache").glob("*.json")).read_text())["infer_s"] > 0

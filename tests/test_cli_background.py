"""`--background` image / blur, `--shadow`, `--crop --padding --aspect` (contract rule 11) end
to end on the real model: the files hold rule 11's pixels, computed here from the plain
cut-out with the stage (whose parity with the browser the shared vectors check)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from alphacut.cli import app
from alphacut.stages import background as bgs

pytestmark = pytest.mark.model
runner = CliRunner()


def _rgba(p) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGBA"))


def test_cli_backgrounds_shadow_and_crop(photos, tmp_path):
    src = photos["astronaut"]
    plain = tmp_path / "plain.png"
    assert runner.invoke(app, ["remove", str(src), "-o", str(plain), "-q"]).exit_code == 0
    base = _rgba(plain)
    bg_img = tmp_path / "bg.png"
    Image.fromarray(np.asarray(Image.open(photos["coffee"]).convert("RGB"))).save(bg_img)

    runs = [
        (["--background", "blur:5", "--shadow"], bgs.compose_file(base, bgs.Background("blur", radius=5), shadow=True)),
        (["--background", str(bg_img)], bgs.compose_file(base, bgs.Background("image", image=np.asarray(Image.open(bg_img))))),
        (["--crop", "--padding", "10"], bgs.compose_file(base, None, crop="10")),
        (["--crop", "--padding", "5%", "--aspect", "4:5", "--background", "#204080", "-f", "webp"],
         bgs.compose_file(base, bgs.Background("color", color=(0x20, 0x40, 0x80)), crop="5%", aspect=(4, 5))),
    ]
    for i, (args, want) in enumerate(runs):
        ext = ".webp" if "webp" in args else ".png"
        out = tmp_path / f"out{i}{ext}"
        r = runner.invoke(app, ["remove", str(src), "-o", str(out), "-q", *args])
        assert r.exit_code == 0, r.output
        got = _rgba(out)
        assert got.shape == want.shape, (args, got.shape, want.shape)
        assert np.array_equal(got, want), args
    # the crop box is the subject's (alpha > 0) grown by 10 px, clipped
    ys, xs = np.nonzero(base[..., 3])
    x0, y0 = max(0, xs.min() - 10), max(0, ys.min() - 10)
    x1, y1 = min(512, xs.max() + 11), min(512, ys.max() + 11)
    assert _rgba(tmp_path / "out2.png").shape == (y1 - y0, x1 - x0, 4)
    # with a colour only: the same file as rule 5's flattening (unchanged behaviour)
    col = tmp_path / "col.png"
    assert runner.invoke(app, ["remove", str(src), "-o", str(col), "-q", "-b", "#204080"]).exit_code == 0
    a = base[..., 3:4].astype(np.uint32)
    flat = (base[..., :3].astype(np.uint32) * a + np.array([0x20, 0x40, 0x80], np.uint32) * (255 - a) + 127) // 255
    assert np.array_equal(np.asarray(Image.open(col).convert("RGB")), flat)


def test_cli_background_usage_errors(photos, tmp_path):
    s = str(photos["chelsea"])
    r = runner.invoke(app, ["remove", s, "--shadow"])
    assert r.exit_code == 2 and "--shadow needs --background" in r.output
    r = runner.invoke(app, ["remove", s, "--padding", "5%"])
    assert r.exit_code == 2 and "apply with --crop" in r.output
    r = runner.invoke(app, ["remove", s, "--crop", "--padding", "5 px"])
    assert r.exit_code == 2 and "bad padding" in r.output
    r = runner.invoke(app, ["remove", s, "--crop", "--aspect", "wide"])
    assert r.exit_code == 2 and "bad --aspect" in r.output
    r = runner.invoke(app, ["remove", s, "--background", "blur:0"])
    assert r.exit_code == 2 and "blur radius" in r.output


def test_cli_jpeg_of_a_composed_file(photos, tmp_path):
    """A JPEG flattened on blur, with a shadow and cropped: the composed file's RGB within
    JPEG's tolerance (rule 11), not an error because the composed pixels carry alpha 255."""
    src = photos["astronaut"]
    plain = tmp_path / "plain.png"
    assert runner.invoke(app, ["remove", str(src), "-o", str(plain), "-q"]).exit_code == 0
    want = bgs.compose_file(_rgba(plain), bgs.Background("blur", radius=5), shadow=True, crop="10")
    out = tmp_path / "out.jpg"
    r = runner.invoke(app, ["remove", str(src), "-o", str(out), "-q", "-b", "blur:5", "--shadow", "--crop", "--padding", "10"])
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    assert got.shape == want[..., :3].shape
    assert np.abs(got - want[..., :3]).mean() <= 3

"""End to end on the real IS-Net model: the Python API and the `alphacut` CLI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import alphacut
from alphacut.cli import app

pytestmark = pytest.mark.model
runner = CliRunner()


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def _assert_cutout(out_path: Path, src_path: Path):
    out = _load(out_path)
    src = np.asarray(Image.open(src_path).convert("RGB"))
    assert out.shape[:2] == src.shape[:2]
    assert np.array_equal(out[..., :3], src)  # RGB kept everywhere, alpha 0 included
    a = out[..., 3]
    assert (a == 0).mean() > 0.05 and (a == 255).mean() > 0.05  # a real cut-out
    assert ((a > 0) & (a < 255)).any()  # soft edges, not a threshold
    return a


def test_api_remove_path_bytes_and_pil(photos, remover):
    cut = remover.remove(photos["astronaut"])
    assert cut.mask.dtype == np.float32 and cut.mask.shape == (512, 512)
    assert 0.0 <= cut.mask.min() and cut.mask.max() <= 1.0
    # The one quantisation: alpha is floor(255 * m + 0.5) for an opaque input.
    assert np.array_equal(cut.alpha, np.floor(cut.mask.astype(np.float64) * 255 + 0.5).astype(np.uint8))
    # The subject (the astronaut, centre) is kept, a top corner of background is not.
    assert cut.mask[300:400, 200:300].mean() > 0.9
    assert cut.mask[:40, 440:].mean() < 0.1
    via_bytes = alphacut.remove(photos["astronaut"].read_bytes())
    via_pil = alphacut.remove(Image.open(photos["astronaut"]))
    assert np.array_equal(via_bytes.rgba, cut.rgba) and np.array_equal(via_pil.rgba, cut.rgba)


def test_api_save_formats(photos, remover, tmp_path):
    cut = remover.remove(photos["chelsea"])
    for fmt in ("png", "webp", "avif"):
        p = cut.save(tmp_path / f"c.{fmt}")
        assert np.array_equal(_load(p), cut.rgba)
    m = cut.save(tmp_path / "m.png", mask_only=True)
    assert Image.open(m).mode == "L" and np.array_equal(np.asarray(Image.open(m)), cut.alpha)
    f = cut.save(tmp_path / "f.png", background="#00ff00")
    flat = np.asarray(Image.open(f))
    assert flat.shape == cut.rgba.shape[:2] + (3,)
    clear, opaque = cut.alpha == 0, cut.alpha == 255
    assert clear.any() and opaque.any()
    assert (flat[clear] == [0, 255, 0]).all()  # fully transparent: the background colour
    assert np.array_equal(flat[opaque], cut.rgba[..., :3][opaque])  # opaque: the photo


def test_input_alpha_multiplies_mask(photos, remover, tmp_path):
    src = np.asarray(Image.open(photos["astronaut"]).convert("RGBA")).copy()
    src[:, :256, 3] = 0  # left half hidden by the input's own alpha
    src[:, 256:, 3] = 128
    p = tmp_path / "half.png"
    Image.fromarray(src).save(p)
    cut = remover.remove(p)
    assert (cut.alpha[:, :256] == 0).all()
    expected = np.floor(128 * cut.mask[:, 256:].astype(np.float64) + 0.5)
    assert np.array_equal(cut.alpha[:, 256:], expected)
    assert np.array_equal(cut.rgba[..., :3], src[..., :3])  # hidden RGB is kept, not revealed


def test_cli_batch_mirrors_tree_and_survives_bad_files(photos, tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "b" / "c").mkdir(parents=True)
    shutil.copy(photos["coffee"], src / "a" / "coffee.jpg")
    shutil.copy(photos["chelsea"], src / "b" / "c" / "chelsea.jpg")
    (src / "empty.png").write_bytes(b"")
    (src / "b" / "notes.jpg").write_text("not an image")
    data = photos["coffee"].read_bytes()
    (src / "a" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    r = runner.invoke(app, ["remove", str(src), "-o", str(out), "-q"])
    assert r.exit_code == 1, r.output
    _assert_cutout(out / "a" / "coffee.png", src / "a" / "coffee.jpg")
    _assert_cutout(out / "b" / "c" / "chelsea.png", src / "b" / "c" / "chelsea.jpg")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a/coffee.png", "b/c/chelsea.png"]
    for name, reason in (("empty.png", "empty file"), ("notes.jpg", "not an image"), ("truncated.jpg", "truncated")):
        assert any(name in line and reason in line for line in r.output.splitlines()), (name, r.output)
    assert "2 of 5 succeeded, 3 failed" in r.output
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # inputs untouched

    # Existing outputs are kept unless asked; --skip-existing resumes without errors.
    again = runner.invoke(app, ["remove", str(src / "a" / "coffee.jpg"), str(src / "b"), "-o", str(out / "x"), "-q"])
    assert again.exit_code == 1  # notes.jpg fails again
    r3 = runner.invoke(app, ["remove", str(src / "a" / "coffee.jpg"), "-o", str(out / "a" / "coffee.png")])
    assert r3.exit_code == 1 and "exists" in r3.output
    r4 = runner.invoke(app, ["remove", str(src / "a" / "coffee.jpg"), "-o", str(out / "a" / "coffee.png"), "--skip-existing"])
    assert r4.exit_code == 0


def test_cli_single_file_formats_and_options(photos, tmp_path):
    p = tmp_path / "cut.webp"
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(p), "-f", "webp"])
    assert r.exit_code == 0, r.output
    a = _assert_cutout(p, photos["chelsea"])
    m = tmp_path / "mask.png"
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(m), "--mask-only"])
    assert r.exit_code == 0 and np.array_equal(np.asarray(Image.open(m)), a)
    t = tmp_path / "hard.png"
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(t), "--threshold", "0.5"])
    assert r.exit_code == 0 and set(np.unique(_load(t)[..., 3])) <= {0, 255}


def test_cli_never_overwrites_input(photos, tmp_path):
    p = tmp_path / "same.png"
    shutil.copy(photos["astronaut"], p)
    before = p.read_bytes()
    r = runner.invoke(app, ["remove", str(p), "-o", str(p), "--overwrite"])
    assert r.exit_code == 1 and "input" in r.output
    assert p.read_bytes() == before


def test_cli_usage_errors(photos, tmp_path):
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "--avif-quality", "50"])
    assert r.exit_code == 2 and "--avif-quality applies to --format avif" in r.output
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "--background", "nocolour"])
    assert r.exit_code == 2 and "bad colour" in r.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), str(photos["coffee"]), "-o", str(blocker / "sub")])
    assert r.exit_code == 2 and "cannot create output directory" in r.output
    r = runner.invoke(app, ["remove", str(tmp_path / "missing.jpg")])
    assert r.exit_code == 1 and "missing.jpg: no such file" in r.output


def test_console_script_stdin_to_stdout(photos):
    exe = Path(sys.executable).with_name("alphacut")
    r = subprocess.run([str(exe), "remove", "-", "-o", "-"], input=photos["chelsea"].read_bytes(),
                       capture_output=True, timeout=120, env={**os.environ})
    assert r.returncode == 0, r.stderr.decode()
    out = np.asarray(Image.open(io.BytesIO(r.stdout)).convert("RGBA"))
    assert np.array_equal(out[..., :3], np.asarray(Image.open(photos["chelsea"]).convert("RGB")))
    assert ((out[..., 3] > 0) & (out[..., 3] < 255)).any()


def test_models_commands():
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0 and "isnet" in r.output and "rmbg-1.4" in r.output
    r = runner.invoke(app, ["models", "verify", "isnet-fp32"])
    assert r.exit_code == 0 and "isnet-fp32: ok" in r.output
    r = runner.invoke(app, ["models", "path", "isnet-fp32"])
    assert r.exit_code == 0 and r.output.strip().endswith("isnet-fp32.onnx")
    r = runner.invoke(app, ["models", "install", "rmbg-2.0"], env={"HF_TOKEN": ""})
    assert r.exit_code == 1 and "gated" in r.output and "--token" in r.output


def test_quality_best_is_mirror_symmetric(photos, tmp_path):
    """`--quality best` averages the photo's mask with the mirrored photo's, so cutting out
    the mirrored photo gives the mirrored mask (one inference alone does not have this)."""
    from alphacut import Remover

    r = Remover(quality="best", refine="none")
    src = np.asarray(Image.open(photos["chelsea"]).convert("RGB"))
    a = r.remove(Image.fromarray(src)).mask
    b = r.remove(Image.fromarray(np.ascontiguousarray(src[:, ::-1]))).mask
    assert np.abs(a - b[:, ::-1]).max() < 2e-3
    single = Remover(refine="none").remove(Image.fromarray(src)).mask
    assert np.abs(single - a).max() > 1e-3  # best really is a different (averaged) mask


def test_decontaminate_changes_only_the_soft_band(photos, remover):
    from alphacut import Remover

    plain = remover.remove(photos["astronaut"])
    dec = Remover(decontaminate=True).remove(photos["astronaut"])
    assert np.array_equal(plain.alpha, dec.alpha)
    hard = (plain.alpha == 0) | (plain.alpha == 255)
    assert np.array_equal(plain.rgba[..., :3][hard], dec.rgba[..., :3][hard])  # rule 4 holds there
    soft = ~hard
    assert soft.sum() > 100 and (plain.rgba[..., :3][soft] != dec.rgba[..., :3][soft]).any()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "CMYK", "I;16"])
def test_large_photo_fast_model_input_equals_full_decode(mode, tmp_path, monkeypatch, remover):
    """Large photos in a batch build the model input straight from Pillow's pixels; it must be
    the very tensor the full decode gives (other modes take the full decode)."""
    from skimage import data

    from alphacut import pipeline

    monkeypatch.setattr(pipeline, "LOW_MEMORY_PIXELS", 1000)
    img = Image.fromarray(data.astronaut()).resize((300, 200))
    if mode == "RGBA":
        a = np.asarray(img.convert("RGBA")).copy()
        a[:, :100, 3] = 0
        img = Image.fromarray(a)
    elif mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    else:
        img = img.convert(mode)
    p = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(p)
    fast = remover.prepare(p, keep_pixels=False)
    full = remover.prepare(p, keep_pixels=True)
    assert fast.image is None and full.image is not None and fast.size == full.size
    assert np.array_equal(fast.tensor, full.tensor)
    # The re-decode (run beside the upscale) gives the cut-out the held pixels give; the
    # tensors are equal, so one inference serves both.
    raw = remover.infer(fast)
    fast_cut = remover.finish(fast, raw)
    full_cut = remover.finish(full, raw)
    assert np.array_equal(fast_cut.rgba, full_cut.rgba) and np.array_equal(fast_cut.mask, full_cut.mask)


def test_batch_read_ahead_is_fifo_and_bounded_by_bytes():
    """The reader runs ahead by a byte budget, one item always allowed, order kept."""
    import threading
    import time

    from alphacut.engines.batch import _ReadAhead

    q = _ReadAhead(100)
    q.put("a", 60)
    q.put("b", 40)  # 100: still within the budget
    blocked = threading.Event()

    def third():
        q.put("c", 500)  # over the budget: waits until the queue is empty, then goes in alone
        blocked.set()

    t = threading.Thread(target=third, daemon=True)
    t.start()
    time.sleep(0.2)
    assert not blocked.is_set()
    assert q.get() == "a"
    time.sleep(0.1)
    assert not blocked.is_set()  # 40 + 500 is still over
    assert q.get() == "b"
    t.join(5)
    assert blocked.is_set() and q.get() == "c"


def test_large_jpeg_model_input_from_a_reduced_decode(tmp_path, monkeypatch, remover):
    """A large JPEG's model input comes from libjpeg's reduced-scale decode, the same with
    or without its pixels kept, and close to the resize of the full-resolution pixels."""
    from skimage import data

    from alphacut import pipeline
    from alphacut.stages import preprocess
    from alphacut.stages.decode import decode, decode_rgb_for_model

    monkeypatch.setattr(pipeline, "LOW_MEMORY_PIXELS", 1000)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the upright photo is 2200 wide, 2400 high
    p = tmp_path / "big.jpg"
    Image.fromarray(data.astronaut()).resize((2400, 2200), Image.Resampling.BICUBIC).save(p, quality=92, exif=exif.tobytes())
    rgb, size = decode_rgb_for_model(p, min_pixels=1000, model_size=remover.spec.input_size)
    assert size == (2200, 2400) and rgb.size == (1100, 1200)  # decoded at half scale, upright
    # With the pixels kept, only a reduced decode is worth a second read; a PNG is read once.
    assert decode_rgb_for_model(p, min_pixels=1000, model_size=remover.spec.input_size, reduced_only=True) is not None
    png = tmp_path / "big.png"
    Image.open(p).save(png)
    assert decode_rgb_for_model(png, min_pixels=1000, model_size=remover.spec.input_size, reduced_only=True) is None
    fast = remover.prepare(p, keep_pixels=False)
    full = remover.prepare(p, keep_pixels=True)
    assert fast.image is None and full.image.size == fast.size == (2200, 2400)
    assert np.array_equal(fast.tensor, full.tensor)
    from_full = preprocess.preprocess(decode(p).rgba, remover.spec)
    diff = np.abs(fast.tensor - from_full) * 256  # back to 0..255 units
    assert 0 < diff.mean() < 1.0 and np.percentile(diff, 99) < 6


def test_device_option_falls_back_to_the_cpu_with_one_note(photos, tmp_path):
    """--device cuda on the CPU build of ONNX Runtime: one note, then the same cut-out as on
    the CPU; the summary says where inference ran; models list reports the provider."""
    from alphacut.stages import infer

    infer._sessions.clear()  # a session made by an earlier test would not speak again
    cpu, cuda = tmp_path / "cpu.png", tmp_path / "cuda.png"
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(cpu), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "note: device" not in r.output and "1 cut out; inference on cpu (CPUExecutionProvider)" in r.output
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(cuda), "--device", "cuda"])
    assert r.exit_code == 0, r.output
    notes = [line for line in r.output.splitlines() if line.startswith("note: device")]
    assert len(notes) == 1 and "device cuda" in notes[0] and "running on the CPU" in notes[0], r.output
    assert "inference on cpu (CPUExecutionProvider)" in r.output
    assert cuda.read_bytes() == cpu.read_bytes()
    r = runner.invoke(app, ["remove", str(photos["chelsea"]), "-o", str(tmp_path / "x.png"), "--device", "gpu"])
    assert r.exit_code == 2 and "gpu" in r.output
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0 and "inference (--device auto): cpu (CPUExecutionProvider)" in r.output
    r = runner.invoke(app, ["models", "list", "--device", "dml"])
    assert r.exit_code == 0 and "inference (--device dml): cpu (CPUExecutionProvider)" in r.output
    assert "note: device dml:" in r.output


def test_python_api_device(photos):
    """Remover(device=...) and remove(device=...): the device that runs, a DeviceFallbackWarning
    for one that cannot, the same pixels either way."""
    from alphacut.pipeline import Remover
    from alphacut.stages import infer

    infer._sessions.clear()
    r = Remover(device="cpu")
    assert r.device == "cpu" and r.session.provider == "CPUExecutionProvider"
    with pytest.warns(infer.DeviceFallbackWarning, match="device coreml: .*running on the CPU"):
        fallback = alphacut.remove(photos["astronaut"], device="coreml")
    assert np.array_equal(fallback.rgba, r.remove(photos["astronaut"]).rgba)
    with pytest.raises(ValueError, match="unknown device"):
        Remover(device="tpu")

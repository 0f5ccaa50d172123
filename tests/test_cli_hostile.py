"""The CLI against careless use (issue #15, items 4-6): whatever goes wrong in a stage, a
batch ends with the right exit code and one line per failed file; requests that cannot be
planned are usage errors (exit 2) before any work. A tiny stand-in model keeps these fast."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from alphacut.cli import app
from alphacut.engines import batch
from alphacut.pipeline import Remover

runner = CliRunner()


@pytest.fixture
def three(tmp_path) -> list[Path]:
    rng = np.random.default_rng(3)
    d = tmp_path / "in"
    d.mkdir()
    paths = []
    for name in ("a", "b", "c"):
        p = d / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _run(args: list[str], timeout: float = 60.0):
    """The CLI in this process, in a thread with a deadline: a hang fails the test."""
    box = {}
    th = threading.Thread(target=lambda: box.update(r=runner.invoke(app, args)), daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), f"alphacut {' '.join(args)} did not end within {timeout} s"
    return box["r"]


@pytest.mark.parametrize("stage,method", [("finish", "finish"), ("infer", "infer"), ("prepare", "prepare")])
def test_an_unexpected_error_in_any_stage_fails_that_file_only(three, tiny_model, tmp_path, monkeypatch, stage, method):
    """A stage raising something that is not an AlphacutError (a bug, a library's own error)
    for one file: the batch ends, exit 1, a line names that file, the others are written."""
    original = getattr(Remover, method)

    def flaky(self, first, *a, **kw):
        label = getattr(first, "name", None) or str(first)
        if "b.png" in str(label) or "b.png" in str(a):
            raise RuntimeError(f"injected failure in {stage}")
        return original(self, first, *a, **kw)

    monkeypatch.setattr(Remover, method, flaky)
    out = tmp_path / "out"
    r = _run(["remove", *map(str, three), "-o", str(out), "-m", str(tiny_model), "-q"])
    assert r.exit_code == 1, r.output
    assert "b.png" in r.output and "RuntimeError" in r.output and "injected failure" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]


def test_an_unexpected_error_for_a_single_input_is_exit_1(three, tiny_model, tmp_path, monkeypatch):
    def broken(self, *a, **kw):
        raise ValueError("injected")

    monkeypatch.setattr(Remover, "finish", broken)
    out = tmp_path / "one.png"
    r = _run(["remove", str(three[0]), "-o", str(out), "-m", str(tiny_model)])
    assert r.exit_code == 1, r.output
    assert "a.png" in r.output and "injected" in r.output
    assert not out.exists()


def test_run_batch_ends_when_the_callback_itself_fails(three, tiny_model):
    """Even a failing ``on_done`` (a closed stdout, say) cannot leave a thread waiting forever."""
    remover = Remover(str(tiny_model))
    jobs = [batch.Job(p, None, str(p)) for p in three]
    box = {}

    def boom(o):
        raise OSError("stdout closed")

    th = threading.Thread(target=lambda: box.update(o=batch.run_batch(remover, jobs, batch.SaveOptions(), boom)), daemon=True)
    th.start()
    th.join(60)
    assert not th.is_alive(), "run_batch did not end"


@pytest.mark.parametrize("suffix", ["/x", "a/b", "../../escape", "x\\y"])
def test_suffix_with_a_path_separator_is_a_usage_error(three, tiny_model, tmp_path, suffix):
    out = tmp_path / "out"
    for args in ([str(three[0])], [str(three[0].parent), "-o", str(out)], [*map(str, three), "-o", str(out)]):
        r = _run(["remove", *args, "--suffix", suffix, "-m", str(tiny_model)])
        assert r.exit_code == 2, (args, r.output)
        assert "--suffix" in r.output and "Traceback" not in r.output
    assert not out.exists()
    assert sorted(p.name for p in three[0].parent.iterdir()) == ["a.png", "b.png", "c.png"]


def test_suffix_rule_is_the_same_for_the_ray_engine(tmp_path):
    from alphacut.errors import UsageError

    pytest.importorskip("ray")
    from alphacut.engines import ray as ray_engine

    (tmp_path / "in").mkdir()
    with pytest.raises(UsageError, match="--suffix"):
        ray_engine.plan([str(tmp_path / "in")], str(tmp_path / "out"), "png", suffix="/../x")


@pytest.mark.parametrize("where", [".", ".."])
def test_remove_dot_is_a_usage_error_without_o(three, tiny_model, monkeypatch, where, tmp_path):
    """`alphacut remove .` has no '<name>-cutout' to write beside it: usage error, exit 2,
    nothing written; with -o it works."""
    inner = three[0].parent / "sub"
    inner.mkdir()
    monkeypatch.chdir(inner if where == ".." else three[0].parent)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = _run(["remove", where, "-m", str(tiny_model)])
    assert r.exit_code == 2, r.output
    assert "-o" in r.output and "Traceback" not in r.output
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    out = tmp_path / "out"
    r = _run(["remove", where, "-o", str(out), "-m", str(tiny_model), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.rglob("*.png")) == ["a.png", "b.png", "c.png"]


# ----------------------------------------------------------------------------- item 5


@pytest.fixture
def photo(tmp_path) -> Path:
    from skimage import data

    p = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()).resize((96, 96)).save(p)
    return p


MAGIC = {"png": b"\x89PNG", "webp": b"RIFF", "avif": b"ftyp", "jpeg": b"\xff\xd8\xff"}


def _kind(data: bytes) -> str:
    return next(k for k, m in MAGIC.items() if (data[4:8] if k == "avif" else data[: len(m)]) == m)


@pytest.mark.parametrize("name,kind", [("x.png", "png"), ("x.webp", "webp"), ("x.WEBP", "webp"), ("x.avif", "avif")])
def test_output_extension_selects_the_format(photo, tiny_model, tmp_path, name, kind):
    out = tmp_path / name
    r = _run(["remove", str(photo), "-o", str(out), "-m", str(tiny_model)])
    assert r.exit_code == 0, r.output
    assert _kind(out.read_bytes()) == kind
    assert Image.open(out).mode == "RGBA"


@pytest.mark.parametrize("name", ["x.jpg", "x.jpeg", "x.JPG"])
def test_jpeg_output_only_flattened(photo, tiny_model, tmp_path, name):
    out = tmp_path / name
    r = _run(["remove", str(photo), "-o", str(out), "-m", str(tiny_model)])
    assert r.exit_code == 2 and "--background" in r.output, r.output
    assert not out.exists()
    r = _run(["remove", str(photo), "-o", str(out), "-m", str(tiny_model), "--mask-only"])
    assert r.exit_code == 2 and not out.exists()
    r = _run(["remove", str(photo), "-o", str(out), "-m", str(tiny_model), "--background", "white"])
    assert r.exit_code == 0, r.output
    assert _kind(out.read_bytes()) == "jpeg"
    img = Image.open(out)
    assert img.mode == "RGB" and img.size == (96, 96)
    expected = Remover(str(tiny_model)).remove(photo)
    from alphacut.stages.compose import flatten

    want = flatten(expected.rgba, (255, 255, 255)).astype(int)
    assert np.abs(np.asarray(img).astype(int) - want).mean() <= 3


@pytest.mark.parametrize("name", ["x.gif", "x.bmp", "x.tiff", "x.png.bak", "x.jpe"])
def test_other_extensions_are_a_usage_error_listing_the_accepted(photo, tiny_model, tmp_path, name):
    out = tmp_path / name
    r = _run(["remove", str(photo), "-o", str(out), "-m", str(tiny_model)])
    assert r.exit_code == 2, r.output
    for ext in (".png", ".webp", ".avif", ".jpg"):
        assert ext in r.output
    assert not out.exists()


def test_format_contradicting_the_extension_is_a_usage_error(photo, tiny_model, tmp_path):
    out = tmp_path / "x.webp"
    r = _run(["remove", str(photo), "-o", str(out), "-f", "png", "-m", str(tiny_model)])
    assert r.exit_code == 2 and not out.exists()
    r = _run(["remove", str(photo), "-o", str(out), "-f", "webp", "-m", str(tiny_model)])
    assert r.exit_code == 0 and _kind(out.read_bytes()) == "webp"


def test_cutout_save_takes_the_format_from_the_name(photo, tiny_model, tmp_path):
    from alphacut.errors import UsageError

    cut = Remover(str(tiny_model)).remove(photo)
    for name, kind in (("a.png", "png"), ("a.webp", "webp"), ("a.avif", "avif")):
        assert _kind(cut.save(tmp_path / name).read_bytes()) == kind
    with pytest.raises(UsageError, match=r"\.png.*\.webp.*\.avif"):
        cut.save(tmp_path / "a.gif")
    with pytest.raises(UsageError, match="transparency"):
        cut.save(tmp_path / "a.jpg")
    with pytest.raises(UsageError):
        cut.save(tmp_path / "b.webp", "png")
    assert _kind(cut.save(tmp_path / "a.jpg", background="#336699").read_bytes()) == "jpeg"
    assert sorted(p.name for p in tmp_path.glob("a.*")) == ["a.avif", "a.jpg", "a.png", "a.webp"]


# ----------------------------------------------------------------------------- items 4 and 6


@pytest.mark.parametrize("n", [1, 3])
def test_refine_typo_is_a_usage_error_before_any_work(three, tiny_model, tmp_path, n):
    out = tmp_path / "out" / ("one.png" if n == 1 else "")
    r = _run(["remove", *map(str, three[:n]), "-o", str(out), "--refine", "cwfg", "-m", str(tiny_model)], timeout=30)
    assert r.exit_code == 2, r.output
    assert "--refine" in r.output and "cwgf" in r.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="cwfg"):
        Remover(str(tiny_model), refine="cwfg")


def test_mask_only_with_background_is_refused_everywhere(photo, tiny_model, tmp_path):
    from alphacut.errors import UsageError
    from alphacut.serve import api

    r = _run(["remove", str(photo), "--mask-only", "--background", "white", "-m", str(tiny_model)])
    assert r.exit_code == 2 and "--mask-only" in r.output and "--background" in r.output
    assert sorted(p.name for p in photo.parent.iterdir()) == ["photo.png"]
    cut = Remover(str(tiny_model)).remove(photo)
    with pytest.raises(UsageError):
        cut.save(tmp_path / "m.png", mask_only=True, background="white")
    with pytest.raises(UsageError):
        cut.encode("png", mask_only=True, background=(255, 255, 255))
    with pytest.raises(api.ApiError) as e:
        api.parse_params({"mask_only": "true", "background": "white"}, str(tiny_model))
    assert e.value.status == 400

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

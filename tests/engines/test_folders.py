"""Folder runs: files that are not images are skipped and counted; `--watch` cuts out images
as they arrive (a file still being written is not read until it stops growing), until Ctrl+C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.engines import batch

ALPHACUT = [sys.executable, "-m", "alphacut"]


def _check_cutout(out: Path, src: Path) -> None:
    """Decoded again: same size, RGB untouched, a real soft alpha."""
    got = np.asarray(Image.open(out).convert("RGBA"))
    want = np.asarray(Image.open(src).convert("RGB"))
    assert got.shape[:2] == want.shape[:2] and np.array_equal(got[..., :3], want)
    a = got[..., 3]
    assert (a == 0).mean() > 0.02 and (a == 255).mean() > 0.02 and ((a > 0) & (a < 255)).any()


def test_plan_skips_files_that_are_not_images(tmp_path, photos):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(photos["coffee"], src / "coffee.jpg")
    shutil.copy(photos["astronaut"], src / "sub" / "no-extension")  # a PNG by its header
    (src / "notes.txt").write_text("shoot notes")
    (src / "sub" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    (src / "broken.jpg").write_bytes(b"not a jpeg")  # an image by its name: fails, not skipped
    skipped: list[Path] = []
    jobs, errors = batch.plan_outputs([src], tmp_path / "out", "png", not_images=skipped)
    assert sorted(Path(j.source).name for j in jobs) == ["broken.jpg", "coffee.jpg", "no-extension"]
    assert sorted(p.name for p in skipped) == ["clip.mp4", "notes.txt"] and errors == []


@pytest.mark.model
def test_folder_run_counts_skipped_non_images(tmp_path, photos):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos["coffee"], src / "coffee.jpg")
    shutil.copy(photos["chelsea"], src / "chelsea.jpg")
    (src / "notes.txt").write_text("shoot notes")
    (src / "Thumbs.db").write_bytes(bytes(range(256)))
    r = subprocess.run([*ALPHACUT, "remove", str(src), "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "2 cut out, 2 not images skipped; inference on cpu (CPUExecutionProvider)"
    _check_cutout(tmp_path / "out" / "coffee.png", src / "coffee.jpg")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chelsea.png", "coffee.png"]


@pytest.mark.model
def test_watch_cuts_out_three_files_as_they_arrive(tmp_path, photos):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl+C as a terminal delivers it: a suite started in the background by a non-interactive
    # shell inherits SIGINT ignored, and a Python child then keeps ignoring it (nohup's rule).
    proc = subprocess.Popen([*ALPHACUT, "remove", str(inbox), "-o", str(out), "--watch"],
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def wait_for(path: Path, timeout: float = 180) -> None:
        end = time.time() + timeout
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < end, f"{path} did not appear"
            time.sleep(0.2)

    try:
        shutil.copy(photos["coffee"], inbox / "one.jpg")
        wait_for(out / "one.png")
        # The second arrives slowly, as a copy over a network would: never read half-written.
        data = photos["chelsea"].read_bytes()
        with open(inbox / "two.jpg", "wb") as f:
            for i in range(0, len(data), len(data) // 8 + 1):
                f.write(data[i : i + len(data) // 8 + 1])
                f.flush()
                time.sleep(0.4)  # longer than the poll interval, shorter than the settle time
                assert not (out / "two.png").exists(), "a growing file was read"
        wait_for(out / "two.png")
        (inbox / "readme.txt").write_text("not an image")
        shutil.copy(photos["astronaut"], inbox / "three.png")
        wait_for(out / "three.png")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    for name, src in (("one", inbox / "one.jpg"), ("two", inbox / "two.jpg"), ("three", inbox / "three.png")):
        _check_cutout(out / f"{name}.png", src)
    assert sorted(p.name for p in out.iterdir()) == ["one.png", "three.png", "two.png"]  # no temp files left
    assert "error" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "stopped: 3 cut out, 1 not image skipped"


def test_watch_refuses_to_write_into_the_watched_folder(tmp_path):
    """`-o` = the watched folder would make every cut-out a new input: a usage error at once."""
    from typer.testing import CliRunner

    from alphacut.cli import app

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for out in (inbox, tmp_path / "inbox" / "."):
        r = CliRunner().invoke(app, ["remove", str(inbox), "-o", str(out), "--watch"])
        assert r.exit_code == 2, r.output
        assert "watched folder" in r.output
    assert list(inbox.iterdir()) == []


@pytest.mark.model
def test_watch_reports_colliding_inputs_once(tmp_path, photos):
    """Two inputs whose outputs would collide (a.jpg and a.png -> a.png): the one that cannot
    be planned is reported once, counted as failed (exit 1), and the other is cut out."""
    import threading

    from alphacut.engines import watch as watcher
    from alphacut.pipeline import Remover

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(photos["coffee"], inbox / "a.jpg")
    Image.open(photos["coffee"]).save(inbox / "a.png")
    said, done = [], []
    stop = threading.Event()

    def on_done(o):
        done.append(o)
        stop.set()

    watcher.watch(Remover(), inbox, out, batch.SaveOptions(), on_done, interval=0.05, settle=0.1, stop=stop,
                  on_plan_error=said.append)
    assert len(said) == 1 and "a.png" in said[0] and "collide" in said[0], said
    assert [o.ok for o in done] == [True] and (out / "a.png").exists()
    stop.clear()
    seen = threading.Timer(0.5, stop.set)
    seen.start()
    watcher.watch(Remover(), inbox, out, batch.SaveOptions(), done.append, interval=0.05, settle=0.1, stop=stop,
                  on_plan_error=said.append)
    assert len(said) == 2  # a new watch says it again; within one watch it was said once


def test_error_lines_print_file_names_as_they_are(tmp_path):
    """A file name with square brackets is printed as it is, not read as Rich markup."""
    from typer.testing import CliRunner

    from alphacut.cli import app

    bad = tmp_path / "[bold]shot[red].jpg"
    bad.write_bytes(b"not a jpeg")
    r = CliRunner().invoke(app, ["remove", str(bad), "-o", str(tmp_path / "x.png")])
    assert r.exit_code != 0
    assert "[bold]shot[red].jpg" in r.output, r.output

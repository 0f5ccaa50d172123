"""Nothing about use is recorded: a CLI run, a server request and a Ray job, each in a fresh
process with an empty home, leave nothing under it but alphacut's own model store.

ONNX Runtime 1.29+ starts a telemetry uploader at import (a device id and an event queue under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime``) unless ``ORT_DISABLE_TELEMETRY=1``. It skips
that by itself in environments it takes for CI (``CI``, ``GITHUB_ACTIONS``, ...), so the child
processes here run without those variables, and a bare ``import onnxruntime`` in the same
environment must show the queue: otherwise the test could not fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# What ONNX Runtime (and common tools) read as "this is CI", and its own switches.
CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TF_BUILD", "TEAMCITY_VERSION",
           "CODEBUILD_BUILD_ID", "BUILD_ID", "BUILDKITE", "CIRCLECI", "TRAVIS", "APPVEYOR",
           "BITBUCKET_BUILD_NUMBER",
           "ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED", "ORT_RUNNING_UNIT_TESTS")


@pytest.fixture
def clean(tmp_path, tiny_model):
    """(env, home, store, model, image): an empty HOME and cache, no CI variables."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS and not k.startswith(("RAY_", "XDG_"))}
    store = home / ".cache" / "alphacut"
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), ALPHACUT_HOME=str(store),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    rng = np.random.default_rng(5)
    img = work / "photo.png"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(img)
    return env, home, store, tiny_model, img


def _left_behind(home: Path, store: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p != store and store not in p.parents and p not in store.parents)


def test_the_environment_would_show_the_queue(clean):
    """Without alphacut, ONNX Runtime writes its queue in this environment (so the tests below
    can fail); with ``import alphacut`` first, nothing."""
    env, home, store, _, _ = clean
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, timeout=60)
    assert any(".onnxruntime" in p for p in _left_behind(home, store)), _left_behind(home, store)
    shutil.rmtree(home / ".cache")
    subprocess.run([sys.executable, "-c", "import alphacut, onnxruntime"], env=env, check=True, timeout=60)
    assert _left_behind(home, store) == []


def test_cli_run_writes_only_its_output(clean, tmp_path):
    env, home, store, model, img = clean
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "alphacut.cli", "remove", str(img), "-o", str(out), "-m", str(model)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    assert _left_behind(home, store) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_request_writes_nothing(clean):
    env, home, store, model, img = clean
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "alphacut.cli", "serve", "--port", str(port), "-m", str(model)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/remove"
        end = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(url, img.read_bytes(), {"Content-Type": "image/png"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    body = resp.read()
                break
            except (ConnectionError, urllib.error.URLError):
                if time.monotonic() > end or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert Image.open(__import__("io").BytesIO(body)).size == (50, 40)
    finally:
        proc.terminate()
        proc.wait(30)
    assert _left_behind(home, store) == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'alphacut[ray]'")
def test_ray_job_writes_only_its_outputs(clean, tmp_path):
    env, home, store, model, img = clean
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(img, src / "a.png")
    out = tmp_path / "out"
    ray_tmp = tempfile.mkdtemp(prefix="acp", dir="/tmp")  # Ray's session files; short: unix sockets
    env.update(ALPHACUT_RAY_ACTORS="1", RAY_TMPDIR=ray_tmp)
    try:
        r = subprocess.run([sys.executable, "-m", "alphacut.cli", "remove", str(src), "-o", str(out),
                            "--engine", "ray", "-m", str(model), "-q"],
                           env=env, capture_output=True, text=True, timeout=240, start_new_session=True)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (out / "a.png").is_file()
    assert _left_behind(home, store) == []

"""Acceptance: the built wheel works on its own, far from any checkout, with no Node.js.

The wheel is built from this checkout, installed into a fresh virtualenv in a temporary
folder (its third-party dependencies are lent by this test's environment through a .pth
line, so nothing is downloaded), and run with a PATH holding only that virtualenv's bin/ and
an empty HOME. The model comes from a local mirror of the data package's dist/ (the chunks
in node_modules, served on 127.0.0.1, found by their hash names), as it would from img.ly's
CDN. Then `alphacut remove`, `alphacut build-site` and `alphacut serve` run from the wheel,
and Chromium cuts out the same photo on the served page: within ±1 of the CLI's alpha.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.serve import site

from .conftest import free_port
from .test_app import add_and_wait, card, download, rgba_of, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DATA_DIST = ROOT / "node_modules" / "@imgly" / "background-removal-data" / "dist"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin dir, env, working dir) of a fresh virtualenv holding only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a worktree's src/ is not "installed"
    assert DATA_DIST.is_dir(), "run `npm ci --ignore-scripts` first: the mirror serves its chunks"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True, timeout=600, env=clean)
    (wheel,) = (tmp / "dist").glob("alphacut-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg, files in site.VENDOR_FILES.items():
        for rel in files:
            assert f"alphacut/serve/vendor/{pkg}/{rel}" in names
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=clean)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", "--ignore-installed", str(wheel)], check=True, timeout=300, env=clean)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=clean).stdout.strip()
    assert Path(purelib, "alphacut", "serve", "vendor").is_dir()
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "lent-deps.pth").write_text("\n".join(sorted(lent)) + "\n")  # plain paths: no .pth inside runs
    far = tmp / "far" / "away"
    far.mkdir(parents=True)
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp / "home"), "ALPHACUT_HOME": str(tmp / "store"),
           "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    yield venv / "bin", env, far


@pytest.fixture(scope="module")
def mirror():
    """The data package's dist/ on 127.0.0.1, as its CDN serves it."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(DATA_DIST.parent)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/dist/"
    httpd.shutdown()


def test_wheel_installs_the_model_cuts_out_and_serves_without_node(installed, mirror, browser, tmp_path):
    bin_dir, env, far = installed
    env = {**env, "ALPHACUT_MODEL_MIRROR": mirror}
    run = functools.partial(subprocess.run, cwd=far, env=env, capture_output=True, text=True, timeout=900)

    r = run([str(bin_dir / "alphacut"), "--version"])
    assert r.returncode == 0 and r.stdout.startswith("alphacut "), r.stderr
    r = run([str(bin_dir / "python"), "-c", "import alphacut, sys; print(alphacut.__file__)"])
    assert r.stdout.strip().startswith(str(bin_dir.parent)), "alphacut was not imported from the wheel"

    r = run([str(bin_dir / "alphacut"), "models", "install", "isnet-fp32"])
    assert r.returncode == 0, r.stderr
    store = Path(env["ALPHACUT_HOME"]) / "models" / "isnet-fp32" / "isnet-fp32.onnx"
    assert f"downloading isnet-fp32: 22 chunks, 88.2 MB, from {mirror} into {store}" in r.stderr
    assert r.stdout.strip() == str(store)

    from skimage import data

    photo = far / "photo.jpg"
    Image.fromarray(data.coffee()).save(photo, quality=92)
    r = run([str(bin_dir / "alphacut"), "remove", "photo.jpg"])
    assert r.returncode == 0, r.stderr
    cli = rgba_of(far / "photo-cutout.png")
    src = np.asarray(Image.open(photo).convert("RGB"))
    assert np.array_equal(cli[..., :3], src) and ((cli[..., 3] > 0) & (cli[..., 3] < 255)).any()

    r = run([str(bin_dir / "alphacut"), "build-site", "site"])
    assert r.returncode == 0, r.stderr
    files = [p for p in (far / "site").rglob("*") if p.is_file()]
    assert max(p.stat().st_size for p in files) <= 25 << 20
    assert any("vendor/onnxruntime-web@" in str(p) for p in files)

    port = free_port()
    server = subprocess.Popen([str(bin_dir / "alphacut"), "serve", "--port", str(port)], cwd=far, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.time() < end, server.stdout.read() if server.poll() is not None else "no answer"
                time.sleep(0.3)
        context = browser.new_context(accept_downloads=True)
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
            add_and_wait(page, [photo])
            got = rgba_of(download(page, card(page, "photo.jpg"), tmp_path))
        finally:
            context.close()
    finally:
        server.terminate()
        server.wait(30)
    assert np.array_equal(got[..., :3], cli[..., :3])
    d = np.abs(got[..., 3].astype(int) - cli[..., 3].astype(int))
    print(f"browser vs CLI from the wheel: {(d <= 1).mean():.5%} within ±1, max diff {d.max()}")
    # as tests/browser/test_app.py's parity test: ORT Web's and native kernels sum in other orders
    assert (d <= 1).mean() >= 0.999

"""Fixtures for the browser tests: Debian's Chromium through Playwright, a real server on a
free port, and small sample photos. With ``CI`` set, a missing Chromium fails the tests
(install it with ``apt-get install -y chromium``); otherwise they are skipped."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chromium_setup import CHROMIUM, CHROMIUM_ARGS, require_chromium  # noqa: F401 (re-exported)
from PIL import Image

_require_chromium = require_chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        end = time.time() + 30
        while not self.server.started:
            if time.time() > end:
                raise RuntimeError("server did not start")
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def server():
    _require_chromium()
    from alphacut.serve.app import create_app

    s = Server(create_app())
    yield s
    s.stop()


@pytest.fixture(scope="session")
def static_site(tmp_path_factory):
    """`alphacut build-site` output under a path prefix (/sub/), served by Python's plain
    http.server: no COOP/COEP, no CSP, only correct MIME types, like a bare static host."""
    _require_chromium()
    import functools
    import http.server
    import mimetypes

    from alphacut.serve import site

    root = tmp_path_factory.mktemp("www")
    site.build_site(root / "sub")
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/sub/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """Small real photos (scikit-image): PNGs, one with semi-transparent input alpha, hidden
    RGB under alpha 0 and an sRGB ICC profile, a JPEG, and a corrupt file."""
    from skimage import data, transform

    d = tmp_path_factory.mktemp("browser-samples")
    out = {}
    astro = data.astronaut()  # 512x512
    Image.fromarray(astro).save(d / "astronaut.png")
    out["astronaut"] = d / "astronaut.png"
    cat = data.chelsea()  # 451x300
    Image.fromarray(cat).save(d / "chelsea.png")
    out["chelsea"] = d / "chelsea.png"
    coffee = (transform.resize(data.coffee(), (300, 400), anti_aliasing=True) * 255).round().astype(np.uint8)
    rgba = np.dstack([coffee, np.full(coffee.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0  # hidden RGB: must survive untouched
    rgba[:, 40:80, 3] = 128  # input alpha multiplies the mask
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgba, "RGBA").save(d / "coffee-rgba.png", icc_profile=srgb)  # carried to the output
    out["coffee_rgba"] = d / "coffee-rgba.png"
    Image.fromarray(data.coffee()).save(d / "coffee.jpg", quality=92)
    out["coffee_jpg"] = d / "coffee.jpg"
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40 + b"not really a png")
    out["broken"] = d / "broken.png"
    return out

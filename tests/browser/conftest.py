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


HOST_FILE_LIMIT = 25 << 20  # common static hosts refuse larger files


class StaticHost:
    """`alphacut build-site` output under a path prefix (/sub/), served by Python's plain
    http.server: no COOP/COEP, no CSP, only correct MIME types, like a bare static host. It
    refuses files over 25 MiB (413, as such hosts refuse to deploy them), records every
    request, and answers 503 for the paths in ``failing``."""

    def __init__(self, root: Path):
        import functools
        import http.server
        import mimetypes

        mimetypes.add_type("text/javascript", ".mjs")
        mimetypes.add_type("application/wasm", ".wasm")
        host = self
        self.root = root
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.failing: set[str] = set()

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_head(self):
                path = self.path.split("?", 1)[0]
                local = Path(self.translate_path(path))
                if path in host.failing:
                    host.requests.append((path, 503))
                    self.send_error(503)
                    return None
                if local.is_file() and local.stat().st_size > HOST_FILE_LIMIT:
                    host.requests.append((path, 413))
                    self.send_error(413, "file over the host's 25 MiB limit")
                    return None
                host.requests.append((path, 200))
                return super().send_head()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sub/"


@pytest.fixture(scope="session")
def static_site(tmp_path_factory):
    _require_chromium()
    from alphacut.serve import site

    root = tmp_path_factory.mktemp("www")
    site.build_site(root / "sub")
    host = StaticHost(root)
    yield host
    host.httpd.shutdown()


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

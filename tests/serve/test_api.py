"""The HTTP API (issue #6) against real running servers: uvicorn in a background thread on
127.0.0.1 with a free port, each app built by ``create_app`` and driven with httpx.

Two servers per module run:
- ``real``: the real IS-Net model, small limits (1 MB bodies, 250 000 pixels, 1 worker + 4
  waiting) so every limit is cheap to reach; tests marked ``model``.
- ``fake``: a token, 1 worker + 2 waiting, a 2 s timeout, and a stand-in Remover whose
  inference waits on an event, so "busy" (503) and "timeout" (504) are deterministic and
  need no model.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
import time
import warnings
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from alphacut.models.catalog import DEFAULT_MODEL
from alphacut.serve import api
from alphacut.stages import infer

TOKEN = "s3cret-token"
LOAD_REQUESTS = 8  # bench/api_load.py runs more
LOAD_THREADS = 4


# ----------------------------------------------------------------------------- helpers


class Server:
    def __init__(self, app, lifespan: str = "on"):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan, timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive(), "server thread died"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    @property
    def api(self) -> api.Api:
        for r in self.app.routes:
            if getattr(r, "path", "") == "/api/v1/remove":
                return r.endpoint.__self__
        raise AssertionError("no API route")


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def photo(w: int = 96, h: int = 64) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BILINEAR))


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h, with one tiny IDAT: only a header-first check refuses it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def raw_http(port: int, head: bytes, body_chunks=()) -> tuple[int, dict[str, str], bytes]:
    """Send a hand-made request over a socket (for lying or chunked bodies); read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(head)
            for c in body_chunks:
                s.sendall(c)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking everything: expected for 413
        data = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
                if b"\r\n\r\n" in data:
                    head_end = data.index(b"\r\n\r\n")
                    headers = _parse_headers(data[:head_end])
                    n = int(headers.get("content-length", -1))
                    if n >= 0 and len(data) >= head_end + 4 + n:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    head_end = data.index(b"\r\n\r\n")
    status = int(data.split(b" ", 2)[1])
    return status, _parse_headers(data[:head_end]), data[head_end + 4 :]


def _parse_headers(block: bytes) -> dict[str, str]:
    out = {}
    for line in block.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        out[k.strip().lower()] = v.strip()
    return out


def assert_json_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


# ----------------------------------------------------------------------------- servers

_session_inits: list[str] = []


@pytest.fixture(scope="module")
def real():
    """The real model behind a real server; counts model-session creations around start-up."""
    from alphacut.errors import ModelError
    from alphacut.models import store
    from alphacut.serve.app import create_app

    try:
        store.resolve(DEFAULT_MODEL)
    except ModelError as e:  # pragma: no cover - model missing
        pytest.skip(f"IS-Net not installable here: {e}")
    mp = pytest.MonkeyPatch()
    # A cold process: no cached session, no shared Remover; count every Session made from here.
    mp.setattr(infer, "_sessions", {})
    mp.setattr(api, "_removers", {})
    original_init = infer.Session.__init__

    def counting_init(self, *a, **kw):
        _session_inits.append("new")
        original_init(self, *a, **kw)

    mp.setattr(infer.Session, "__init__", counting_init)
    _session_inits.clear()
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as env:
        warnings.simplefilter("ignore")
        env.setenv("ALPHACUT_API_MAX_BODY", str(1_000_000))  # limits are read when the app is made
        env.setenv("ALPHACUT_API_MAX_PIXELS", str(250_000))
        env.setenv("ALPHACUT_API_WORKERS", "1")
        env.setenv("ALPHACUT_API_QUEUE", str(LOAD_THREADS))
        env.setenv("ALPHACUT_API_TIMEOUT", "300")
        app = create_app()
    try:
        with Server(app) as s:
            yield s
    finally:
        mp.undo()


class FakeRemover:
    """Stands in for a Remover: 'inference' waits for ``gate``; alpha is 128 everywhere."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.session = None

    def remove(self, source, name="image", *, options=None, max_pixels=None):
        from alphacut.pipeline import CutOut
        from alphacut.stages import compose
        from alphacut.stages.decode import decode

        image = decode(source, name=name, max_pixels=max_pixels)
        assert self.gate.wait(30)
        m = np.full(image.rgba.shape[:2], 128 / 255, np.float32)
        rgba = compose.apply_mask(image.rgba, m)
        return CutOut(m, rgba, None, name, None, {"infer": 0.0})


@pytest.fixture(scope="module")
def fake():
    from alphacut.serve.app import create_app

    remover = FakeRemover()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALPHACUT_API_WORKERS", "1")
        mp.setenv("ALPHACUT_API_QUEUE", "2")
        mp.setenv("ALPHACUT_API_TIMEOUT", "2")
        mp.setattr(api, "shared_remover", lambda model, device="auto": remover)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            app = create_app(token=TOKEN)
    with Server(app) as s:
        s.remover = remover
        yield s


def auth(extra: dict | None = None) -> dict:
    return {"Authorization": f"Bearer {TOKEN}", **(extra or {})}


# ----------------------------------------------------------------------------- real model


@pytest.mark.model
def test_first_request_reuses_the_session_made_at_start_up(real):
    assert _session_inits == ["new"]  # the lifespan loaded the model before the port opened
    img = photo()
    r = httpx.post(f"{real.url}/api/v1/remove", content=png_bytes(img), headers={"Content-Type": "image/png"}, timeout=120)
    assert r.status_code == 200, r.text
    assert _session_inits == ["new"]  # the first request created no session
    assert api._removers[DEFAULT_MODEL, "auto"].session is next(iter(infer._sessions.values()))
    assert r.headers["x-alphacut-device"] == "cpu"  # where inference ran (serve --device auto)
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'inline; filename="cutout.png"'
    assert r.headers["cache-control"] == "no-store"
    assert "decode;dur=" in r.headers["server-timing"] and "infer;dur=" in r.headers["server-timing"]
    assert 0 <= float(r.headers["x-alphacut-uncertain"]) <= 1  # what stays half-believed (settle stage)
    out = decode(r.content)
    assert out.mode == "RGBA" and out.size == (96, 64)
    a = np.asarray(out)
    assert np.array_equal(a[..., :3], img)  # straight alpha: RGB untouched
    assert a[..., 3].min() < 50 and a[..., 3].max() > 200  # a real cut-out, not all or nothing


@pytest.fixture(scope="module")
def png_alpha(real) -> np.ndarray:
    """The alpha the library gives for ``photo()`` (the server's own shared Remover): what every
    lossless answer's alpha must be, whichever test runs first."""
    return api.shared_remover(DEFAULT_MODEL).remove(png_bytes(photo())).alpha


@pytest.mark.model
@pytest.mark.parametrize("fmt,quality", [("webp", None), ("avif", None), ("avif", 85)])
def test_formats_and_quality(real, png_alpha, fmt, quality):
    img = photo()
    params = {"format": fmt} | ({"quality": quality} if quality is not None else {})
    r = httpx.post(f"{real.url}/api/v1/remove", params=params, content=png_bytes(img),
                   headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"image/{fmt}"
    assert r.headers["content-disposition"] == f'inline; filename="cutout.{fmt}"'
    if fmt == "avif":
        import imagecodecs

        a = imagecodecs.avif_decode(r.content)
    else:
        a = np.asarray(decode(r.content).convert("RGBA"))
    assert a.shape == (64, 96, 4)
    if quality is None:  # lossless: exactly the PNG answer
        assert np.array_equal(a[..., :3], img)
        assert np.array_equal(a[..., 3], png_alpha)
    else:  # lossy: close, and smaller than lossless
        assert np.abs(a[..., :3].astype(int) - img).mean() < 12


def test_avif_quality_too_low_for_verification_is_422(fake):
    """Pure noise at quality 5 drifts far past the stated tolerance (max(4, (100 - Q) / 4))."""
    noise = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r = httpx.post(f"{fake.url}/api/v1/remove", params={"format": "avif", "quality": 5},
                   content=png_bytes(noise), headers=auth({"Content-Type": "image/png"}), timeout=30)
    d = assert_json_error(r, 422, "cannot_encode")
    assert "higher quality" in d["detail"]


@pytest.mark.model
def test_mask_only_is_the_alpha_of_the_normal_answer(real, png_alpha):
    img = photo()
    r = httpx.post(f"{real.url}/api/v1/remove?mask_only=true", content=png_bytes(img),
                   headers={"Content-Type": "image/png"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'inline; filename="mask.png"'
    m = decode(r.content)
    assert m.mode == "L" and m.size == (96, 64)
    assert np.array_equal(np.asarray(m), png_alpha)


@pytest.mark.model
def test_background_multipart_gives_an_opaque_image(real, png_alpha):
    """Multipart body, parameters as form fields; the file name is not echoed anywhere."""
    img = photo()
    files = {"image": ("secret-name.png", png_bytes(img), "image/png")}
    r = httpx.post(f"{real.url}/api/v1/remove", files=files, data={"background": "#00ff00", "format": "png"}, timeout=120)
    assert r.status_code == 200, r.text
    assert "secret-name" not in str(r.headers)
    out = decode(r.content)
    assert out.mode == "RGB" and out.size == (96, 64)  # opaque: no alpha channel at all
    a = png_alpha.astype(np.uint32)[..., None]
    want = (img.astype(np.uint32) * a + np.array([0, 255, 0], np.uint32) * (255 - a) + 127) // 255
    assert np.array_equal(np.asarray(out), want.astype(np.uint8))


def test_background_image_upload_is_composed_like_the_cli(fake):
    """A ``background_image`` part: the photo behind the subject, scaled to cover, the same
    pixels as the CLI's ``--background IMAGE`` (stages.background); refused with a colour
    too, with mask_only, or when it is not an image, each naming the field."""
    from alphacut.stages import background as bgs
    from alphacut.stages import compose

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    backdrop = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    files = {"image": ("a.png", png_bytes(img), "image/png"),
             "background_image": ("b.png", png_bytes(backdrop), "image/png")}
    r = httpx.post(f"{fake.url}/api/v1/remove", files=files, data={"shadow": "true"}, headers=auth(), timeout=30)
    assert r.status_code == 200, r.text
    cut = compose.apply_mask(np.dstack([img, np.full((40, 60), 255, np.uint8)]), np.full((40, 60), 128 / 255, np.float32))
    want = bgs.compose_file(cut, bgs.Background("image", image=backdrop), shadow=True)
    assert np.array_equal(np.asarray(decode(r.content)), want)
    for data, detail in [({"background": "red"}, "background and background_image exclude each other"),
                         ({"mask_only": "true"}, "background_image")]:
        r = httpx.post(f"{fake.url}/api/v1/remove", files=files, data=data, headers=auth(), timeout=30)
        assert detail in assert_json_error(r, 400, "bad_parameter")["detail"]
    files["background_image"] = ("b.png", b"not an image at all", "image/png")
    r = httpx.post(f"{fake.url}/api/v1/remove", files=files, headers=auth(), timeout=30)
    assert r.status_code in (400, 415, 422) and "background_image" in r.json()["detail"], r.text


@pytest.mark.model
def test_models_lists_the_catalog_with_installed_state(real):
    r = httpx.get(f"{real.url}/api/v1/models")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["default"] == DEFAULT_MODEL
    rows = {m["id"]: m for m in body["models"]}
    assert rows[DEFAULT_MODEL]["installed"] and rows[DEFAULT_MODEL]["available"] and rows[DEFAULT_MODEL]["default"]
    assert "rmbg-2.0" in rows and rows["rmbg-2.0"]["gated"]
    assert all("path" not in m for m in body["models"])
    assert body["device"] == {"requested": "auto", "running": "cpu", "provider": "CPUExecutionProvider", "notice": None}


@pytest.mark.model
def test_serve_device_that_is_missing_runs_on_the_cpu_and_says_so(monkeypatch):
    """`serve --device cuda` on the CPU build: the API reports the request, the fallback and
    its notice, and answers from the CPU."""
    from alphacut.serve.app import create_app

    monkeypatch.setattr(api, "_removers", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(device="cuda")
        with Server(app) as s:
            body = httpx.get(f"{s.url}/api/v1/models").json()
            r = httpx.post(f"{s.url}/api/v1/remove", content=png_bytes(photo()), headers={"Content-Type": "image/png"}, timeout=120)
    dev = body["device"]
    assert dev["requested"] == "cuda" and dev["running"] == "cpu" and dev["provider"] == "CPUExecutionProvider"
    assert dev["notice"].startswith("device cuda:") and "running on the CPU" in dev["notice"]
    assert r.status_code == 200 and r.headers["x-alphacut-device"] == "cpu"


@pytest.mark.model
def test_bad_parameters_are_json_4xx(real):
    u = f"{real.url}/api/v1/remove"
    body = png_bytes(photo(16, 16))
    h = {"Content-Type": "image/png"}
    assert_json_error(httpx.post(u, params={"model": "nope"}, content=body, headers=h), 400, "unknown_model")
    assert_json_error(httpx.post(u, params={"model": "../../etc/passwd.onnx"}, content=body, headers=h), 400, "unknown_model")
    from alphacut.models import store

    missing = [row["id"] for row in store.status() if not row["installed"] and not row["embedded"]]
    if missing:
        assert_json_error(httpx.post(u, params={"model": missing[0]}, content=body, headers=h), 409, "model_not_installed")
    assert_json_error(httpx.post(u, params={"format": "jpeg"}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, params={"quality": 50}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, params={"format": "avif", "quality": 101}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, params={"mask_only": "maybe"}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, params={"background": "notacolour"}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, params={"mask_only": 1, "background": "red"}, content=body, headers=h), 400, "bad_parameter")
    assert_json_error(httpx.post(u, content=b"hello", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    assert_json_error(httpx.post(u, files={"picture": ("a.png", body, "image/png")}), 400, "bad_request")
    assert_json_error(httpx.get(u), 405, "method_not_allowed")
    assert_json_error(httpx.get(f"{real.url}/api/v1/nothing"), 404, "not_found")
    # a page on another site posting to this loopback port
    assert_json_error(httpx.post(u, content=body, headers={**h, "Origin": "https://evil.example"}), 403, "cross_origin")


@pytest.mark.model
def test_bad_images_are_422_json(real):
    u = f"{real.url}/api/v1/remove"
    h = {"Content-Type": "image/png"}
    d = assert_json_error(httpx.post(u, content=b"", headers=h), 422, "bad_image")
    assert "empty" in d["detail"]
    d = assert_json_error(httpx.post(u, content=b"not an image at all" * 10, headers=h), 422, "bad_image")
    assert "not an image" in d["detail"]
    truncated = png_bytes(photo(64, 64))[:300]
    d = assert_json_error(httpx.post(u, content=truncated, headers=h), 422, "bad_image")
    assert "image" in d["detail"]
    # multipart with an empty file
    assert_json_error(httpx.post(u, files={"image": ("x.png", b"", "image/png")}), 422, "bad_image")


@pytest.mark.model
def test_too_many_pixels_is_422_from_the_header(real):
    u = f"{real.url}/api/v1/remove"
    # 600 x 600 = 360 000 pixels, over this server's 250 000
    d = assert_json_error(httpx.post(u, content=png_bytes(photo(600, 600)), headers={"Content-Type": "image/png"}), 422, "image_too_large")
    assert "600x600" in d["detail"]
    # 50 000 x 50 000 claimed by the header, a few bytes of data: refused before any decoding
    t = time.perf_counter()
    d = assert_json_error(httpx.post(u, content=png_header_only(50_000, 50_000), headers={"Content-Type": "image/png"}), 422, "image_too_large")
    assert "50000x50000" in d["detail"] and time.perf_counter() - t < 5


@pytest.mark.model
def test_request_too_large_by_content_length(real):
    head = (
        b"POST /api/v1/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Content-Length: 5000000\r\n\r\n"
    )
    status, headers, body = raw_http(real.port, head, [b"\x89PNG" + b"\0" * 1000])
    assert status == 413 and headers["content-type"] == "application/json"
    import json

    assert json.loads(body)["error"] == "request_too_large"


@pytest.mark.model
def test_request_too_large_while_streaming(real):
    """No Content-Length (chunked): the server counts the bytes as they arrive."""
    head = (
        b"POST /api/v1/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"\0" * 65536
    chunks = [b"%x\r\n" % len(piece) + piece + b"\r\n"] * 24 + [b"0\r\n\r\n"]  # 1.5 MB > 1 MB
    status, headers, body = raw_http(real.port, head, chunks)
    assert status == 413 and headers["content-type"] == "application/json"
    import json

    assert json.loads(body)["error"] == "request_too_large"
    # and the same through httpx's streaming upload
    def gen():
        for _ in range(24):
            yield piece

    try:
        r = httpx.post(f"{real.url}/api/v1/remove", content=gen(), headers={"Content-Type": "image/png"}, timeout=30)
        assert_json_error(r, 413, "request_too_large")
    except httpx.TransportError:
        pass  # the server may close before the client has sent everything; the socket test above is the check


@pytest.mark.model
def test_openapi_document_and_docs_page(real):
    r = httpx.get(f"{real.url}/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.0.3"
    assert set(doc["paths"]) == {"/api/v1/remove", "/api/v1/models", "/api/v1/openapi.json"}
    responses = doc["paths"]["/api/v1/remove"]["post"]["responses"]
    for code in ("400", "401", "403", "405", "409", "413", "415", "422", "500", "503", "504"):
        assert code in responses
    assert "Retry-After" in responses["503"]["headers"]
    assert set(responses["200"]["content"]) == {"image/png", "image/webp", "image/avif", "image/jpeg"}  # formats.py: jpeg with a background
    page = httpx.get(f"{real.url}/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text and 'src="/api/docs/docs.js"' in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    js = httpx.get(f"{real.url}/api/docs/docs.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{real.url}/api/docs/docs.css").status_code == 200
    assert httpx.get(f"{real.url}/api/docs/secrets.txt").status_code == 404


@pytest.mark.model
def test_load_each_response_matches_its_own_input(real):
    """8 distinct images from 4 threads at once: none lost, none mixed up; prints throughput."""
    rng = np.random.default_rng(6)
    images = [rng.integers(0, 256, (40 + i, 64, 3), np.uint8) for i in range(LOAD_REQUESTS)]
    bodies = [png_bytes(a) for a in images]
    results: dict[int, tuple[int, bytes]] = {}
    lock = threading.Lock()
    todo = list(range(LOAD_REQUESTS))

    def worker():
        with httpx.Client(timeout=300) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                r = c.post(f"{real.url}/api/v1/remove", content=bodies[i], headers={"Content-Type": "image/png"})
                with lock:
                    results[i] = (r.status_code, r.content)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(LOAD_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    elapsed = time.perf_counter() - t
    assert sorted(results) == list(range(LOAD_REQUESTS))
    for i, (status, content) in results.items():
        assert status == 200, (i, status, content[:200])
        out = np.asarray(decode(content))
        assert out.shape == (40 + i, 64, 4)
        assert np.array_equal(out[..., :3], images[i]), f"response {i} is not its own input's cut-out"
    print(f"\nAPI load: {LOAD_REQUESTS} requests, {LOAD_THREADS} threads, {elapsed:.1f} s, "
          f"{LOAD_REQUESTS / elapsed:.2f} images/s")
    assert real.api._in_flight == 0


# ----------------------------------------------------------------------------- no model needed


def test_schemathesis_against_the_openapi_document(fake):
    """Property-based requests generated from the document; every answer must conform to it.

    Against the stand-in server (with its token): schemathesis sends valid tiny images too, and
    the HTTP contract, not the model, is what this checks; the model's answers are checked above.
    """
    try:
        import schemathesis
    except ImportError:  # pragma: no cover - the test extra not installed
        if os.environ.get("CI"):
            raise
        pytest.skip("schemathesis not installed (pip install schemathesis)")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    doc = httpx.get(f"{fake.url}/api/v1/openapi.json", headers=auth()).json()
    schema = schemathesis.openapi.from_dict(doc)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance]
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()

        @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            r = case.call_and_validate(base_url=fake.url, headers=auth(), checks=checks, timeout=30)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        run()
    print(f"\nschemathesis: status codes seen {dict(sorted(statuses.items()))}")
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)


def test_token_is_required_on_every_api_call(fake):
    u = fake.url
    body = png_bytes(np.zeros((8, 8, 3), np.uint8))
    h = {"Content-Type": "image/png"}
    for method, path in (("GET", "/api/v1/models"), ("GET", "/api/v1/openapi.json"), ("GET", "/api/docs"), ("POST", "/api/v1/remove")):
        r = httpx.request(method, u + path, content=body if method == "POST" else None, headers=h)
        assert r.status_code == 401, (path, r.status_code)
        r = httpx.request(method, u + path, content=body if method == "POST" else None,
                          headers={**h, "Authorization": "Bearer wrong"})
        assert r.status_code == 401, (path, r.status_code)
    assert httpx.get(u + "/api/v1/models", headers=auth()).status_code == 200
    assert httpx.get(u + "/api/v1/models", params={"token": TOKEN}).status_code == 200
    r = httpx.post(u + "/api/v1/remove", content=body, headers=auth(h))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.asarray(decode(r.content))[..., 3].max() == 128  # the stand-in's mask
    r = httpx.post(u + "/api/v1/remove", params={"token": TOKEN}, files={"image": ("a.png", body, "image/png")})
    assert r.status_code == 200


def test_host_check_applies_to_the_api(fake):
    """A DNS-rebinding page reaches a loopback server under a foreign Host name: refused."""
    r = httpx.get(fake.url + "/api/v1/models", headers=auth({"Host": f"evil.example:{fake.port}"}))
    assert r.status_code == 403


def test_serving_beyond_loopback_requires_a_token_and_warns(monkeypatch, capsys):
    """``serve --host 0.0.0.0`` refuses to start without --token; with one it warns, and API
    calls without the token get 401."""
    import uvicorn

    from alphacut.errors import AlphacutError
    from alphacut.models import store
    from alphacut.serve import app as server

    captured = {}
    monkeypatch.setattr(store, "resolve", lambda m: None)  # serve() checks the model first
    monkeypatch.setattr(server.site, "model_config", lambda m: None)  # and prepares its chunks
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    with pytest.raises(AlphacutError, match="--token"):
        server.serve(host="0.0.0.0", port=8123)
    assert not captured
    token = "s3cret-token"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.serve(host="0.0.0.0", port=8123, token=token)
    out = capsys.readouterr()
    assert "WARNING" in out.err and "not loopback" in out.err
    assert captured["host"] == "0.0.0.0"
    with Server(captured["app"], lifespan="off") as s:  # the app serve() built; no model load
        host = {"Host": f"192.168.1.20:{s.port}"}  # as reached from another machine
        assert httpx.get(s.url + "/api/v1/models", headers=host).status_code == 401
        r = httpx.post(s.url + "/api/v1/remove", content=b"x", headers={**host, "Content-Type": "image/png"})
        assert r.status_code == 401
        r = httpx.get(s.url + "/api/v1/models", headers={**host, "Authorization": f"Bearer {token}"})
        assert r.status_code == 200


def _wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_excess_requests_get_503_with_retry_after(fake):
    """1 running + 2 waiting fill this server; the 4th request is refused at once."""
    body = png_bytes(np.zeros((8, 8, 3), np.uint8))
    fake.remover.gate.clear()
    answers: list[int] = []

    def post():
        r = httpx.post(fake.url + "/api/v1/remove", content=body, headers=auth({"Content-Type": "image/png"}), timeout=30)
        answers.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(3)]
    try:
        for th in threads:
            th.start()
        _wait_for(lambda: fake.api._in_flight == 3)
        t = time.perf_counter()
        r = httpx.post(fake.url + "/api/v1/remove", content=body, headers=auth({"Content-Type": "image/png"}), timeout=30)
        assert time.perf_counter() - t < 1.5  # answered at once, not queued
        assert_json_error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1
    finally:
        fake.remover.gate.set()
        for th in threads:
            th.join(30)
    assert len(answers) == 3 and set(answers) <= {200, 504}
    _wait_for(lambda: fake.api._in_flight == 0)
    r = httpx.post(fake.url + "/api/v1/remove", content=body, headers=auth({"Content-Type": "image/png"}), timeout=30)
    assert r.status_code == 200  # capacity is back


def test_timeout_is_504_and_the_slot_is_held_until_the_job_ends(fake):
    body = png_bytes(np.zeros((8, 8, 3), np.uint8))
    fake.remover.gate.clear()
    try:
        t = time.perf_counter()
        r = httpx.post(fake.url + "/api/v1/remove", content=body, headers=auth({"Content-Type": "image/png"}), timeout=30)
        assert_json_error(r, 504, "timeout")
        assert 1.5 < time.perf_counter() - t < 10
        assert fake.api._in_flight == 1  # the abandoned job still runs, and still counts
    finally:
        fake.remover.gate.set()
    _wait_for(lambda: fake.api._in_flight == 0)


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("ALPHACUT_API_MAX_BODY", "123")
    monkeypatch.setenv("ALPHACUT_API_TIMEOUT", "1.5")
    lim = api.Limits.from_env()
    assert lim.max_body == 123 and lim.timeout == 1.5 and lim.workers == 1 and lim.queue == 2
    monkeypatch.delenv("ALPHACUT_API_MAX_BODY")
    assert api.Limits.from_env().max_body == 64 * 1024 * 1024


def test_multipart_is_split_in_memory():
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nwebp\r\n"
        b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a b.png\"\r\n"
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n--not-the-boundary\r\n\r\n"
        b"--XyZ--\r\n"
    )
    image, fields, _ = api.split_multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert image == b"\x89PNG\r\n--not-the-boundary\r\n" and fields == {"format": "webp"}


@pytest.mark.parametrize("body,ctype,detail", [
    (b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc", "multipart/form-data; boundary=XyZ",
     "ends before its closing boundary"),
    (b"garbage without any boundary", "multipart/form-data; boundary=XyZ", "malformed multipart body"),
    (b"--XyZ--\r\n", "multipart/form-data; boundary=XyZ", "no parts"),
    (b"", "multipart/form-data", "without a boundary"),
    (b"--B\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n1\r\n"
     b"--B\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n2\r\n--B--\r\n", "multipart/form-data; boundary=B",
     "more than one 'image' field"),
])
def test_malformed_multipart_is_a_400_naming_the_problem(body, ctype, detail):
    with pytest.raises(api.ApiError) as e:
        api.split_multipart(body, ctype)
    assert e.value.status == 400 and detail in e.value.detail


@pytest.mark.browser
def test_docs_page_renders_and_tries_the_api_in_chromium(fake, tmp_path, browser):
    """The docs page under the real CSP, opened with ?token= (then the cookie carries it)."""
    image = tmp_path / "try.png"
    image.write_bytes(png_bytes(np.full((20, 30, 3), 90, np.uint8)))
    page = browser.new_page()
    try:
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{fake.url}/api/docs?token={TOKEN}")
        page.wait_for_selector("section.op", timeout=20_000)
        assert page.locator("section.op").count() >= 3
        assert "isnet" in " ".join(page.locator("#f-model option").all_inner_texts())
        page.set_input_files("#f-image", str(image))
        page.click("#try-form button[type=submit]")
        page.wait_for_selector("#try-out img, #try-out pre", timeout=30_000)  # an answer, good or bad
        status = page.inner_text("#try-status")
        assert status.startswith("200: image/png"), (status, page.inner_text("#try-out"), problems)
        assert page.locator("#try-out img").count() == 1
        assert problems == []
    finally:
        page.close()


def test_only_the_servers_own_model_may_be_a_path():
    """`serve --model my.onnx` works through the API; a client can never name a file."""
    assert api.parse_params({}, "/models/mine.onnx").model == "/models/mine.onnx"
    assert api.parse_params({"model": "/models/mine.onnx"}, "/models/mine.onnx").model == "/models/mine.onnx"
    assert api.parse_params({"model": "isnet"}, "/models/mine.onnx").model == "isnet"
    with pytest.raises(api.ApiError) as e:
        api.parse_params({"model": "/etc/other.onnx"}, "/models/mine.onnx")
    assert e.value.status == 400 and e.value.error == "unknown_model"


def test_a_job_abandoned_before_its_thread_starts_never_runs():
    """The request gave up (timeout) before a worker thread picked the job up: the job must not
    run, and must not give the slot back a second time (the request already did)."""
    a = api.Api("isnet", api.Limits(), remover_for=lambda model, device: pytest.fail("the job ran"))
    a._admit()
    params = api.parse_params({}, "isnet")
    with pytest.raises(TimeoutError):
        a._job(api._Ticket(abandoned=True), b"", params, time.monotonic() + 5)
    assert a._in_flight == 1


def test_fuzz_api_with_mutated_images(fake):
    """Mutated PNG/JPEG/WebP/GIF/AVIF bodies through the API's decoding path: each answer is a
    cut-out or a JSON 4xx naming the problem; never a 500, never a hang."""
    from hypothesis import HealthCheck, given, settings
    from test_reliability import mutated

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mutated())
    def run(case):
        _, data = case
        r = httpx.post(f"{fake.url}/api/v1/remove", content=data,
                       headers=auth({"Content-Type": "application/octet-stream"}), timeout=20)
        assert r.status_code in (200, 400, 413, 415, 422, 503), (r.status_code, r.text[:200])
        if r.status_code == 200:
            assert r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")
        else:
            body = r.json()
            assert body["error"] and body["detail"] and "Traceback" not in body["detail"]

    run()

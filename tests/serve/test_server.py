"""The browser app's server and static build, without a browser: routes, headers, MIME types,
404s, the model route, the access token, the Host check, and `build_site`'s header rules."""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import pytest

from alphacut.models import store
from alphacut.models.catalog import CATALOG, DEFAULT_MODEL
from alphacut.serve import site

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice about httpx
        from starlette.testclient import TestClient
except ImportError:  # pragma: no cover - httpx missing
    TestClient = None

pytestmark = [
    pytest.mark.skipif(TestClient is None, reason="starlette.testclient needs httpx"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client():
    from alphacut.serve.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(), base_url=BASE)


@pytest.fixture(scope="module")
def app_hash(client):
    return re.search(r'src="app/([0-9a-f]{12})/main\.js"', client.get("/").text).group(1)


def _versions():
    return site.vendor_versions()


def _check_security_headers(r):
    h = r.headers
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert h["cross-origin-embedder-policy"] == "require-corp"
    assert h["cross-origin-resource-policy"] == "same-origin"
    assert h["x-content-type-options"] == "nosniff"
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self';" in csp  # 'self' only: no remote host can receive anything
    assert "script-src 'self' 'wasm-unsafe-eval';" in csp  # no inline script, no eval
    assert "unsafe-inline" not in csp


def test_index_is_html_no_cache_and_has_no_inline_script(client, app_hash):
    for path in ("/", "/index.html"):
        r = client.get(path)
        assert r.status_code == 200
        _check_security_headers(r)
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.DOTALL)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
        assert 'type="file" multiple' in r.text
        assert "__APP__" not in r.text


def test_config_json_is_made_before_the_server_takes_requests(monkeypatch):
    # made on the first request, it held the page's start (every request behind it) while the
    # model's chunks were hashed
    from alphacut.serve import app as server

    calls = []
    real = site.model_config
    monkeypatch.setattr(site, "model_config", lambda *a, **k: calls.append(a) or real(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = server.create_app()
        assert calls == []
        with TestClient(app, base_url=BASE) as c:  # runs the lifespan, as uvicorn does
            assert len(calls) == 1
            r = c.get("/config.json")
            assert r.status_code == 200 and json.loads(r.content)["model"]["chunks"]
            assert len(calls) == 1  # answered from what start-up made


def test_config_json_carries_the_catalog_hash_and_size(client):
    r = client.get("/config.json")
    assert r.status_code == 200
    _check_security_headers(r)
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-cache"
    cfg = r.json()["model"]
    spec = CATALOG[DEFAULT_MODEL]
    assert cfg["sha256"] == spec.main_file.sha256
    assert cfg["size"] == spec.main_file.size
    assert cfg["chunk_base"] == "models/chunks/"
    assert sum(c["size"] for c in cfg["chunks"]) == spec.main_file.size
    assert all(c["size"] == site.CHUNK_SIZE for c in cfg["chunks"][:-1]) and site.CHUNK_SIZE < 25 << 20
    assert cfg["input_size"] == [1024, 1024] and cfg["mean"] == [128.0] * 3 and cfg["std"] == [256.0] * 3
    assert cfg["output"] == "output"


@pytest.mark.parametrize(
    "name,mime",
    [("main.js", "text/javascript"), ("worker.js", "text/javascript"), ("compose.js", "text/javascript"),
     ("style.css", "text/css"), ("vendor.js", "text/javascript")],
)
def test_app_files_are_immutable_under_their_hash(client, app_hash, name, mime):
    r = client.get(f"/app/{app_hash}/{name}")
    assert r.status_code == 200
    _check_security_headers(r)
    assert r.headers["content-type"].startswith(mime)
    assert r.headers["cache-control"] == site.IMMUTABLE


def test_vendor_module_points_at_versioned_folders(client, app_hash):
    text = client.get(f"/app/{app_hash}/vendor.js").text
    for pkg, ver in _versions().items():
        assert f"vendor/{pkg}@{ver}/" in text
    assert _versions()["onnxruntime-web"] == "1.30.0"


def test_every_vendor_file_is_served_with_its_mime_type(client):
    parts = site.vendor_parts()
    assert list(parts) == ["onnxruntime-web"]  # its WebGPU build is over 25 MiB
    for pkg, files in parts.items():
        for rel, sizes in files.items():
            assert client.head(f"/vendor/{pkg}@{_versions()[pkg]}/{rel}").status_code == 404  # only parts
            assert all(n <= site.SPLIT_SIZE for n in sizes) and len(sizes) >= 2
            whole = (site.vendor_root() / pkg / rel).read_bytes()
            got = b"".join(client.get(f"/vendor/{pkg}@{_versions()[pkg]}/{rel}.part{i}").content for i in range(len(sizes)))
            assert got == whole
    for pkg, files in site.VENDOR_FILES.items():
        ver = _versions()[pkg]
        for rel in set(files) - set(parts.get(pkg, {})):
            r = client.head(f"/vendor/{pkg}@{ver}/{rel}")
            assert r.status_code == 200, rel
            _check_security_headers(r)
            assert r.headers["cache-control"] == site.IMMUTABLE
            want = "application/wasm" if rel.endswith(".wasm") else "text/javascript"
            assert r.headers["content-type"].startswith(want), rel


def test_code_and_wasm_are_sent_gzip_compressed_when_accepted(client, app_hash):
    """The first visit's 20 MB of code and WASM travel compressed (about a quarter), computed
    once into the store's cache; a request that does not accept gzip, or asks for a byte
    range, gets the file as it is. The site-wide headers stay on every form."""

    ort = f"/vendor/onnxruntime-web@{_versions()['onnxruntime-web']}/dist/ort-wasm-simd-threaded.wasm"
    whole = (site.vendor_root() / "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm").read_bytes()
    r = client.get(ort, headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding" and r.headers["content-type"] == "application/wasm"
    _check_security_headers(r)
    assert r.content == whole  # httpx decoded it
    sent = int(r.headers["content-length"])
    assert sent < 0.3 * len(whole), sent
    assert (store.home() / "web-gzip" / f"{hashlib.sha256(whole).hexdigest()}.gz").stat().st_size == sent
    for headers in ({"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "gzip", "Range": "bytes=0-9"}):
        r = client.get(ort, headers=headers)
        assert "content-encoding" not in r.headers, headers
        assert r.content == (whole[:10] if "Range" in headers else whole)
    r = client.get(f"/app/{app_hash}/main.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == (site.WEB_DIR / "main.js").read_bytes()
    r = client.get("/config.json", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.json()["model"]["chunks"]
    # the WebGPU build's parts too; the model's chunks never (the packed ones are deflated already)
    part = f"/vendor/onnxruntime-web@{_versions()['onnxruntime-web']}/dist/ort-wasm-simd-threaded.asyncify.wasm.part1"
    r = client.get(part, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and len(r.content) == site.vendor_parts()["onnxruntime-web"]["dist/ort-wasm-simd-threaded.asyncify.wasm"][1]
    first = client.get("/config.json").json()["model"]["chunks"][0]["sha256"]
    for route in ("chunks", "packed"):
        assert "content-encoding" not in client.get(f"/models/{route}/{first}", headers={"Accept-Encoding": "gzip"}).headers


@pytest.mark.parametrize(
    "path",
    [
        "/app/000000000000/main.js",  # stale hash
        "/app/{hash}/nope.js",
        "/app/{hash}/../site.py",
        "/vendor/onnxruntime-web@1.30.0/package.json",  # not on the allow-list
        "/vendor/onnxruntime-web@0.0.1/dist/ort.wasm.min.mjs",  # wrong version
        "/vendor/left-pad@1.0.0/index.js",
        "/vendor/@jsquash/png@3.1.1/../../../package.json",
        f"/models/{DEFAULT_MODEL}.onnx",  # the model exists only as chunks
        "/models/chunks/" + "0" * 64,
        "/nothing-here",
    ],
)
def test_404s_still_carry_the_security_headers(client, app_hash, path):
    r = client.get(path.replace("{hash}", app_hash))
    assert r.status_code == 404
    _check_security_headers(r)


def test_model_chunks_are_immutable_pieces_of_the_verified_store_file(client):
    spec, path = store.resolve(DEFAULT_MODEL)
    chunks = client.get("/config.json").json()["model"]["chunks"]
    first, last = chunks[0], chunks[-1]
    r = client.head(f"/models/chunks/{first['sha256']}")
    assert r.status_code == 200
    _check_security_headers(r)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == site.IMMUTABLE
    r = client.get(f"/models/chunks/{last['sha256']}")
    assert len(r.content) == last["size"] and hashlib.sha256(r.content).hexdigest() == last["sha256"]
    with open(path, "rb") as f:
        f.seek(spec.main_file.size - last["size"])
        assert r.content == f.read()


@pytest.mark.slow
def test_model_chunks_add_up_to_the_catalog_hash(client):
    h = hashlib.sha256()
    for c in client.get("/config.json").json()["model"]["chunks"]:
        h.update(client.get(f"/models/chunks/{c['sha256']}").content)
    assert h.hexdigest() == CATALOG[DEFAULT_MODEL].main_file.sha256


def test_api_routes_come_before_the_app(client):
    """The HTTP API (alphacut.serve.api) shares the app and its headers; the app's routes stay."""
    r = client.get("/api/v1/remove")
    assert r.status_code != 200
    _check_security_headers(r)


def test_token_guard():
    from alphacut.serve.app import create_app

    c = TestClient(create_app(token="s3cret"), base_url=BASE)
    r = c.get("/")
    assert r.status_code == 401
    _check_security_headers(r)
    r = c.get("/?token=wrong")
    assert r.status_code == 401
    r = c.get("/?token=s3cret")
    assert r.status_code == 200 and "alphacut_token=s3cret" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    assert c.get("/config.json").status_code == 200  # the cookie now carries it
    c2 = TestClient(create_app(token="s3cret"), base_url=BASE)
    assert c2.get("/config.json", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_loopback_server_refuses_foreign_host_headers(client):
    """DNS rebinding: a page on another name resolving to 127.0.0.1 must not read the app."""
    assert client.get("/", headers={"Host": "evil.example:8000"}).status_code == 403
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8000"}).status_code == 200


def test_build_site_writes_app_vendor_model_and_header_rules(tmp_path):
    out = tmp_path / "site"
    site.build_site(out)
    index = (out / "index.html").read_text()
    h = re.search(r'src="app/([0-9a-f]{12})/main\.js"', index).group(1)
    assert (out / "app" / h / "worker.js").is_file()
    assert (out / "app" / h / "vendor.js").is_file()
    for pkg, files in site.VENDOR_FILES.items():
        for rel in files:
            whole = out / f"vendor/{pkg}@{_versions()[pkg]}" / rel
            assert whole.is_file() or whole.with_name(whole.name + ".part0").is_file()
    cfg = json.loads((out / "config.json").read_text())["model"]
    chunks = sorted((out / "models" / "chunks").iterdir())
    assert sorted(p.name for p in chunks) == sorted(c["sha256"] for c in cfg["chunks"])
    assert sum(p.stat().st_size for p in chunks) == CATALOG[DEFAULT_MODEL].main_file.size
    packed = sorted((out / "models" / "packed").iterdir())  # what the page fetches first
    assert cfg["packed_base"] == "models/packed/" and sorted(p.name for p in packed) == sorted(c["sha256"] for c in cfg["chunks"])
    assert [c["packed"] for c in cfg["chunks"]] == [(out / "models" / "packed" / c["sha256"]).stat().st_size for c in cfg["chunks"]]
    assert sum(p.stat().st_size for p in packed) < 0.5 * CATALOG[DEFAULT_MODEL].main_file.size
    assert max(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= 25 << 20  # any static host
    headers = (out / "_headers").read_text()
    for k, v in site.SECURITY_HEADERS.items():
        assert f"  {k}: {v}" in headers
    assert "/app/*\n  Cache-Control: public, max-age=31536000, immutable" in headers
    assert "/models/chunks/*\n  Cache-Control: public, max-age=31536000, immutable" in headers
    assert "/models/packed/*\n  Cache-Control: public, max-age=31536000, immutable" in headers
    firebase = json.loads((out / "firebase.json").read_text())
    keys = {h["key"] for rule in firebase["hosting"]["headers"] for h in rule["headers"]}
    assert {"Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy", "Content-Security-Policy"} <= keys
    vercel = json.loads((out / "vercel.json").read_text())
    assert any(r["source"] == "/(.*)" for r in vercel["headers"])
    nginx = (out / "nginx.conf").read_text()
    assert "application/wasm wasm;" in nginx and 'Cross-Origin-Embedder-Policy "require-corp"' in nginx
    assert "gzip on;" in nginx and "application/wasm" in nginx.split("gzip_types", 1)[1].split(";", 1)[0]
    # A rebuild replaces the old app folder instead of piling up hashes.
    site.build_site(out)
    assert len(list((out / "app").iterdir())) == 1


def test_compressed_files_unused_for_a_month_are_swept(tmp_path, monkeypatch):
    """An upgrade leaves the old vendor files' compressed copies behind: the next file
    compressed sweeps those unread for GZIP_KEEP_S; a copy that is read is renewed and kept."""
    import os
    import time

    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    site._gzipped.cache_clear()
    used, new = tmp_path / "used.js", tmp_path / "new.js"
    used.write_text("let used = 1;\n" * 200)
    new.write_text("let fresh = 2;\n" * 200)
    folder = tmp_path / "home" / "web-gzip"
    site.gzipped(used)
    used_gz = folder / f"{hashlib.sha256(used.read_bytes()).hexdigest()}.gz"
    stale = folder / ("0" * 64 + ".gz")
    stale.write_bytes(b"an old version's file")
    month = time.time() - site.GZIP_KEEP_S - 60
    for p in (stale, used_gz):
        os.utime(p, (month, month))
    site._gzipped.cache_clear()
    site.gzipped(used)  # read from the cache folder: renewed
    assert used_gz.stat().st_mtime > month + 3600
    site.gzipped(new)  # a new compressed file: the sweep runs
    assert not stale.exists()
    assert used_gz.exists() and len(list(folder.glob("*.gz"))) == 2
    site._gzipped.cache_clear()

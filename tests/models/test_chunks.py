"""Embedded models without Node: chunks downloaded from a mirror of the data package's dist/.

A local server on 127.0.0.1 plays the CDN (files named by their SHA-256) and misbehaves on cue
per chunk: truncated body, 503 with Retry-After, wrong bytes, connection reset mid-chunk. The
tests check the installed bytes, the requests made, and that nothing wrong is ever installed.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from alphacut.errors import ModelError
from alphacut.models import catalog, store
from alphacut.models.catalog import ModelFile, ModelSpec

from .faults import break_off, start_body


class ChunkServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), ChunkHandler)
        self.files = files
        self.script: dict[str, list] = {}  # path -> actions for its next requests
        self.requests: list[tuple[str, str | None, float]] = []  # (path, Range, time)
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror/dist/"

    def handle_error(self, request, client_address):
        pass


class ChunkHandler(http.server.BaseHTTPRequestHandler):
    server: ChunkServer

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        name = self.path.removeprefix("/mirror/dist/")
        with srv.lock:
            srv.requests.append((name, self.headers.get("Range"), time.monotonic()))
            actions = srv.script.get(name)
            action = actions.pop(0) if actions else "ok"
        if name not in srv.files:
            self.send_error(404)
            return
        data = srv.files[name]
        if action == "503":
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action == "wrong":
            data = bytes(b ^ 0x55 for b in data[:64]) + data[64:]
        body = start_body(self, data)
        if action in ("truncate", "reset"):
            break_off(self, body, action, 1 / 2)
            return
        self.wfile.write(body)


@pytest.fixture
def mirror(tmp_path, monkeypatch, rng):
    """A 3-chunk model served by a local mirror; no local copy of the data package anywhere."""
    payload = rng.integers(0, 256, 250_000, dtype="uint8").tobytes()
    parts = [payload[:100_000], payload[100_000:200_000], payload[200_000:]]
    files = {hashlib.sha256(p).hexdigest(): p for p in parts}
    srv = ChunkServer(files)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    spec = ModelSpec(
        id="test-model", title="t",
        files=(ModelFile("m.onnx", len(payload), hashlib.sha256(payload).hexdigest(), "npm:/models/test"),),
        input_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), embedded=True,
    )
    monkeypatch.setitem(catalog.CATALOG, spec.id, spec)
    monkeypatch.setitem(catalog.IMGLY_CHUNKS, "/models/test", tuple((h, len(p)) for h, p in files.items()))
    monkeypatch.setenv("ALPHACUT_DATA_PACKAGE", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", srv.base)
    monkeypatch.delenv("ALPHACUT_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(store, "__file__", str(tmp_path / "x" / "store.py"))
    yield srv, spec, payload, list(files)
    srv.shutdown()
    srv.server_close()


def test_downloads_verifies_and_announces(mirror):
    srv, spec, payload, hashes = mirror
    lines, seen = [], []
    path = store.install(spec.id, announce=lines.append, progress=lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == payload
    assert lines == [f"downloading test-model: 3 chunks, 0.2 MB, from {srv.base} into {path}"]
    assert sorted(p for p, _, _ in srv.requests) == sorted(hashes)
    assert seen[-1] == (len(payload), len(payload))
    assert not (path.parent / ".chunks").exists() and not list(path.parent.glob("*.part"))
    assert store.verify_file(path, spec.main_file, deep=True)


def test_every_fault_recovers(mirror):
    """Truncated, reset mid-chunk, 503 + Retry-After and wrong bytes once each: still installed."""
    srv, spec, payload, (a, b, c) = mirror
    srv.script = {a: ["truncate", "reset"], b: ["503"], c: ["wrong"]}
    path = store.install(spec.id)
    assert path.read_bytes() == payload
    reqs = {h: [(r, t) for p, r, t in srv.requests if p == h] for h in (a, b, c)}
    # a: cut at half, resumed with Range, cut again, resumed from the new offset
    assert [r for r, _ in reqs[a]] == [None, "bytes=50000-", "bytes=75000-"]
    # b: the 503 asked for one second, and the retry waited for it
    assert len(reqs[b]) == 2 and reqs[b][1][1] - reqs[b][0][1] >= 0.9
    # c: the wrong bytes were thrown away and fetched again from scratch
    assert [r for r, _ in reqs[c]] == [None, None]


def test_persistently_wrong_chunk_installs_nothing(mirror):
    srv, spec, _, (_, b, _) = mirror
    srv.script = {b: ["wrong"] * 5}
    with pytest.raises(ModelError, match=f"{b}.*SHA-256"):
        store.install(spec.id)
    d = store.file_path(spec).parent
    assert not store.file_path(spec).exists() and not list(d.glob("*.part"))


def test_interrupted_install_resumes_with_the_chunks_it_has(mirror, monkeypatch):
    srv, spec, payload, (a, b, c) = mirror
    srv.script = {c: ["503"] * 20}  # c never comes: the install gives up ...
    monkeypatch.setattr(store, "CHUNK_WORKERS", 1)
    with pytest.raises(ModelError, match="HTTP 503"):
        store.install(spec.id)
    assert not store.file_path(spec).exists()
    srv.script = {}
    srv.requests.clear()
    assert store.install(spec.id).read_bytes() == payload  # ... and the next run fetches only c
    assert [p for p, _, _ in srv.requests] == [c]


def test_offline_refuses_to_download(mirror, monkeypatch):
    srv, spec, _, _ = mirror
    monkeypatch.setenv("ALPHACUT_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"ALPHACUT_OFFLINE is set.*npm pack @imgly/background-removal-data@1\.4\.5"):
        store.install(spec.id)
    assert srv.requests == []


def test_default_source_is_imglys_cdn(monkeypatch):
    monkeypatch.delenv("ALPHACUT_MODEL_MIRROR", raising=False)
    assert store.mirror() == "https://staticimgly.com/@imgly/background-removal-data/1.4.5/dist/"
    monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", "http://127.0.0.1:1/x")
    assert store.mirror() == "http://127.0.0.1:1/x/"


def test_pinned_chunks_add_up_to_the_catalog_sizes():
    for key, variant_ids in (("/models/medium", ("isnet", "isnet-fp32")), ("/models/small", ("isnet-quint8",))):
        chunks = catalog.IMGLY_CHUNKS[key]
        assert all(len(h) == 64 and int(h, 16) >= 0 for h, _ in chunks)
        assert all(n == 4 << 20 for _, n in chunks[:-1])
        spec = catalog.CATALOG[variant_ids[0]]
        assert sum(n for _, n in chunks) == spec.main_file.size


def test_cli_models_install_says_what_it_fetches(mirror):
    from typer.testing import CliRunner

    from alphacut.cli import app

    srv, spec, payload, _ = mirror
    r = CliRunner().invoke(app, ["models", "install", spec.id])
    assert r.exit_code == 0, r.output
    path = store.file_path(spec)
    assert f"downloading test-model: 3 chunks, 0.2 MB, from {srv.base} into" in r.output
    assert r.output.strip().splitlines()[-1] == str(path) and path.read_bytes() == payload


def test_version_and_python_dash_m():
    import subprocess
    import sys

    import alphacut

    for argv in ([sys.executable, "-m", "alphacut", "--version"],):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == f"alphacut {alphacut.__version__}"
    out = subprocess.run([sys.executable, "-m", "alphacut", "models", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "install" in out.stdout


def test_first_use_installs_visibly_before_any_work(mirror, capsys):
    """What `remove` and `serve` do first when the model is missing: the one line, then the
    download; nothing when it is there already."""
    from alphacut import cli

    srv, spec, payload, _ = mirror
    cli._ensure_model(spec.id)
    err = capsys.readouterr().err
    assert f"downloading test-model: 3 chunks, 0.2 MB, from {srv.base} into {store.file_path(spec)}" in err
    assert store.file_path(spec).read_bytes() == payload
    n = len(srv.requests)
    cli._ensure_model(spec.id)
    assert capsys.readouterr().err == "" and len(srv.requests) == n

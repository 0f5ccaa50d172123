"""The downloader against a local HTTP server that misbehaves on cue.

Each test scripts what the next requests get (reset mid-body, truncated body, 5xx, 429 with
Retry-After, a server ignoring Range, wrong bytes, 401/403/404, a stall past the timeout),
then checks the bytes, the hash, the Range headers sent and the back-off delays. No test
touches the network beyond 127.0.0.1, and no test really sleeps for a back-off.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import random
import socket
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from alphacut.errors import DownloadError, ModelError
from alphacut.models import catalog, download, store
from alphacut.models.catalog import ModelFile, ModelSpec

from .faults import break_off, start_body

PAYLOAD = random.Random(20240601).randbytes(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FaultServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.payload = PAYLOAD
        self.script: list = []  # one action per request, then "ok"
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str = "/model.bin") -> str:
        return self.base + path

    def next_action(self):
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def handle_error(self, request, client_address):
        pass  # resets and stalls are deliberate; keep the test output quiet

    def ranges(self) -> list[str | None]:
        return [r["headers"].get("Range") for r in self.requests if r["path"] == "/model.bin"]


class FaultHandler(http.server.BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append({"path": self.path, "headers": dict(self.headers)})
        if self.path.startswith("/redirect-"):
            target = {
                "/redirect-same": self.server.url(),
                "/redirect-other": f"http://localhost:{self.server.server_address[1]}/model.bin",
            }[self.path]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        action = self.server.next_action()
        kind = action[0] if isinstance(action, tuple) else action
        data = self.server.payload
        if kind == "status":
            _, code, headers = action
            body = b"nope"
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if kind == "wrong":
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        body = start_body(self, data, honour_range=kind != "ignore_range")
        if body is None:
            return
        if kind in ("reset", "truncate", "stall"):
            break_off(self, body, kind, 1 / 3)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = FaultServer()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class FakeSleep:
    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake_sleep():
    return FakeSleep()


def fetch(server, tmp_path, fake_sleep, **kw):
    kw.setdefault("sha256", PAYLOAD_SHA)
    kw.setdefault("size", len(PAYLOAD))
    kw.setdefault("timeout", 2.0)
    dest = kw.pop("dest", tmp_path / "model.bin.part")
    url = kw.pop("url", server.url())
    return dest, download.download(url, dest, sleep=fake_sleep, **kw)


def test_plain_download_reports_progress(server, tmp_path, fake_sleep):
    seen = []
    dest, digest = fetch(server, tmp_path, fake_sleep, progress=lambda d, t: seen.append((d, t)))
    assert digest == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges() == [None]
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert fake_sleep.delays == []


@pytest.mark.parametrize("fault", ["reset", "truncate"])
def test_broken_body_resumes_with_range(server, tmp_path, fake_sleep, fault):
    server.script = [fault]
    dest, digest = fetch(server, tmp_path, fake_sleep)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    first, second = server.ranges()
    assert first is None
    assert second == f"bytes={len(PAYLOAD) // 3}-"
    assert len(fake_sleep.delays) == 1


def test_stall_past_timeout_is_retried_and_resumed(server, tmp_path, fake_sleep):
    server.script = ["stall"]
    dest, digest = fetch(server, tmp_path, fake_sleep, timeout=0.3)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    assert server.ranges() == [None, f"bytes={len(PAYLOAD) // 3}-"]


def test_resumes_a_part_file_left_by_an_earlier_run(server, tmp_path, fake_sleep):
    dest = tmp_path / "model.bin.part"
    dest.write_bytes(PAYLOAD[:123_456])
    _, digest = fetch(server, tmp_path, fake_sleep, dest=dest)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    assert server.ranges() == ["bytes=123456-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path, fake_sleep):
    dest = tmp_path / "model.bin.part"
    dest.write_bytes(b"\0" * 5000)  # not even a true prefix: must be overwritten, not appended to
    server.script = ["ignore_range"]
    _, digest = fetch(server, tmp_path, fake_sleep, dest=dest)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    assert server.ranges() == ["bytes=5000-"]


def test_416_on_a_complete_part_is_success(server, tmp_path, fake_sleep):
    dest = tmp_path / "model.bin.part"
    dest.write_bytes(PAYLOAD)
    _, digest = fetch(server, tmp_path, fake_sleep, dest=dest, sha256=None)
    assert digest == PAYLOAD_SHA
    assert server.ranges() == [f"bytes={len(PAYLOAD)}-"]


def test_416_on_a_wrong_length_part_restarts(server, tmp_path, fake_sleep):
    dest = tmp_path / "model.bin.part"
    dest.write_bytes(b"x" * (len(PAYLOAD) + 10))
    _, digest = fetch(server, tmp_path, fake_sleep, dest=dest, sha256=None, size=None)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    assert server.ranges() == [f"bytes={len(PAYLOAD) + 10}-", None]


def test_complete_verified_part_needs_no_request(server, tmp_path, fake_sleep):
    dest = tmp_path / "model.bin.part"
    dest.write_bytes(PAYLOAD)
    _, digest = fetch(server, tmp_path, fake_sleep, dest=dest)
    assert digest == PAYLOAD_SHA
    assert server.requests == []


def test_500_then_ok(server, tmp_path, fake_sleep):
    server.script = [("status", 500, {})]
    dest, digest = fetch(server, tmp_path, fake_sleep)
    assert digest == PAYLOAD_SHA and dest.read_bytes() == PAYLOAD
    assert len(fake_sleep.delays) == 1 and 0 <= fake_sleep.delays[0] <= 0.5


def test_429_honours_retry_after_seconds(server, tmp_path, fake_sleep):
    server.script = [("status", 429, {"Retry-After": "2"})]
    _, digest = fetch(server, tmp_path, fake_sleep)
    assert digest == PAYLOAD_SHA
    assert fake_sleep.delays == [2.0]


def test_retry_after_http_date_is_capped(server, tmp_path, fake_sleep):
    server.script = [("status", 503, {"Retry-After": formatdate(time.time() + 3600, usegmt=True)})]
    _, digest = fetch(server, tmp_path, fake_sleep, max_backoff=5.0)
    assert digest == PAYLOAD_SHA
    assert fake_sleep.delays == [5.0]


def test_parse_retry_after_forms():
    now = 1_700_000_000.0
    assert download._parse_retry_after("7") == 7.0
    assert download._parse_retry_after(formatdate(now + 12, usegmt=True), now=now) == pytest.approx(
        12
    )
    assert download._parse_retry_after(formatdate(now - 12, usegmt=True), now=now) == 0.0
    assert download._parse_retry_after("soon") is None
    assert download._parse_retry_after(None) is None


def test_503_backoff_grows_exponentially_within_jitter(server, tmp_path, fake_sleep):
    server.script = [("status", 503, {})] * 5
    _, digest = fetch(server, tmp_path, fake_sleep, backoff=0.5, max_backoff=4.0)
    assert digest == PAYLOAD_SHA
    caps = [0.5, 1.0, 2.0, 4.0, 4.0]
    assert len(fake_sleep.delays) == 5
    for delay, cap in zip(fake_sleep.delays, caps, strict=True):
        assert 0.0 <= delay <= cap


def test_backoff_caps_double_until_max(server, tmp_path, fake_sleep, monkeypatch):
    monkeypatch.setattr(download, "_jitter", lambda cap: cap)  # the top of each jitter window
    server.script = [("status", 503, {})] * 5
    fetch(server, tmp_path, fake_sleep, backoff=0.5, max_backoff=4.0)
    assert fake_sleep.delays == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_retry_limit_raises_and_keeps_part_for_resume(server, tmp_path, fake_sleep):
    server.script = ["truncate"] + [("status", 503, {})] * 10
    with pytest.raises(DownloadError) as err:
        fetch(server, tmp_path, fake_sleep, retries=3)
    msg = str(err.value)
    assert server.url() in msg and "503" in msg and "resume" in msg
    assert "\n" not in msg
    dest = tmp_path / "model.bin.part"
    assert dest.read_bytes() == PAYLOAD[: len(PAYLOAD) // 3]
    assert len(fake_sleep.delays) == 3  # progress on the first attempt reset the count
    # The next run picks up where this one stopped.
    server.script = []
    _, digest = fetch(server, tmp_path, FakeSleep())
    assert digest == PAYLOAD_SHA
    assert server.ranges()[-1] == f"bytes={len(PAYLOAD) // 3}-"


def test_sha_mismatch_leaves_no_file(server, tmp_path, fake_sleep):
    server.script = ["wrong"]
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch(server, tmp_path, fake_sleep)
    assert not (tmp_path / "model.bin.part").exists()


def test_size_mismatch_leaves_no_file(server, tmp_path, fake_sleep):
    with pytest.raises(DownloadError, match="expected 299999"):
        fetch(server, tmp_path, fake_sleep, size=len(PAYLOAD) - 1, sha256=None)
    assert not (tmp_path / "model.bin.part").exists()


def test_401_says_a_token_is_needed(server, tmp_path, fake_sleep):
    server.script = [("status", 401, {})]
    with pytest.raises(DownloadError) as err:
        fetch(server, tmp_path, fake_sleep)
    msg = str(err.value)
    assert "401" in msg and "gated" in msg and "--token" in msg and "HF_TOKEN" in msg
    assert server.url() in msg
    assert fake_sleep.delays == [] and len(server.requests) == 1


def test_403_with_token_says_token_refused(server, tmp_path, fake_sleep):
    server.script = [("status", 403, {})]
    with pytest.raises(DownloadError, match="token was refused"):
        fetch(server, tmp_path, fake_sleep, token="hf_wrong")
    assert len(server.requests) == 1


def test_404_is_final(server, tmp_path, fake_sleep):
    server.script = [("status", 404, {})]
    with pytest.raises(DownloadError, match="404"):
        fetch(server, tmp_path, fake_sleep)
    assert fake_sleep.delays == [] and len(server.requests) == 1


def test_connection_refused_is_retried_then_reported(tmp_path, fake_sleep):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens here
    with pytest.raises(DownloadError, match="after 3 consecutive attempts"):
        download.download(
            f"http://127.0.0.1:{port}/x",
            tmp_path / "x.part",
            sha256=None,
            size=None,
            retries=2,
            sleep=fake_sleep,
        )
    assert len(fake_sleep.delays) == 2


def test_token_is_sent_and_kept_on_same_host_redirects_only(server, tmp_path, fake_sleep):
    fetch(server, tmp_path, fake_sleep, token="hf_abc", url=server.url("/redirect-same"))
    assert all(r["headers"].get("Authorization") == "Bearer hf_abc" for r in server.requests)
    server.requests.clear()
    fetch(
        server,
        tmp_path,
        fake_sleep,
        token="hf_abc",
        url=server.url("/redirect-other"),
        dest=tmp_path / "other.part",
    )
    first, second = server.requests
    assert first["headers"].get("Authorization") == "Bearer hf_abc"
    assert "Authorization" not in second["headers"]


# --- through the store ------------------------------------------------------------------


@pytest.fixture
def remote_spec(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    spec = ModelSpec(
        id="test-remote",
        title="test model served from 127.0.0.1",
        files=(ModelFile("test.onnx", len(PAYLOAD), PAYLOAD_SHA, server.url()),),
        input_size=(64, 64),
        mean=(0.0, 0.0, 0.0),
        std=(255.0, 255.0, 255.0),
    )
    monkeypatch.setitem(catalog.CATALOG, spec.id, spec)
    fake = FakeSleep()
    monkeypatch.setattr(
        download, "download", functools.partial(download.download, retries=0, sleep=fake)
    )
    return spec


def test_install_downloads_and_verifies(server, remote_spec):
    path = store.install("test-remote")
    assert path == store.file_path(remote_spec)
    assert path.read_bytes() == PAYLOAD
    assert store.verify_file(path, remote_spec.main_file)
    assert not path.with_name(path.name + ".part").exists()
    assert store.resolve("test-remote") == (remote_spec, path)


def test_interrupted_install_resumes_from_part(server, remote_spec):
    server.script = ["truncate"]
    with pytest.raises(ModelError, match="resume"):
        store.install("test-remote")
    path = store.file_path(remote_spec)
    part = path.with_name(path.name + ".part")
    assert not path.exists()
    assert part.stat().st_size == len(PAYLOAD) // 3
    assert store.install("test-remote") == path
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.ranges() == [None, f"bytes={len(PAYLOAD) // 3}-"]


def test_corrupt_download_is_never_installed(server, remote_spec):
    server.script = ["wrong"]
    with pytest.raises(ModelError, match="SHA-256"):
        store.install("test-remote")
    path = store.file_path(remote_spec)
    assert not path.exists()
    assert not path.with_name(path.name + ".part").exists()
    with pytest.raises(ModelError, match="not installed"):
        store.resolve("test-remote")


def test_gated_install_needs_token(server, remote_spec, monkeypatch):
    import dataclasses

    gated = dataclasses.replace(remote_spec, id="test-gated", gated=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ModelError, match="--token"):
        store.install(gated)
    assert server.requests == []
    store.install(gated, token="hf_secret")
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer hf_secret"


def test_catalog_remote_entries_are_well_formed():
    for mid in ("rmbg-1.4", "rmbg-2.0", "birefnet-lite"):
        spec = catalog.get_spec(mid)
        f = spec.main_file
        assert f.source.startswith("https://") and not spec.embedded
        assert f.size and f.size > 1_000_000
        assert f.sha256 is None or (len(f.sha256) == 64 and int(f.sha256, 16) >= 0)
        assert spec.activation in ("none", "sigmoid") and spec.normalize in ("clip", "minmax")
        assert spec.licence
    assert catalog.get_spec("rmbg-2.0").gated
    assert Path(catalog.get_spec("rmbg-1.4").main_file.name).suffix == ".onnx"

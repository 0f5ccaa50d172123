"""The local server against a real socket: Host checks (DNS rebinding), no directory listings,
no path traversal (plain, encoded, double-encoded), and isolation headers on every HTML route.

Raw HTTP over a socket is used on purpose: HTTP clients normalise `..` and percent-encoding
before sending, which would hide exactly what an attacker's request looks like.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import uvicorn

from alphacut.serve import site
from alphacut.serve.app import create_app

SECRET_MARKERS = (b"root:x:0:0", b"[build-system]", b"def create_app")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="error", lifespan="off")
    srv = uvicorn.Server(config)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "server did not start"
    yield port
    srv.should_exit = True
    t.join(timeout=10)


def raw_get(port: int, target: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host = host if host is not None else f"127.0.0.1:{port}"
    req = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


@pytest.mark.parametrize("host", ["evil.example", "attacker.test:8000", "127.0.0.1.nip.io", "192.168.1.10", ""])
def test_foreign_host_header_is_refused(server, host):
    status, _, body = raw_get(server, "/", host=host)
    assert status in (400, 403), (host, status)
    assert b"<html" not in body.lower()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "localhost"])
def test_loopback_host_headers_are_accepted(server, host):
    status, _, _ = raw_get(server, "/", host=host.format(port=server))
    assert status == 200


def _app_hash(port: int) -> str:
    _, _, body = raw_get(port, "/")
    return re.search(rb'src="app/([0-9a-f]{12})/main\.js"', body).group(1).decode()


def test_no_directory_listings(server):
    h = _app_hash(server)
    pkg, ver = next(iter(site.vendor_versions().items()))
    for target in ("/vendor/", f"/vendor/{pkg}@{ver}/", f"/app/{h}/", "/app/", "/models/", "/models/chunks/", "/api/docs/x/"):
        status, _, body = raw_get(server, target)
        assert status in (301, 302, 307, 404), (target, status)
        assert b"Index of" not in body and b"<li>" not in body


TRAVERSALS = [
    "/app/{h}/../../../../etc/passwd",
    "/app/{h}/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/app/{h}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/app/{h}/%252e%252e%252f%252e%252e%252fpyproject.toml",
    "/app/{h}/..%5c..%5c..%5cpyproject.toml",
    "/vendor/{v}/../../../pyproject.toml",
    "/vendor/{v}/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/vendor/{v}/%252e%252e%252f%252e%252e%252f%252e%252e%252fpyproject.toml",
    "/models/..%2f..%2f..%2fetc%2fpasswd",
    "/models/%252e%252e%252fserver.py",
    "/models/chunks/..%2f..%2f..%2fetc%2fpasswd",
    "/api/docs/..%2f..%2fserver.py",
    "/api/docs/%252e%252e%252fserver.py",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_path_traversal_never_escapes(server, template):
    pkg, ver = next(iter(site.vendor_versions().items()))
    target = template.format(h=_app_hash(server), v=f"{pkg}@{ver}")
    status, _, body = raw_get(server, target)
    assert status in (400, 404, 405), (target, status)
    assert not any(m in body for m in SECRET_MARKERS), target


@pytest.mark.parametrize("route", ["/", "/index.html", "/api/docs"])
def test_isolation_and_csp_on_every_html_route(server, route):
    status, headers, body = raw_get(server, route)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    csp = headers["content-security-policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["connect-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives.get("script-src", [])
    assert "'unsafe-eval'" not in directives.get("script-src", [])
    assert b"<script>" not in body.lower()  # no inline script for the CSP to allow

"""What the two fault-injecting model servers of these tests share: answering a resumed
request (``Range: bytes=N-``) and breaking a response off part-way, as a flaky CDN does."""

from __future__ import annotations

import http.server
import socket
import struct
import time


def start_body(handler: http.server.BaseHTTPRequestHandler, data: bytes, *, honour_range: bool = True) -> bytes | None:
    """Send the status and headers for ``data``: 206 from the requested offset, 416 for an
    offset past the end, else 200. Returns the body to write, or None when answered already."""
    start = 0
    rng = handler.headers.get("Range")
    if rng and honour_range:
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        if start >= len(data):
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
        handler.send_response(200)
    body = data[start:]
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    return body


def break_off(handler: http.server.BaseHTTPRequestHandler, body: bytes, how: str, share: float) -> None:
    """Write ``share`` of ``body``, then: ``truncate`` closes the connection, ``reset`` resets it
    (RST) once the client has taken what was sent, ``stall`` stops sending and waits longer
    than the client's timeout."""
    handler.wfile.write(body[: int(len(body) * share)])
    handler.wfile.flush()
    if how == "stall":
        time.sleep(0.6)
        return
    if how == "reset":
        time.sleep(0.2)
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()

"""Resumable, verified model downloads with the standard library only.

Remote models are hundreds of megabytes to a gigabyte, fetched over connections that drop,
stall and get rate-limited. So a download streams into a partial file, resumes it with a
``Range`` request after any failure (in this run or a later one), backs off exponentially
with full jitter (honouring ``Retry-After``), and only returns once the bytes match the
expected size and SHA-256. A file that does not verify is deleted, never kept to resume
from. Renaming into place is the store's job (``store.install``), under its lock.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from alphacut.errors import DownloadError
from alphacut.models.hashing import sha256_file

BLOCK = 1 << 18  # bytes read per network read
USER_AGENT = "alphacut-model-download/1"

Progress = Callable[[int, int | None], None]


class _Retryable(Exception):
    """A failure worth another attempt; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Restart(Exception):
    """The partial file cannot be continued: start again from byte zero (no back-off)."""


class _AuthStrippingRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the token to another host (hubs redirect to CDNs)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old_host = urllib.parse.urlsplit(req.full_url).netloc.lower()
            new_host = urllib.parse.urlsplit(new.full_url).netloc.lower()
            if old_host != new_host:
                for name in list(new.headers):
                    if name.lower() == "authorization":
                        del new.headers[name]
        return new


_opener = urllib.request.build_opener(_AuthStrippingRedirects)


def _jitter(cap: float) -> float:
    """Full jitter: a uniform delay in [0, cap] (a seam for tests)."""
    return random.uniform(0.0, cap)


def _parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """(start, total or None) from ``Content-Range: bytes START-END/TOTAL``."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _http_error(
    url: str, e: urllib.error.HTTPError, token: str | None, max_backoff: float
) -> Exception:
    """Map an HTTP error status to a final DownloadError or a retryable failure."""
    code = e.code
    if code in (429, 408) or 500 <= code < 600:
        hint = _parse_retry_after(e.headers.get("Retry-After") if e.headers else None)
        return _Retryable(
            f"HTTP {code} {e.reason}", None if hint is None else min(hint, max_backoff)
        )
    if code in (401, 403):
        if token:
            why = (
                "the token was refused or has no access: accept the model's licence on its hub "
                "page with the account the token belongs to, then retry (--token or HF_TOKEN)"
            )
        else:
            why = (
                "the model is gated and needs a token: accept its licence on its hub page, then "
                "pass --token or set HF_TOKEN"
            )
        return DownloadError(f"{url}: HTTP {code}: access denied; {why}")
    if code == 404:
        return DownloadError(
            f"{url}: HTTP 404: not found (the model file has moved or was removed)"
        )
    return DownloadError(f"{url}: HTTP {code} {e.reason}")


def _attempt(
    url: str,
    dest: Path,
    *,
    size: int | None,
    token: str | None,
    progress: Progress | None,
    timeout: float,
    max_backoff: float,
) -> None:
    """One request: continue ``dest`` from its current length to the end of the body.

    Raises ``_Retryable`` on transient failures (bytes written so far stay on disk),
    ``_Restart`` when the partial file must be discarded, ``DownloadError`` when final.
    """
    offset = _size(dest)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = _opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                m = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", e.headers.get("Content-Range") or "")
                expected = size if size is not None else (int(m.group(1)) if m else None)
                if expected is not None and offset == expected:
                    return  # already complete: the caller verifies it
                raise _Restart(f"HTTP 416 for a {offset}-byte partial file") from None
            raise _http_error(url, e, token, max_backoff) from None
    except (OSError, http.client.HTTPException) as e:
        raise _Retryable(_describe(e)) from None

    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if resp.status == 206:
            cr = _content_range(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != offset:
                raise _Restart(
                    f"server resumed at the wrong offset ({resp.headers.get('Content-Range')})"
                )
            total = (
                cr[1] if cr[1] is not None else (offset + length if length is not None else None)
            )
            mode, done = "ab", offset
        elif resp.status == 200:
            # A fresh download, or a server that ignored Range: either way, from byte zero.
            total = length
            mode, done = "wb", 0
        else:
            raise _Retryable(f"unexpected HTTP {resp.status}")
        if size is not None and total is not None and total != size:
            dest.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: server offers {total} bytes, expected {size}; "
                "the file upstream has changed"
            )
        expected_total = total if total is not None else size
        if progress:
            progress(done, expected_total)
        overflow = False
        with open(dest, mode) as out:
            try:
                while True:
                    try:
                        # read1: whatever has arrived, so a reset loses nothing already received
                        block = resp.read1(BLOCK)
                    except (OSError, http.client.HTTPException) as e:
                        raise _Retryable(_describe(e)) from None
                    if not block:
                        break
                    if size is not None and done + len(block) > size:
                        overflow = True
                        break
                    out.write(block)  # disk errors (full, read-only) propagate as OSError
                    done += len(block)
                    if progress:
                        progress(done, expected_total)
            finally:
                out.flush()
                os.fsync(out.fileno())
        if overflow:
            dest.unlink(missing_ok=True)
            raise DownloadError(f"{url}: server sent more than the expected {size} bytes; deleted")
        if expected_total is not None and done < expected_total:
            raise _Retryable(f"connection closed after {done} of {expected_total} bytes")


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason if isinstance(e.reason, BaseException) else e
    if isinstance(e, TimeoutError):
        return "timed out"
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None,
    token: str | None = None,
    progress: Progress | None = None,
    retries: int = 6,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    timeout: float = 30.0,
    sleep: Callable[[float], object] = time.sleep,
) -> str:
    """Download ``url`` into ``dest`` (resuming what is there) and return its SHA-256.

    ``retries`` bounds consecutive failed attempts that added no bytes; an attempt that made
    progress resets the count and the back-off, so a slow flaky link still finishes. The
    delay before retry ``n`` (0-based) is uniform in ``[0, min(max_backoff, backoff * 2**n)]``,
    or the server's ``Retry-After`` capped at ``max_backoff``. On a final failure the
    partial file stays for the next call to resume; a file that fails verification is
    deleted and ``DownloadError`` raised.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if size is not None and _size(dest) > size:
        dest.unlink()  # longer than the real file: cannot be a prefix of it
    elif size is not None and _size(dest) == size and sha256 is not None:
        if sha256_file(dest) == sha256:
            return sha256
        dest.unlink()  # a complete-looking leftover that is wrong: fetch afresh

    failures = 0
    restarts = 0
    while True:
        before = _size(dest)
        try:
            _attempt(
                url,
                dest,
                size=size,
                token=token,
                progress=progress,
                timeout=timeout,
                max_backoff=max_backoff,
            )
            break
        except _Restart as e:
            dest.unlink(missing_ok=True)
            restarts += 1
            if restarts > retries + 1:
                raise DownloadError(
                    f"{url}: cannot resume ({e}) and restarting did not help"
                ) from None
            continue
        except _Retryable as e:
            if _size(dest) > before:
                failures = 0  # progress was made: this is a new run of failures
            if failures >= retries:
                kept = _size(dest)
                where = f"; {kept} bytes kept in {dest} to resume" if kept else ""
                raise DownloadError(
                    f"{url}: download failed after {failures + 1} consecutive attempts: "
                    f"{e.reason}{where}"
                ) from None
            if e.retry_after is not None:
                delay = min(e.retry_after, max_backoff)
            else:
                delay = _jitter(min(max_backoff, backoff * (2**failures)))
            failures += 1
            sleep(delay)

    done = _size(dest)
    if size is not None and done != size:
        dest.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: downloaded {done} bytes, expected {size}; partial file deleted"
        )
    digest = sha256_file(dest)
    if sha256 is not None and digest != sha256:
        dest.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: downloaded file has SHA-256 {digest}, expected {sha256}; deleted"
        )
    return digest

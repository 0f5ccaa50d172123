"""``alphacut serve``: a local server for the browser app (Starlette + uvicorn).

The server only hands out files: the app, its pinned JS/WASM vendor files and the model.
Images never reach it; the page cuts them out in a Web Worker. Every response carries
cross-origin isolation (COOP/COEP, needed for multi-threaded WASM), a strict CSP whose
connect-src is 'self' only, ``nosniff`` and a CORP header; vendor and app files live under
versioned URLs and are cached as immutable, HTML and ``config.json`` are ``no-cache``. Code
and WASM go gzip-compressed when the browser accepts it; the model goes as packed chunks
(``pack.py``) beside the plain ones.

Routes are grouped so that other features (an HTTP API under ``/api/v1``) can add theirs:
``create_app`` concatenates ``api_routes()`` and the browser app's (what ``web_routes()``
returns alone), and its lifespan makes ``config.json`` before the server takes requests.
"""

from __future__ import annotations

import hmac
import ipaddress
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alphacut.models.catalog import DEFAULT_MODEL
from alphacut.serve import site

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
TOKEN_COOKIE = "alphacut_token"


class SecurityHeaders:
    """Adds the site-wide headers to every response, errors included."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]):
        self.app = app
        self.raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.raw if k not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Guard:
    """Host-header check (DNS rebinding) on loopback binds, and the optional access token.

    With a token, a request must carry it as ``?token=``, an ``Authorization: Bearer`` header
    or the cookie set the first time the page was opened with ``?token=``.
    """

    def __init__(self, app: ASGIApp, host: str, token: str | None):
        self.app = app
        self.loopback = _is_loopback(host)
        self.bound = host.strip("[]").lower()
        self.token = token
        self.token_bytes = token.encode("utf-8") if token else b""

    def _host_allowed(self, host_header: str) -> bool:
        """The bound address, a loopback name or any loopback literal (127.0.0.0/8, ::1), with
        or without a port: what a browser sends for a page on this server, and never the
        name a DNS-rebinding page is loaded under."""
        if host_header.startswith("["):
            end = host_header.find("]")
            if end < 0:
                return False
            hostname = host_header[1:end]
        else:
            hostname = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
        hostname = hostname.lower()
        return hostname in LOOPBACK_NAMES or hostname == self.bound or _is_loopback(hostname)

    def _token_matches(self, request: Request) -> bool:
        """The token from ?token=, the cookie or ``Authorization: Bearer`` (scheme in any case,
        RFC 7235), compared as UTF-8 bytes in constant time (any character may arrive)."""
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
        if not given:
            scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
            given = credentials.strip() if scheme.lower() == "bearer" else ""
        if not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self.token_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.loopback and not self._host_allowed(request.headers.get("host") or ""):
            await PlainTextResponse("forbidden host", 403)(scope, receive, send)
            return
        set_cookie = False
        if self.token:
            if not self._token_matches(request):
                await PlainTextResponse("missing or wrong token", 401)(scope, receive, send)
                return
            set_cookie = request.query_params.get("token") is not None

        if not set_cookie:
            await self.app(scope, receive, send)
            return
        cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [(b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_cookie)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebApp:
    """The browser app's files: index, config, app modules, vendor files and the model."""

    def __init__(self, model: str = DEFAULT_MODEL):
        self.model = model
        self.node_modules = site.vendor_root()
        self.versions = site.vendor_versions(self.node_modules)
        self.app_hash = site.asset_hash(self.node_modules)
        self.index = site.render_index(self.app_hash)
        self.sw = site.service_worker(self.app_hash, self.node_modules)
        self.vendor_js = site.vendor_module(self.node_modules).encode()
        self._config: tuple[bytes, Path, dict[str, int]] | None = None
        self._packed: site.pack.Packed | None = None
        # Large files exist only as parts (as in a static build): {package: {"<file>.part<N>": (file, N)}}
        self.parts = {
            pkg: {f"{rel}.part{i}": (rel, i) for rel, sizes in files.items() for i in range(len(sizes))}
            for pkg, files in site.vendor_parts(self.node_modules).items()
        }
        self.vendor: dict[str, tuple[str, frozenset[str]]] = {
            f"{pkg}@{ver}": (pkg, frozenset(site.VENDOR_FILES[pkg]) - set(site.vendor_parts(self.node_modules).get(pkg, {})))
            for pkg, ver in self.versions.items()
        }
        self.app_files = {str(p.as_posix()) for p in site.web_files()}

    def config(self) -> tuple[bytes, Path, dict[str, int]]:
        """(config.json bytes, model path, chunk hash → index); the model is resolved on first use."""
        if self._config is None:
            cfg, path = site.model_config(self.model)
            chunks = {c["sha256"]: i for i, c in enumerate(cfg["model"]["chunks"])}
            self._packed = site.model_packed(path, cfg["model"]["sha256"]) if "packing" in cfg["model"] else None
            self._config = (site.config_bytes(cfg), path, chunks)
        return self._config

    async def index_page(self, request: Request) -> Response:
        return _bytes(request, self.index, site.MIME_TYPES[".html"], site.NO_CACHE)

    async def service_worker(self, request: Request) -> Response:
        return _bytes(request, self.sw, site.MIME_TYPES[".js"], site.NO_CACHE)

    async def config_json(self, request: Request) -> Response:
        body, _, _ = self.config()
        return _bytes(request, body, "application/json", site.NO_CACHE)

    async def app_file(self, request: Request) -> Response:
        h, rel = request.path_params["hash"], request.path_params["path"]
        if h != self.app_hash:
            return _not_found()
        if rel == "vendor.js":
            return _bytes(request, self.vendor_js, site.mime_type(rel), site.IMMUTABLE)
        if rel not in self.app_files:
            return _not_found()
        return await _file(request, site.WEB_DIR / rel, site.IMMUTABLE)

    async def vendor_file(self, request: Request) -> Response:
        entry = self.vendor.get(request.path_params["pkg"])
        rel = request.path_params["path"]
        if entry is None:
            # scoped packages: /vendor/@jsquash/png@3.1.1/...
            scope, _, rest = rel.partition("/")
            entry = self.vendor.get(f"{request.path_params['pkg']}/{scope}")
            rel = rest
        if entry is None:
            return _not_found()
        part = self.parts.get(entry[0], {}).get(rel)
        if part is not None:
            path = self.node_modules / entry[0] / part[0]
            headers = {"Cache-Control": site.IMMUTABLE, "Vary": "Accept-Encoding"}
            if _accepts_gzip(request):
                data = await run_in_threadpool(site.gzipped, path, part[1])
                headers["Content-Encoding"] = "gzip"
            else:
                data = await run_in_threadpool(site.read_part, path, part[1])
            return Response(data, media_type="application/octet-stream", headers=headers)
        if rel not in entry[1]:
            return _not_found()
        return await _file(request, self.node_modules / entry[0] / rel, site.IMMUTABLE)

    async def model_chunk(self, request: Request) -> Response:
        """One content-addressed piece of the model file (see ``site.CHUNK_SIZE``)."""
        _, path, chunks = self.config()
        index = chunks.get(request.path_params["sha256"])
        if index is None:
            return _not_found()
        data = await run_in_threadpool(site.read_chunk, path, index)
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": site.IMMUTABLE})

    async def packed_chunk(self, request: Request) -> Response:
        """One model chunk in its packed form (``serve/pack.py``), named by the plain chunk's SHA-256:
        the page unpacks it and checks that hash. Read whole in one thread call (about 2 MB):
        ``FileResponse`` reads 64 KiB at a time, each through a worker thread, which took
        0.44-0.54 s of this process's CPU for the 77 MB of a first visit, against 0.09-0.11 s
        (curl on loopback, 2-core machine), CPU the browser beside it needs."""
        self.config()
        found = self._packed.path(request.path_params["sha256"]) if self._packed else None
        if found is None:
            return _not_found()
        data = await run_in_threadpool(found.read_bytes)
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": site.IMMUTABLE})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.index_page, methods=["GET", "HEAD"]),
            Route("/index.html", self.index_page, methods=["GET", "HEAD"]),
            Route("/config.json", self.config_json, methods=["GET", "HEAD"]),
            Route("/sw.js", self.service_worker, methods=["GET", "HEAD"]),
            Route("/app/{hash}/{path:path}", self.app_file, methods=["GET", "HEAD"]),
            Route("/vendor/{pkg}/{path:path}", self.vendor_file, methods=["GET", "HEAD"]),
            Route("/models/chunks/{sha256}", self.model_chunk, methods=["GET", "HEAD"]),
            Route("/models/packed/{sha256}", self.packed_chunk, methods=["GET", "HEAD"]),
        ]


async def _file(request: Request, path: Path, cache: str) -> Response:
    """A file; code and WASM gzip-compressed (computed once, ``site.gzipped``) when the request
    accepts it and asks for no byte range."""
    if not path.is_file():
        return _not_found()
    headers = {"Cache-Control": cache}
    if site.compressible(path):
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(request) and "range" not in request.headers:
            body = await run_in_threadpool(site.gzipped, path)
            return Response(body, media_type=site.mime_type(path), headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(path, media_type=site.mime_type(path), headers=headers)


def _bytes(request: Request, body: bytes, media_type: str, cache: str) -> Response:
    """A small generated file (index, config, service worker), gzip-compressed when accepted."""
    import gzip

    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if _accepts_gzip(request) and len(body) > 1024:
        body = gzip.compress(body, 6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media_type, headers=headers)


def _accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding names gzip (or *) with a non-zero q."""
    for item in request.headers.get("accept-encoding", "").lower().split(","):
        name, _, params = item.strip().partition(";")
        q = params.strip()
        if name.strip() in ("gzip", "*") and not (q.startswith("q=") and _qzero(q[2:])):
            return True
    return False


def _qzero(q: str) -> bool:
    try:
        return float(q) == 0
    except ValueError:
        return False


def _not_found() -> Response:
    return PlainTextResponse("not found", 404, headers={"Cache-Control": site.NO_CACHE})


def api_routes(model: str = DEFAULT_MODEL, device: str = "auto") -> list[BaseRoute]:
    """Routes of the HTTP API (``/api/v1/...``, ``/api/docs``): see ``alphacut.serve.api``."""
    from alphacut.serve import api

    return api.routes(model, device=device)


def web_routes(model: str = DEFAULT_MODEL) -> list[BaseRoute]:
    return WebApp(model).routes()


def _prepared(web: WebApp, then):
    """A lifespan that makes the page's ``config.json`` (the model's chunk hashes, its packed
    chunks) before the server takes requests, then runs ``then`` (the API's). Done on the
    first request instead, it held that request and every other one for 0.2-0.6 s while the
    page was starting (the event loop was busy hashing), on the first visit's critical path."""
    import contextlib
    import logging

    import anyio

    from alphacut.errors import AlphacutError

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            await anyio.to_thread.run_sync(web.config)
        except AlphacutError as e:  # a model not installed: config.json reports it per request
            logging.getLogger("alphacut.serve").warning("web: model %s not ready at start-up: %s", web.model, e)
        async with then(app):
            yield

    return lifespan


def create_app(model: str = DEFAULT_MODEL, token: str | None = None, host: str = "127.0.0.1", device: str = "auto") -> Starlette:
    """The ASGI app: API routes first, then the browser app; headers and guards on all.
    ``device``: where the API's inference runs (``infer.DEVICES``)."""
    from alphacut.serve import api

    web = WebApp(model)
    return Starlette(
        routes=[*api_routes(model, device), *web.routes()],
        middleware=[
            Middleware(SecurityHeaders, headers=site.SECURITY_HEADERS),
            Middleware(Guard, host=host, token=token),
        ],
        # config.json, then the API's model session, ready before requests arrive
        lifespan=_prepared(web, api.lifespan(model, device)),
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    token: str | None = None,
    model: str = DEFAULT_MODEL,
    device: str = "auto",
) -> None:
    """Serve the app until interrupted; the model is installed and verified before the URL prints."""
    import threading
    import webbrowser

    import uvicorn

    from alphacut.models import store

    store.resolve(model)  # embedded models install here (no network); others must be installed
    site.model_config(model)  # chunk hashes, and the packed chunks computed once into the store
    if not _is_loopback(host):
        if not token:
            from alphacut.errors import AlphacutError

            raise AlphacutError(
                f"--host {host} makes the app reachable from other machines; pass --token SECRET "
                "(every request must then carry it), or keep the default 127.0.0.1"
            )
        print(
            f"alphacut: WARNING: listening on {host}, not loopback: anyone who can reach this "
            "port and knows the token can use the app and the API",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(model=model, token=token, host=host, device=device)
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"alphacut: serving the browser app at {url}  (Ctrl+C to stop)", flush=True)
    print(f"alphacut: HTTP API at http://{shown}:{port}/api/v1/remove, docs at http://{shown}:{port}/api/docs", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _main() -> None:  # `python -m alphacut.serve.app [port]`, used by tests and the benchmark
    import sys

    serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000)


if __name__ == "__main__":
    _main()

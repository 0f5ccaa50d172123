"""The local HTTP API under ``/api/v1`` (served by ``alphacut serve`` beside the browser app).

Routes:

- ``POST /api/v1/remove``: the image as the raw request body (``image/*`` or
  ``application/octet-stream``) or as ``multipart/form-data`` (field ``image``, and
  optionally ``background_image``: a photo to put behind the subject, scaled to cover);
  parameters (``model`` and the options of ``options.py``) in the query string or as form
  fields. The answer is the encoded, verified cut-out with its own content type.
- ``GET /api/v1/models``: the catalog, with what is installed and usable here.
- ``GET /api/v1/openapi.json``: the OpenAPI 3.0.3 document of all of this, errors included
  (written by ``openapi.py`` from the option and format tables).
- ``GET /api/docs``: a self-contained docs page (files in ``api_docs/``, no CDN, no inline
  script, so it works offline under the app's CSP) that renders the document and can try the
  endpoints.

Limits (each settable by an environment variable, read when the app is created): request size
(``ALPHACUT_API_MAX_BODY``, 64 MiB; checked against Content-Length and again while the body
streams in), pixels (``ALPHACUT_API_MAX_PIXELS``, else the decoder's limit; read from the image
header before any pixel is decoded), concurrency (``ALPHACUT_API_WORKERS`` running, 1, plus
``ALPHACUT_API_QUEUE`` waiting, 2; any further request is answered 503 at once with
``Retry-After``), a deadline for the body to arrive (``ALPHACUT_API_BODY_TIMEOUT``, 30 s; 408),
and a per-request deadline from admission (``ALPHACUT_API_TIMEOUT``, 120 s; 504). A request is
admitted only once its body is in, split and its image header checked (in a worker thread,
so neither slow uploads nor large bodies hold places or stall the event loop). Every
error is JSON: ``{"error": <code>, "detail": <one line>}`` (the token check in
``server.Guard`` answers 401 in plain text before any route runs).

Images live in memory only: the body is read into one buffer, multipart is parsed in memory
(no spooled temporary files), nothing of an image or its uploaded file name is logged or
written anywhere. Model sessions are shared per process (``infer`` caches them): one
``Remover`` per model, and ``lifespan`` loads the served model when the server starts, so the
first request finds its session ready. Decoding, inference and encoding run in worker threads,
never on the event loop; a timed-out job finishes in its thread and keeps its slot until then,
so the concurrency bound holds even when clients give up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from alphacut import formats
from alphacut.errors import (
    AlphacutError,
    ImageTooLargeError,
    InputError,
    ModelError,
    OutputError,
    VerifyError,
)
from alphacut.models import store
from alphacut.models.catalog import CATALOG, DEFAULT_MODEL
from alphacut.options import AVIF_QUALITY_RULE as AVIF_QUALITY_RULE  # stated here for docs/api.md and the tests
from alphacut.options import BACKGROUND_FIELD, BY_API, OptionError, Options
from alphacut.stages import decode as decode_module
from alphacut.stages.infer import DEFAULT_DEVICE

log = logging.getLogger("alphacut.api")

PREFIX = "/api/v1"
DOCS_DIR = Path(__file__).with_name("api_docs")
RAW_TYPES = ("application/octet-stream",)
#: The request's parameters: the model, and every option the API offers (``options.OPTIONS``).
PARAMS = ("model", *BY_API)


# ----------------------------------------------------------------------------- limits


def _env_number(name: str, default, cast=int):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Limits:
    max_body: int = 64 * 1024 * 1024  # bytes
    max_pixels: int | None = None  # None: the decoder's limit (ALPHACUT_MAX_PIXELS, 120 MP)
    workers: int = 1  # inferences running at once
    queue: int = 2  # requests waiting for a worker; beyond that, 503 at once
    timeout: float = 120.0  # seconds from admission to the answer
    body_timeout: float = 30.0  # seconds for the whole body to arrive, before admission

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_body=_env_number("ALPHACUT_API_MAX_BODY", d.max_body),
            max_pixels=_env_number("ALPHACUT_API_MAX_PIXELS", d.max_pixels),
            workers=max(1, _env_number("ALPHACUT_API_WORKERS", d.workers)),
            queue=max(0, _env_number("ALPHACUT_API_QUEUE", d.queue)),
            timeout=_env_number("ALPHACUT_API_TIMEOUT", d.timeout, float),
            body_timeout=_env_number("ALPHACUT_API_BODY_TIMEOUT", d.body_timeout, float),
        )

    @property
    def read_budget(self) -> int:
        """Bytes of bodies held before admission, all requests together: bodies are read
        before a place is taken, so this (not the places) bounds their memory. A slow upload
        holds only what it has sent."""
        return self.max_body * (self.workers + self.queue + 1)

    @property
    def pixel_limit(self) -> int:
        return decode_module.DEFAULT_MAX_PIXELS if self.max_pixels is None else self.max_pixels


# ----------------------------------------------------------------------------- shared removers

_removers: dict[str, object] = {}
_removers_lock = threading.Lock()


def shared_remover(model: str, device: str = DEFAULT_DEVICE):
    """The process-wide ``Remover`` for a catalog model on a device (its session is shared
    via ``infer``)."""
    from alphacut.pipeline import Remover

    with _removers_lock:
        r = _removers.get((model, device))
        if r is None:
            r = _removers[model, device] = Remover(model, device=device)
        return r


def lifespan(model: str, device: str = DEFAULT_DEVICE):
    """Starlette lifespan that loads ``model``'s session before the server takes requests."""
    factory = shared_remover  # bound now: a test may swap the factory for one app

    @contextlib.asynccontextmanager
    async def _lifespan(app):
        t = time.perf_counter()
        try:
            session = await anyio.to_thread.run_sync(lambda: factory(model, device).session)
            log.info("api: model %s ready in %.1f s, inference on %s", model, time.perf_counter() - t,
                     getattr(session, "provider", "?"))
        except AlphacutError as e:  # the web app still serves; the API answers per request
            log.warning("api: model %s not loaded at start-up: %s", model, e)
        yield

    return _lifespan


# ----------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.detail, self.headers)


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    h = {"Cache-Control": "no-store", **(headers or {})}
    return JSONResponse({"error": error, "detail": detail}, status, headers=h)


def result_headers(cut) -> dict[str, str]:
    """What the client should know about a result beyond its bytes: the share of the photo
    that stays uncertain (always), and a one-line notice with that region's bounds when it is
    large enough to look at (ASCII; the label is "image", never the upload's name)."""
    out = {"X-Alphacut-Uncertain": f"{cut.uncertain:.3f}"}
    if cut.notice:
        out["X-Alphacut-Notice"] = cut.notice.encode("ascii", "replace").decode()
        if cut.uncertain_box is not None and "uncertain" in cut.notice:
            out["X-Alphacut-Uncertain-Box"] = ",".join(f"{v:.3f}" for v in cut.uncertain_box)
    return out


def _from_pipeline(e: Exception, params: Params | None = None) -> ApiError:
    if (isinstance(e, VerifyError) and params is not None and params.options.avif_quality is not None
            and params.options.avif_quality < 100):
        # lossy AVIF drifting past the verify stage's tolerance: the client's quality is too low
        return ApiError(422, "cannot_encode", f"{e} (or none: lossless)")
    if isinstance(e, ImageTooLargeError):
        return ApiError(422, "image_too_large", str(e))
    if isinstance(e, InputError):
        return ApiError(422, "bad_image", str(e))
    if isinstance(e, OutputError):
        return ApiError(422, "cannot_encode", str(e))
    if isinstance(e, ModelError):
        return ApiError(503, "model_unavailable", str(e), {"Retry-After": "30"})
    log.error("api: internal error %s", type(e).__name__)  # never the message: no image data in logs
    return ApiError(500, "internal", "internal error while processing the image")


# ----------------------------------------------------------------------------- parameters


@dataclass
class Params:
    model: str
    options: Options = field(default_factory=Options)

    @property
    def format(self) -> str:
        return self.options.format or formats.DEFAULT_FORMAT

    @property
    def filename(self) -> str:
        return ("mask" if self.options.mask_only else "cutout") + formats.get(self.format).extension


def parse_params(raw: dict[str, str], default_model: str, **given) -> Params:
    """Validate the request's parameters (query string merged with form fields): the model
    here, every option by ``Options.from_text`` (with the values ``given`` already parsed)."""
    raw = {k: v.strip() for k, v in raw.items() if k in PARAMS and v.strip() != ""}
    model = raw.pop("model", default_model)
    if model == default_model and model not in CATALOG:
        model = default_model  # the server's own model, e.g. `serve --model my.onnx`: the operator chose it
    elif model not in CATALOG:  # never a path from a client
        raise ApiError(400, "unknown_model", f"unknown model {model!r}; known: {', '.join(CATALOG)}")
    spec = CATALOG.get(model)
    if spec is not None and not spec.embedded and not _installed(model):
        raise ApiError(409, "model_not_installed", f"model {model} is not installed here; run `alphacut models install {model}`")
    try:
        options = Options.from_text(raw, surface="api", **given)
    except OptionError as e:
        detail = str(e)
        if "background" in given:  # the background is the uploaded image: say so
            detail = detail.replace("background", BACKGROUND_FIELD, 1)
        raise ApiError(400, "bad_parameter", detail) from None
    return Params(model, options)


def _installed(model: str) -> bool:
    for row in store.status():
        if row["id"] == model:
            return bool(row["installed"])
    return False


# ----------------------------------------------------------------------------- bodies


async def read_body(request: Request, limit: int, reserve=None) -> bytearray:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit``; kept as
    the bytearray it arrived in (a 64 MiB copy would hold the event loop). ``reserve(n)`` is
    called before each chunk is kept (it may refuse)."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if n > limit:
            raise _too_large(limit, f"Content-Length {n}")
    buf = bytearray()
    try:
        async for chunk in request.stream():
            if reserve is not None:
                reserve(len(chunk))
            buf += chunk
            if len(buf) > limit:
                raise _too_large(limit, "the body")
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "client disconnected before sending the whole body") from None
    return buf


def _too_large(limit: int, what: str) -> ApiError:
    return ApiError(
        413,
        "request_too_large",
        f"{what} exceeds the limit of {limit} bytes ({limit / 2**20:.1f} MiB; ALPHACUT_API_MAX_BODY)",
        {"Connection": "close"},
    )


MULTIPART_SLICE = 1 << 20


def split_multipart(body: bytes | bytearray, content_type: str) -> tuple[bytes | None, dict[str, str], bytes | None]:
    """(bytes of the ``image`` field, text fields, bytes of the ``background_image`` field or
    None), parsed in memory by python-multipart's
    low-level streaming parser (the one Starlette's form parser is built on); the file name is
    ignored and nothing touches the disk. The body is fed in 1 MiB slices, so no single call
    holds the GIL (and so the event loop) for long on a 64 MiB body."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "multipart/form-data without a boundary")
    # Only the part being read is held, and only the fields used are kept: a hostile body of
    # many small parts leaves no large heap for the garbage collector to walk (a full
    # collection holds the GIL, and so stalls the event loop too).
    current: list = [{}, bytearray()]  # headers of the part being read, its data
    header = [bytearray(), bytearray()]  # the header line being read: name, value
    image: list[bytes] = []
    backdrop: list[bytes] = []
    fields: dict[str, str] = {}
    counts = {"parts": 0, "ended": 0}

    def on_part_begin() -> None:
        counts["parts"] += 1
        current[0], current[1] = {}, bytearray()

    def on_header_end() -> None:
        current[0][bytes(header[0]).strip().lower()] = bytes(header[1]).strip()
        header[0].clear()
        header[1].clear()

    def on_part_data(data, start, end) -> None:
        if _wanted(current[0]):
            current[1].extend(data[start:end])

    def on_part_end() -> None:
        name = _field_name(current[0])
        if name == "image":
            if image:
                raise ApiError(400, "bad_request", "more than one 'image' field")
            image.append(bytes(current[1]))
        elif name == BACKGROUND_FIELD:
            if backdrop:
                raise ApiError(400, "bad_request", f"more than one {BACKGROUND_FIELD!r} field")
            backdrop.append(bytes(current[1]))
        elif name in PARAMS:
            try:
                fields[name] = bytes(current[1]).decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_parameter", f"form field {name!r} is not UTF-8 text") from None
        current[1] = bytearray()

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin,
        "on_header_field": lambda data, start, end: header[0].extend(data[start:end]),
        "on_header_value": lambda data, start, end: header[1].extend(data[start:end]),
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": lambda: counts.__setitem__("ended", 1),
    })
    view = memoryview(body)
    try:
        for i in range(0, len(body), MULTIPART_SLICE):
            parser.write(bytes(view[i : i + MULTIPART_SLICE]))
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, "bad_request", f"malformed multipart body ({e})") from None
    if not counts["parts"]:
        raise ApiError(400, "bad_request", "multipart body has no parts")
    if not counts["ended"]:
        raise ApiError(400, "bad_request", "multipart body ends before its closing boundary")
    return (image[0] if image else None), fields, (backdrop[0] if backdrop else None)


def _field_name(headers: dict[bytes, bytes]) -> str:
    from python_multipart.multipart import parse_options_header

    _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
    return disposition.get(b"name", b"").decode("latin-1")


def _wanted(headers: dict[bytes, bytes]) -> bool:
    """Whether the part being read is one whose content is used (an image or a parameter)."""
    name = _field_name(headers)
    return name in ("image", BACKGROUND_FIELD) or name in PARAMS


# ----------------------------------------------------------------------------- the API


@dataclass
class _Ticket:
    """Who gives the request's slot back: the job once it has begun, else the request."""

    abandoned: bool = False  # the request stopped waiting (timeout)
    begun: bool = False  # the job started in its thread
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Api:
    model: str = DEFAULT_MODEL
    limits: Limits = field(default_factory=Limits.from_env)
    remover_for: object = None  # callable(model, device) -> Remover; defaults to shared_remover
    device: str = DEFAULT_DEVICE  # where inference runs (``serve --device``), for every request

    def __post_init__(self):
        if self.remover_for is None:
            self.remover_for = shared_remover
        self._lock = threading.Lock()
        self._in_flight = 0  # admitted requests, until their job has really finished
        self._reading = 0  # bytes of bodies held by requests not yet admitted
        self._run = threading.Semaphore(self.limits.workers)
        self._threads = anyio.CapacityLimiter(self.limits.workers + self.limits.queue)
        self._job_seconds = 3.0  # running estimate of one job, for Retry-After

    # --- admission -------------------------------------------------------------------

    def _admit(self) -> None:
        with self._lock:
            if self._in_flight >= self.limits.workers + self.limits.queue:
                busy = self._in_flight
            else:
                self._in_flight += 1
                return
        wait = max(1, math.ceil(self._job_seconds * busy / self.limits.workers))
        raise ApiError(
            503,
            "busy",
            f"{busy} requests are running or waiting (limit {self.limits.workers} running + "
            f"{self.limits.queue} waiting); retry in about {wait} s",
            {"Retry-After": str(wait)},
        )

    def _reserve(self, n: int) -> None:
        with self._lock:
            if self._reading + n <= self.limits.read_budget:
                self._reading += n
                return
            held = self._reading
        raise ApiError(
            503, "busy",
            f"{held} bytes of request bodies are being received (limit {self.limits.read_budget}); retry in a few seconds",
            {"Retry-After": "5", "Connection": "close"},
        )

    def _unreserve(self, n: int) -> None:
        with self._lock:
            self._reading -= n

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # --- the job, in a worker thread ---------------------------------------------------

    def _job(self, ticket: _Ticket, body: bytes, params: Params, deadline: float) -> tuple[bytes, dict, dict]:
        with ticket.lock:
            if ticket.abandoned:  # the request timed out before this thread picked the job up
                raise TimeoutError
            ticket.begun = True
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._run.acquire(timeout=remaining):
                raise TimeoutError
            try:
                if ticket.abandoned:
                    raise TimeoutError
                remover = self.remover_for(params.model, self.device)
                t = time.perf_counter()
                cut = remover.remove(body, "image", options=params.options, max_pixels=self.limits.max_pixels)
                del body
                if ticket.abandoned:
                    raise TimeoutError
                data = cut.encode(params.format, options=params.options)
                self._job_seconds = 0.7 * self._job_seconds + 0.3 * (time.perf_counter() - t)
                extra = result_headers(cut)
                device = getattr(getattr(remover, "session", None), "device", None)
                if device:  # where inference ran (a fake remover in tests has no session)
                    extra["X-Alphacut-Device"] = device
                return data, dict(cut.timings), extra
            finally:
                self._run.release()
        finally:
            self._leave()

    # --- before admission, in a worker thread -------------------------------------------

    def _check_request(self, body: bytearray, ctype: str, multipart: bool, query: dict[str, str]) -> tuple[bytes, Params]:
        """(image bytes, parameters): multipart split, parameters checked, and the image's
        header read, so a request over the pixel limit is refused before it takes a slot."""
        backdrop = None
        if multipart:
            image, fields, backdrop = split_multipart(body, ctype)
            if image is None:
                raise ApiError(400, "bad_request", "multipart body has no field named 'image'")
            body = image
            query = {**query, **fields}
        else:
            body = bytes(body)
        given = {}
        if backdrop is not None:
            if (query.get("background") or "").strip():
                raise ApiError(400, "bad_parameter", f"background and {BACKGROUND_FIELD} exclude each other; give one")
            from alphacut.stages.background import Background

            given["background"] = Background("image", image=backdrop)
        params = parse_params(query, self.model, **given)
        checks = [(body, "image")] + ([(backdrop, BACKGROUND_FIELD)] if backdrop is not None else [])
        for data, label in checks:
            try:
                img = decode_module.open_image(data, label)
                decode_module.check_pixels(img, label, self.limits.max_pixels)
                img.close()
            except InputError as e:
                raise _from_pipeline(e) from None
        return body, params

    # --- routes ------------------------------------------------------------------------

    async def remove(self, request: Request) -> Response:
        held = 0

        def reserve(n: int) -> None:
            nonlocal held
            self._reserve(n)
            held += n

        try:
            _check_origin(request)
            ctype = request.headers.get("content-type", "application/octet-stream")
            media = ctype.split(";")[0].strip().lower()
            multipart = media == "multipart/form-data"
            if not (multipart or media.startswith("image/") or media in RAW_TYPES):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {media!r}: send the image as image/* or application/octet-stream, "
                    "or as multipart/form-data with a field named 'image'",
                )
            query = dict(request.query_params)
            if not multipart:
                parse_params(query, self.model)  # fail fast on bad parameters, before the body
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.limits.max_body:
                raise _too_large(self.limits.max_body, f"Content-Length {length}")
            # The body is read before a slot is taken, under its own deadline: slow uploads
            # never hold the places of requests that are ready to run.
            try:
                with anyio.fail_after(self.limits.body_timeout):
                    body = await read_body(request, self.limits.max_body, reserve)
            except TimeoutError:
                raise ApiError(
                    408, "request_timeout",
                    f"the body did not arrive within {self.limits.body_timeout:g} s (ALPHACUT_API_BODY_TIMEOUT)",
                    {"Connection": "close"},
                ) from None
            # Splitting multipart and reading the image header cost time in proportion to the
            # body (tens of seconds for a hostile 64 MiB one): a worker thread does it, so the
            # event loop keeps answering everyone else.
            body, params = await anyio.to_thread.run_sync(self._check_request, body, ctype, multipart, query)
            self._admit()
        except ApiError as e:
            return e.response()
        finally:
            self._unreserve(held)  # admitted: the body now counts under the places

        ticket = _Ticket()
        try:
            deadline = time.monotonic() + self.limits.timeout
            try:
                with anyio.fail_after(self.limits.timeout):
                    data, timings, extra = await anyio.to_thread.run_sync(
                        self._job, ticket, body, params, deadline, abandon_on_cancel=True, limiter=self._threads
                    )
            except BaseException as e:  # timeout, cancellation, or the job's own error
                with ticket.lock:
                    ticket.abandoned = True
                    if not ticket.begun:  # the job will never run (or will return at once)
                        self._leave()
                if isinstance(e, TimeoutError):
                    raise ApiError(504, "timeout", f"no result within {self.limits.timeout:g} s (ALPHACUT_API_TIMEOUT)") from None
                if isinstance(e, Exception):
                    raise _from_pipeline(e, params) from None
                raise
        except ApiError as e:
            return e.response()
        headers = {
            "Content-Disposition": f'inline; filename="{params.filename}"',
            "Cache-Control": "no-store",
            "X-Alphacut-Model": params.model,
            "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items()),
            **extra,
        }
        return Response(data, media_type=formats.get(params.format).mime, headers=headers)

    async def models(self, request: Request) -> Response:
        rows = await anyio.to_thread.run_sync(store.status)
        out = []
        for row in rows:
            row = {k: v for k, v in row.items() if k != "path"}
            row["available"] = bool(row["installed"] or row["embedded"])
            row["default"] = row["id"] == self.model
            out.append(row)
        if self.model not in CATALOG:  # a model file the server was started with
            out.append({"id": self.model, "title": Path(self.model).name, "size": None, "installed": True,
                        "embedded": False, "gated": False, "licence": "as supplied by the user",
                        "available": True, "default": True})
        return JSONResponse({"default": self.model, "models": out, "device": self._device_status()},
                            headers={"Cache-Control": "no-store"})

    def _device_status(self) -> dict:
        """The device asked for and, once the served model's session is loaded, the one that
        runs (after a fallback: the CPU, with the notice)."""
        from alphacut.stages import infer

        out = {"requested": self.device, "running": None, "provider": None, "notice": None}
        key = (str(self.model), self.device)
        remover = _removers.get(key)
        session = getattr(remover, "_session", None)
        if session is not None:
            out.update(running=session.device, provider=session.provider, notice=session.notice)
        else:
            choice = infer.choose_device(self.device)
            out.update(notice=choice.notice)
        return out

    async def openapi_json(self, request: Request) -> Response:
        from alphacut.serve.openapi import document

        return JSONResponse(document(self, PREFIX), headers={"Cache-Control": "no-cache"})

    async def docs_page(self, request: Request) -> Response:
        return _docs_file("index.html")

    async def docs_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("docs.js", "docs.css"):
            return error_response(404, "not_found", f"no such docs file {name!r}")
        return _docs_file(name)

    async def not_found(self, request: Request) -> Response:
        allowed = {f"{PREFIX}/remove": "POST", f"{PREFIX}/models": "GET, HEAD", f"{PREFIX}/openapi.json": "GET, HEAD"}
        path = request.url.path
        if path in allowed:
            return error_response(405, "method_not_allowed", f"{request.method} {path}: use {allowed[path]}", {"Allow": allowed[path]})
        return error_response(404, "not_found", f"no API route {request.method} {path}")

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/remove", self.remove, methods=["POST"]),
            Route(f"{PREFIX}/models", self.models, methods=["GET"]),
            Route(f"{PREFIX}/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/api/docs", self.docs_page, methods=["GET"]),
            Route("/api/docs/", lambda r: RedirectResponse("/api/docs"), methods=["GET"]),
            Route("/api/docs/{name}", self.docs_file, methods=["GET"]),
            Route(PREFIX + "/{rest:path}", _AnyMethod(self.not_found)),  # 404/405 as JSON, any method
        ]


class _AnyMethod:
    """An ASGI endpoint for every HTTP method (Starlette gives a plain function route GET only,
    and answers other methods with a plain-text 405 of its own)."""

    def __init__(self, handler):
        self.handler = handler

    async def __call__(self, scope, receive, send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


def _check_origin(request: Request) -> None:
    """Refuse cross-site browser requests (a page elsewhere posting to this loopback port)."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise ApiError(403, "cross_origin", "cross-site requests are refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        raise ApiError(403, "cross_origin", "requests from another origin are refused")


def _docs_file(name: str) -> Response:
    path = DOCS_DIR / name
    if not path.is_file():
        return error_response(404, "not_found", f"docs file {name} is not installed")
    media = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    return FileResponse(path, media_type=media[path.suffix], headers={"Cache-Control": "no-cache"})


def routes(model: str = DEFAULT_MODEL, limits: Limits | None = None, device: str = DEFAULT_DEVICE) -> list[BaseRoute]:
    """The API's routes, for ``server.api_routes``."""
    return Api(model, limits or Limits.from_env(), device=device).routes()

"""The OpenAPI 3.0.3 document of the local API (``GET /api/v1/openapi.json``).

Its parameters come from ``options.OPTIONS`` (type, default, range, choices, help) and its
media types from ``formats.FORMATS``, so the document cannot drift from what the API accepts;
routes, errors and limits are described here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alphacut import formats
from alphacut.options import BACKGROUND_FIELD, OPTIONS, Option
from alphacut.stages.infer import DEVICES

if TYPE_CHECKING:
    from alphacut.serve.api import Api

_TYPES = {"str": "string", "background": "string", "padding": "string", "ratio": "string", "bool": "boolean", "int": "integer", "float": "number"}


EXAMPLES = {"background": "#ffffff", "padding": "5%", "ratio": "1:1"}


def option_schema(o: Option) -> dict:
    """The JSON schema (with description) of one option's API parameter."""
    schema: dict = {"type": _TYPES[o.kind]}
    if o.choices is not None:
        schema["enum"] = list(o.allowed())
    if o.minimum is not None:
        schema["minimum"] = o.minimum
    if o.maximum is not None:
        schema["maximum"] = o.maximum
    default = o.default_value()
    if default is not None:
        schema["default"] = default
    if o.kind in EXAMPLES:
        schema["example"] = EXAMPLES[o.kind]
    schema["description"] = o.help
    return schema


_ERROR_CODES = {
    "400": "A parameter or the body is malformed (error: bad_parameter, bad_request) or the model is unknown (unknown_model).",
    "403": "A cross-site browser request (error: cross_origin). A Host header that is not loopback on a loopback bind gets a plain-text 403.",
    "405": "The method is not allowed on this path (error: method_not_allowed).",
    "408": "The body did not arrive within the body timeout (error: request_timeout).",
    "409": "The model is in the catalog but not installed here (error: model_not_installed).",
    "413": "The body is over the size limit, by Content-Length or while streaming (error: request_too_large).",
    "415": "The Content-Type is not image/*, application/octet-stream or multipart/form-data (error: unsupported_media_type).",
    "422": "The body is not a usable image: empty, corrupt, unsupported (bad_image), over the pixel limit read from its header (image_too_large), or cannot be encoded in the chosen format (cannot_encode; also a lossy AVIF quality so low that the result fails verification).",
    "503": "All workers and queue places are taken (error: busy), or the model cannot be loaded (model_unavailable). Retry after the Retry-After seconds.",
    "504": "No result within the per-request timeout (error: timeout).",
    "500": "An internal error (error: internal).",
}


def document(api: Api, prefix: str) -> dict:
    """The OpenAPI 3.0.3 document of ``api``'s routes under ``prefix``, with its limits in the text."""
    lim = api.limits
    error_ref = {"$ref": "#/components/schemas/Error"}

    def err(code: str, extra_headers: dict | None = None) -> dict:
        r = {"description": _ERROR_CODES[code], "content": {"application/json": {"schema": error_ref}}}
        if extra_headers:
            r["headers"] = extra_headers
        return r

    unauthorized = {
        "description": "The server runs with a token and the request did not carry it (plain text, from the server's guard).",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}
    param_props = {
        "model": {
            "type": "string",
            "description": "Catalog id of an installed (or embedded) model; see GET /api/v1/models.",
            "example": api.model,
        },
        **{o.api: option_schema(o) for o in OPTIONS if o.api},
    }
    parameters = [
        {"name": k, "in": "query", "required": False, "schema": {kk: vv for kk, vv in v.items() if kk not in ("description", "example")}, "description": v["description"]}
        for k, v in param_props.items()
    ]
    binary = {"type": "string", "format": "binary"}
    image_body = {"schema": binary}
    remove = {
        "operationId": "removeBackground",
        "summary": "Cut out the foreground of one image",
        "description": (
            "Send the image as the raw body (any image/* type or application/octet-stream) or as "
            "multipart/form-data with the file in the field `image`. Parameters go in the query "
            "string or, with multipart, also as form fields (a form field wins). The answer is the "
            "encoded cut-out (straight alpha, RGB untouched), already decoded again and checked. "
            f"Limits here: body {lim.max_body} bytes, {lim.pixel_limit} pixels, {lim.workers} running + "
            f"{lim.queue} waiting, {lim.body_timeout:g} s for the body to arrive, {lim.timeout:g} s per request "
            "from admission. The image stays in memory and is never logged or stored."
        ),
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "image/png": image_body,
                "image/jpeg": image_body,
                "image/webp": image_body,
                "application/octet-stream": image_body,
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {"image": binary, BACKGROUND_FIELD: {
                            **binary, "description": "Optional: a photo to put behind the subject (scaled to cover, "
                            "centred; instead of the background parameter); checked against the same pixel limit."},
                            **{k: {kk: vv for kk, vv in v.items() if kk != "example"} for k, v in param_props.items()}},
                    },
                    "encoding": {"image": {"contentType": "image/*, application/octet-stream"},
                                 BACKGROUND_FIELD: {"contentType": "image/*, application/octet-stream"}},
                },
            },
        },
        "responses": {
            "200": {
                "description": "The encoded image: RGBA (or RGB with background, grey with mask_only).",
                "headers": {
                    "Content-Disposition": {"description": 'inline; filename="cutout.<extension>" (or mask.<extension>)', "schema": {"type": "string"}},
                    "Server-Timing": {"description": "Time of each stage in milliseconds.", "schema": {"type": "string"}},
                    "X-Alphacut-Uncertain": {"description": "Share of the photo (0-1) still a large half-transparent region the model could not decide.", "schema": {"type": "string"}},
                    "X-Alphacut-Uncertain-Box": {"description": "With a notice: that region's bounds as fractions of the width and height, x0,y0,x1,y1.", "schema": {"type": "string"}},
                    "X-Alphacut-Device": {"description": "Where inference ran: cpu, cuda, dml or coreml (set by `serve --device`).", "schema": {"type": "string"}},
                    "X-Alphacut-Notice": {"description": "One line when the result needs a look (a large part stays uncertain; only the first frame of an animation was used).", "schema": {"type": "string"}},
                },
                "content": {t: {"schema": binary} for t in formats.media_types().values()},
            },
            "400": err("400"),
            "401": unauthorized,
            "403": err("403"),
            "405": err("405", {"Allow": {"description": "The allowed methods.", "schema": {"type": "string"}}}),
            "408": err("408"),
            "409": err("409"),
            "413": err("413"),
            "415": err("415"),
            "422": err("422"),
            "500": err("500"),
            "503": err("503", retry_after),
            "504": err("504"),
        },
    }
    model_schema = {
        "type": "object",
        "required": ["id", "title", "installed", "embedded", "available", "default"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "size": {"type": "integer", "nullable": True, "description": "Bytes of the model file."},
            "installed": {"type": "boolean", "description": "A verified copy is in the store."},
            "embedded": {"type": "boolean", "description": "Installs offline from a bundled package on first use."},
            "available": {"type": "boolean", "description": "Usable by /remove now (installed or embedded)."},
            "gated": {"type": "boolean"},
            "licence": {"type": "string"},
            "default": {"type": "boolean", "description": "The model used when no model parameter is given."},
        },
    }
    security = [{}, {"bearer": []}, {"tokenQuery": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "alphacut local API",
            "version": _version(),
            "description": (
                "Background removal on this machine. Loopback only unless the server was started "
                "with --token on another interface; then every call carries the token as "
                "`Authorization: Bearer <token>` or `?token=<token>`. Errors are JSON "
                '`{"error": <code>, "detail": <text>}`, except the plain-text 401/403 of the guard.'
            ),
            "license": {"name": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": "/"}],
        "paths": {
            f"{prefix}/remove": {"post": {**remove, "security": security}},
            f"{prefix}/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "The model catalog, with what is installed",
                    "security": security,
                    "responses": {
                        "200": {
                            "description": "Catalog models.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["default", "models"],
                                        "properties": {
                                            "default": {"type": "string"},
                                            "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                                            "device": {
                                                "type": "object",
                                                "description": "Where inference runs for /remove: the device `serve --device` asked for, and once the model is loaded the one that runs (a device not usable here falls back to the CPU, with a notice).",
                                                "properties": {
                                                    "requested": {"type": "string", "enum": list(DEVICES)},
                                                    "running": {"type": "string", "nullable": True},
                                                    "provider": {"type": "string", "nullable": True, "description": "ONNX Runtime execution provider."},
                                                    "notice": {"type": "string", "nullable": True},
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "401": unauthorized,
                    },
                }
            },
            f"{prefix}/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": security,
                    "responses": {
                        "200": {"description": "OpenAPI 3.0.3 document.", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "401": unauthorized,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {
                            "type": "string",
                            "description": "Machine-readable code.",
                            "enum": [
                                "bad_parameter", "bad_request", "unknown_model", "cross_origin",
                                "model_not_installed", "request_too_large", "unsupported_media_type",
                                "bad_image", "image_too_large", "cannot_encode", "busy",
                                "model_unavailable", "timeout", "request_timeout", "internal", "not_found", "method_not_allowed",
                            ],
                        },
                        "detail": {"type": "string", "description": "One line for a person."},
                    },
                },
                "Model": model_schema,
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The --token of `alphacut serve`."},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def _version() -> str:
    from alphacut import __version__

    return __version__

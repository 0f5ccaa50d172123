"""The browser app as a set of files: what it is made of, and a static-site build of it.

The app (``src/alphacut/web/``) is plain ES modules with no bundler. It needs three kinds of
files, and this module is the single list of them, shared by ``alphacut serve``
(``server.py``) and ``alphacut build-site``:

- the app's own files, served under ``app/<hash>/`` where ``<hash>`` covers their content and
  the vendor versions, so they can be cached as immutable;
- vendor files from pinned npm packages (ONNX Runtime Web, jSquash codecs, fflate), served
  under ``vendor/<package>@<version>/`` (versioned, so immutable), and only the files listed in
  ``VENDOR_FILES``: an installed wheel carries them in ``alphacut/serve/vendor/`` (copied from
  the locked packages at build time by ``setup.py``), a checkout reads its ``node_modules``;
- the model file from the model store, as content-addressed chunks of ``CHUNK_SIZE`` bytes
  under ``models/chunks/<sha256>`` (immutable; no file near the 25 MiB limit of common static
  hosts), listed in order with their SHA-256 and size in ``config.json``, so the page fetches
  them in parallel, verifies and caches each on its own, and resumes an interrupted download;
  the same chunks packed (byte planes + raw deflate, ``pack.py``: 176 MB → 77 MB for the
  default model) under ``models/packed/<sha256>``, which the page fetches first and unpacks.

``alphacut serve`` sends code and WASM gzip-compressed when the browser accepts it
(``gzipped``, computed once into the store's cache); a static host compresses on its own
(nginx.conf written here turns it on).

Every URL the app uses is relative, so a static build works under any path prefix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path

from alphacut import formats
from alphacut.errors import AlphacutError
from alphacut.models.catalog import DEFAULT_MODEL
from alphacut.serve import pack

WEB_DIR = Path(__file__).resolve().parent / "web"

#: npm package → files the app loads from it (relative to the package folder).
VENDOR_FILES: dict[str, tuple[str, ...]] = {
    "onnxruntime-web": (
        "dist/ort.wasm.min.mjs",
        "dist/ort-wasm-simd-threaded.mjs",
        "dist/ort-wasm-simd-threaded.wasm",
        "dist/ort.webgpu.min.mjs",
        "dist/ort-wasm-simd-threaded.asyncify.mjs",
        "dist/ort-wasm-simd-threaded.asyncify.wasm",
    ),
    "@jsquash/png": (
        "codec/pkg/squoosh_png.js",
        "codec/pkg/squoosh_png_bg.wasm",
    ),
    "@jsquash/webp": (
        "utils.js",
        "meta.js",
        "codec/dec/webp_dec.js",
        "codec/dec/webp_dec.wasm",
        "codec/enc/webp_enc_simd.js",
        "codec/enc/webp_enc_simd.wasm",
    ),
    "@jsquash/avif": (
        "utils.js",
        "meta.js",
        "codec/dec/avif_dec.js",
        "codec/dec/avif_dec.wasm",
        "codec/enc/avif_enc.js",
        "codec/enc/avif_enc.wasm",
    ),
    "@jsquash/jpeg": (
        "meta.js",
        "codec/enc/mozjpeg_enc.js",
        "codec/enc/mozjpeg_enc.wasm",
    ),
    "fflate": ("esm/browser.js",),
}

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    **{ext: f.mime for f in formats.FORMATS.values() for ext in f.extensions},
}

IMMUTABLE = "public, max-age=31536000, immutable"

#: Bytes per model chunk (the data package itself uses 4 MiB): small enough for any static
#: host and for one failed request to cost little, large enough to keep requests few.
CHUNK_SIZE = 4 << 20
CHUNK_DIR = "models/chunks/"

#: Vendor files above this size (ONNX Runtime's WebGPU build, 27 MB) exist only as parts
#: ``<file>.part<N>`` of at most this size, which the app fetches and joins (infer.js).
SPLIT_SIZE = 16 << 20
NO_CACHE = "no-cache"

#: Content Security Policy: nothing but this origin, no inline script, WASM allowed.
CSP = "; ".join(  # noqa: FLY002
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "img-src 'self' blob: data:",
        "style-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

#: Headers on every response (server) / every path (static hosts).
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def mime_type(path: str | Path) -> str:
    return MIME_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


#: The vendor packages' folders inside an installed wheel (written by setup.py's build hook).
PACKAGED_VENDOR = Path(__file__).resolve().parent / "vendor"


def vendor_root() -> Path:
    """The folder holding ``<package>/package.json`` and the listed files of each vendor package:
    the copy built into the wheel, else the checkout's ``node_modules``."""
    here = Path(__file__).resolve()
    for root in (PACKAGED_VENDOR, *(d / "node_modules" for d in here.parents)):
        if all((root / pkg / "package.json").is_file() for pkg in VENDOR_FILES):
            return root
    raise AlphacutError(
        "the browser app's vendor files (ONNX Runtime Web, jSquash, fflate) are missing: install "
        "alphacut from a wheel or sdist, or run `npm ci --ignore-scripts` in the alphacut checkout"
    )


@lru_cache(maxsize=4)
def _vendor_versions(node_modules: Path) -> dict[str, str]:
    versions = {}
    for pkg in VENDOR_FILES:
        meta = node_modules / pkg / "package.json"
        try:
            versions[pkg] = json.loads(meta.read_text())["version"]
        except (OSError, ValueError, KeyError):
            raise AlphacutError(
                f"the npm package {pkg} is not in {node_modules}; run `npm ci --ignore-scripts` "
                "in the alphacut checkout"
            ) from None
    return versions


def vendor_versions(node_modules: Path | None = None) -> dict[str, str]:
    return _vendor_versions(node_modules or vendor_root())


def vendor_prefix(pkg: str, version: str) -> str:
    return f"vendor/{pkg}@{version}/"


def web_files() -> list[Path]:
    """The app's own files (relative to WEB_DIR), except the index and service worker templates."""
    return sorted(
        p.relative_to(WEB_DIR)
        for p in WEB_DIR.rglob("*")
        if p.is_file() and p.name not in ("index.html", "sw.js") and "__pycache__" not in p.parts
    )


def asset_hash(node_modules: Path | None = None) -> str:
    """Short hash over the app's files and the vendor versions: the app/ cache-busting key."""
    h = hashlib.sha256()
    for rel in [*web_files(), Path("sw.js")]:
        h.update(str(rel).encode() + b"\0" + (WEB_DIR / rel).read_bytes() + b"\0")
    h.update(json.dumps(vendor_versions(node_modules), sort_keys=True).encode())
    return h.hexdigest()[:12]


def vendor_parts(node_modules: Path | None = None) -> dict[str, dict[str, list[int]]]:
    """package → {file: sizes of its parts} for the vendor files served in parts."""
    root = node_modules or vendor_root()
    out: dict[str, dict[str, list[int]]] = {}
    for pkg, rels in VENDOR_FILES.items():
        for rel in rels:
            size = (root / pkg / rel).stat().st_size
            if size > SPLIT_SIZE:
                full, rest = divmod(size, SPLIT_SIZE)
                out.setdefault(pkg, {})[rel] = [SPLIT_SIZE] * full + ([rest] if rest else [])
    return out


#: File types sent gzip-compressed to a browser that accepts it: the app's code, ONNX Runtime's
#: and the codecs' WASM shrink to about a quarter (20 MB of them to 5.6 MB at level 9).
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".json", ".wasm", ".svg", ".html", ".webmanifest"})


def compressible(path: str | Path) -> bool:
    return Path(path).suffix.lower() in COMPRESSIBLE


#: A compressed file not served for this long is removed from ``<store>/web-gzip/`` the next
#: time a new one is written there (an upgrade's vendor files replace the old ones: ~6 MB each).
GZIP_KEEP_S = 30 * 86400


def gzipped(path: Path, part: int | None = None) -> bytes:
    """gzip (level 9) of a file, or of one of its ``SPLIT_SIZE`` parts, computed once: kept in
    memory and in the store's cache folder (``<store>/web-gzip/<SHA-256 of the content>.gz``,
    written atomically), so neither a request nor a later ``serve`` start pays for it again.
    A cached file's time is renewed when it is read; one unread for ``GZIP_KEEP_S`` is swept
    out when another is written."""
    st = path.stat()
    return _gzipped(str(path), part, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=128)
def _gzipped(path: str, part: int | None, size: int, mtime_ns: int) -> bytes:
    import gzip
    import os
    import tempfile

    from alphacut.models import store

    data = read_part(Path(path), part) if part is not None else Path(path).read_bytes()
    cached = store.home() / "web-gzip" / f"{hashlib.sha256(data).hexdigest()}.gz"
    try:
        body = cached.read_bytes()
        if gzip.decompress(body) == data:
            try:
                os.utime(cached)  # in use: not swept
            except OSError:
                pass
            return body
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    body = gzip.compress(data, 9, mtime=0)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=cached.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, cached)
    except OSError:
        return body  # a read-only store: compressed again by the next process
    _sweep_gzipped(cached.parent)
    return body


def _sweep_gzipped(folder: Path) -> None:
    """Remove the compressed files (and stray temporaries) not used for ``GZIP_KEEP_S``."""
    import time

    cutoff = time.time() - GZIP_KEEP_S
    for old in list(folder.glob("*.gz")) + list(folder.glob(".tmp-*")):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass  # gone already, or another process's: left as it is


def read_part(path: Path, index: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(index * SPLIT_SIZE)
        return f.read(SPLIT_SIZE)


def vendor_module(node_modules: Path | None = None) -> str:
    """``app/<hash>/vendor.js``: where each vendor package lives, relative to the app folder,
    and which of its files come in parts."""
    lines = ["// Generated by alphacut.serve.site: versioned vendor folders, relative to this module."]
    for pkg, ver in vendor_versions(node_modules).items():
        lines.append(f"export const {_js_name(pkg)} = new URL('../../{vendor_prefix(pkg, ver)}', import.meta.url).href;")
    parts = {_js_name(pkg): files for pkg, files in vendor_parts(node_modules).items()}
    lines.append(f"export const PARTS = {json.dumps(parts, sort_keys=True)};")
    return "\n".join(lines) + "\n"


def _js_name(pkg: str) -> str:
    return {"onnxruntime-web": "ORT", "@jsquash/png": "PNG", "@jsquash/webp": "WEBP",
            "@jsquash/avif": "AVIF", "@jsquash/jpeg": "JPEG", "fflate": "FFLATE"}[pkg]


def service_worker(app_hash: str, node_modules: Path | None = None) -> bytes:
    """``sw.js`` at the site's root: keeps the app's files so it loads and works offline after
    one visit (reload included). Paths are relative to its own folder, so a site under a
    prefix works too. Files served in parts (WebGPU's runtime) are kept on first use rather
    than downloaded up front. The model is cached by the page itself (``store.js``)."""
    files = ["./", "config.json", f"app/{app_hash}/vendor.js", *(f"app/{app_hash}/{rel.as_posix()}" for rel in web_files())]
    split = vendor_parts(node_modules)
    for pkg, ver in vendor_versions(node_modules).items():
        files += [vendor_prefix(pkg, ver) + rel for rel in VENDOR_FILES[pkg] if rel not in split.get(pkg, {})]
    return (WEB_DIR / "sw.js").read_text().replace("__VERSION__", app_hash).replace(
        "__PRECACHE__", json.dumps(files, indent=1)).encode()


def render_index(app_hash: str) -> bytes:
    return (WEB_DIR / "index.html").read_text().replace("__APP__", f"app/{app_hash}").encode()


def model_config(model: str = DEFAULT_MODEL) -> tuple[dict, Path]:
    """What the page needs to fetch, verify and run the model, and the model file's path."""
    from alphacut.models import store

    spec, path = store.resolve(model)
    f = spec.main_file
    sha = f.sha256 or _sha256_cached(str(path), path.stat().st_size, path.stat().st_mtime_ns)
    chunks = model_chunks(path)
    packed = model_packed(path, sha)
    cfg = {
        "model": {
            "id": spec.id,
            "title": spec.title,
            "sha256": sha,
            "size": path.stat().st_size,
            "chunk_base": CHUNK_DIR,
            "chunks": [{"sha256": h, "size": n, **({"packed": packed.sizes[h]} if packed and h in packed.sizes else {})}
                       for h, n in chunks],
            # chunks with a "packed" size are fetched from here in this form (serve/pack.py)
            **({"packed_base": pack.PACKED_DIR, "packing": pack.FORMAT} if packed else {}),
            "input_size": list(spec.input_size),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "output": spec.output,
            "activation": spec.activation,
            "normalize": spec.normalize,
            "licence": spec.licence,
            # fp16 graphs (IS-Net's embedded weights) compute in f16 on WebGPU: the adapter
            # must offer shader-f16, or the page skips WebGPU and says why.
            "webgpu_needs_f16": "fp16" in f.name,
        },
        # the output formats the page offers, from the one table (alphacut.formats)
        "formats": formats.browser_config(),
    }
    return cfg, path


def model_chunks(path: Path) -> tuple[tuple[str, int], ...]:
    """(SHA-256, size) of each ``CHUNK_SIZE`` piece of the model file, in order."""
    st = path.stat()
    return _chunks_cached(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _chunks_cached(path: str, size: int, mtime_ns: int) -> tuple[tuple[str, int], ...]:
    out = []
    with open(path, "rb") as f:
        while block := f.read(CHUNK_SIZE):
            out.append((hashlib.sha256(block).hexdigest(), len(block)))
    return tuple(out)


def model_packed(path: Path, sha256: str) -> pack.Packed | None:
    """The model file's packed chunks (computed once, then read from the store's cache)."""
    st = path.stat()
    return _packed_cached(str(path), st.st_size, st.st_mtime_ns, sha256)


@lru_cache(maxsize=8)
def _packed_cached(path: str, size: int, mtime_ns: int, sha256: str) -> pack.Packed | None:
    return pack.packed_chunks(Path(path), sha256, model_chunks(Path(path)), read_chunk)


def read_chunk(path: Path, index: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(index * CHUNK_SIZE)
        return f.read(CHUNK_SIZE)


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    from alphacut.models import hashing

    return hashing.sha256_file(Path(path))


def config_bytes(cfg: dict) -> bytes:
    from alphacut import __version__

    return json.dumps({"version": __version__, **cfg}, indent=1).encode()


# ---- static site -------------------------------------------------------------------------


def _header_rules(app_hash: str) -> list[tuple[str, dict[str, str]]]:
    """(path pattern, headers) pairs, most general first."""
    return [
        ("/*", dict(SECURITY_HEADERS)),
        ("/app/*", {"Cache-Control": IMMUTABLE}),
        ("/vendor/*", {"Cache-Control": IMMUTABLE}),
        ("/", {"Cache-Control": NO_CACHE}),
        ("/index.html", {"Cache-Control": NO_CACHE}),
        ("/config.json", {"Cache-Control": NO_CACHE}),
        ("/models/chunks/*", {"Cache-Control": IMMUTABLE}),
        ("/models/packed/*", {"Cache-Control": IMMUTABLE}),
        ("/sw.js", {"Cache-Control": NO_CACHE}),
    ]


def _netlify_headers(rules) -> str:
    out = ["# Netlify and Cloudflare Pages header rules (written by alphacut build-site)"]
    for pattern, headers in rules:
        out.append(pattern)
        out.extend(f"  {k}: {v}" for k, v in headers.items())
    return "\n".join(out) + "\n"


def _firebase(rules) -> dict:
    conv = []
    for pattern, headers in rules:
        glob = "**" if pattern == "/*" else pattern.lstrip("/").replace("*", "**") or "index.html"
        conv.append({"source": glob, "headers": [{"key": k, "value": v} for k, v in headers.items()]})
    conv.append({"source": "**/*.wasm", "headers": [{"key": "Content-Type", "value": "application/wasm"}]})
    return {"hosting": {"public": ".", "ignore": ["firebase.json", "vercel.json", "nginx.conf", "_headers"], "headers": conv}}


def _vercel(rules) -> dict:
    conv = []
    for pattern, headers in rules:
        src = "/(.*)" if pattern == "/*" else pattern.replace("*", "(.*)")
        conv.append({"source": src, "headers": [{"key": k, "value": v} for k, v in headers.items()]})
    return {"headers": conv}


def _nginx(rules) -> str:
    sec = "".join(f'    add_header {k} "{v}" always;\n' for k, v in SECURITY_HEADERS.items())
    return (
        "# nginx: include inside the server { } block that serves this folder as its root.\n"
        "# add_header in a location replaces the server-level ones, so each location repeats them.\n"
        "types {\n    text/html html;\n    text/javascript js mjs;\n    text/css css;\n"
        "    application/json json;\n    application/wasm wasm;\n    application/octet-stream onnx;\n"
        "    image/svg+xml svg;\n}\n"
        "# The app's code and WASM compress to about a quarter; the model's packed chunks are\n"
        "# deflated already (application/octet-stream is not listed).\n"
        "gzip on;\ngzip_comp_level 9;\ngzip_min_length 1024;\n"
        "gzip_types text/javascript text/css application/json application/manifest+json application/wasm image/svg+xml;\n"
        "location ~ ^/(app|vendor|models/chunks|models/packed)/ {\n" + sec + f'    add_header Cache-Control "{IMMUTABLE}" always;\n}}\n'
        "location / {\n" + sec + f'    add_header Cache-Control "{NO_CACHE}" always;\n'
        "    try_files $uri $uri/ =404;\n}\n"
    )


def build_site(out_dir: Path, model: str = DEFAULT_MODEL) -> None:
    """Write the app, its vendor files, the model and header rules into ``out_dir``."""
    out_dir = Path(out_dir)
    node_modules = vendor_root()
    cfg, model_path = model_config(model)
    app_hash = asset_hash(node_modules)
    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("app", "vendor"):
        if (out_dir / sub).exists():
            shutil.rmtree(out_dir / sub)
    (out_dir / "index.html").write_bytes(render_index(app_hash))
    (out_dir / "config.json").write_bytes(config_bytes(cfg))
    (out_dir / "sw.js").write_bytes(service_worker(app_hash, node_modules))
    app = out_dir / "app" / app_hash
    for rel in web_files():
        dst = app / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(WEB_DIR / rel, dst)
    (app / "vendor.js").write_text(vendor_module(node_modules))
    split = vendor_parts(node_modules)
    for pkg, ver in vendor_versions(node_modules).items():
        for rel in VENDOR_FILES[pkg]:
            dst = out_dir / vendor_prefix(pkg, ver) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if rel in split.get(pkg, {}):
                for i in range(len(split[pkg][rel])):
                    dst.with_name(f"{dst.name}.part{i}").write_bytes(read_part(node_modules / pkg / rel, i))
            else:
                shutil.copyfile(node_modules / pkg / rel, dst)
    chunk_dir = out_dir / CHUNK_DIR
    if (out_dir / "models").exists():
        shutil.rmtree(out_dir / "models")  # earlier builds' chunks or whole model files
    chunk_dir.mkdir(parents=True)
    for i, c in enumerate(cfg["model"]["chunks"]):
        (chunk_dir / c["sha256"]).write_bytes(read_chunk(model_path, i))
    # The packed chunks the page fetches first; the plain ones stay for a browser without
    # DecompressionStream('deflate-raw') and for a packed chunk that fails its check.
    packed = model_packed(model_path, cfg["model"]["sha256"])
    if packed is not None:
        (out_dir / pack.PACKED_DIR).mkdir(parents=True)
        for sha in packed.sizes:
            shutil.copyfile(packed.path(sha), out_dir / pack.PACKED_DIR / sha)
    rules = _header_rules(app_hash)
    (out_dir / "_headers").write_text(_netlify_headers(rules))
    (out_dir / "firebase.json").write_text(json.dumps(_firebase(rules), indent=1) + "\n")
    (out_dir / "vercel.json").write_text(json.dumps(_vercel(rules), indent=1) + "\n")
    (out_dir / "nginx.conf").write_text(_nginx(rules))

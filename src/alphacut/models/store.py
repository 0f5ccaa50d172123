"""The model store: installs, verifies and locates model files under ``$ALPHACUT_HOME``.

The embedded IS-Net builds come as content-addressed chunks of img.ly's data package: read from
a local copy of the npm package when there is one (offline), otherwise downloaded from the
package's public CDN (or ``$ALPHACUT_MODEL_MIRROR``), each chunk checked against the SHA-256
pinned in the catalog before it is used. ``ALPHACUT_OFFLINE=1`` turns every download into an
error that says how to install by hand.

Nothing is ever taken for a model unless its SHA-256 matched: files are assembled or
downloaded into a temporary name beside the target, verified, then renamed into place, all
under a per-model file lock so two processes installing at once end with one good file. A
``<file>.verified`` stamp (size, mtime, hash) lets later loads skip re-hashing while still
noticing a file that was truncated or replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from alphacut.errors import DownloadError, ModelError
from alphacut.models.catalog import (
    CATALOG,
    IMGLY_CDN,
    IMGLY_CHUNKS,
    IMGLY_DATA_PACKAGE,
    IMGLY_DATA_VERSION,
    ModelFile,
    ModelSpec,
    get_spec,
    spec_from_file,
)
from alphacut.models.hashing import sha256_file

COPY_BLOCK = 4 << 20
Progress = Callable[[int, int | None], None]  # (bytes done, total or None)
Announce = Callable[[str], None]  # one line saying what is fetched, how big, from where, to where
CHUNK_WORKERS = 4  # chunks downloaded at once


def home() -> Path:
    """Root of the model store: ``$ALPHACUT_HOME`` or the user cache directory."""
    env = os.environ.get("ALPHACUT_HOME")
    return Path(env) if env else Path(user_cache_dir("alphacut"))


def models_dir() -> Path:
    return home() / "models"


def find_data_package(required: bool = True) -> Path | None:
    """Locate a local copy of the npm data package that carries the IS-Net chunks.

    Looks at ``$ALPHACUT_DATA_PACKAGE`` first, then ``node_modules`` in the current
    directory, the source checkout, and their parents. ``None`` (or an error when
    ``required``) if there is none: the chunks are then downloaded.
    """
    env = os.environ.get("ALPHACUT_DATA_PACKAGE")
    candidates = [Path(env)] if env else []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            candidates.append(d / "node_modules" / IMGLY_DATA_PACKAGE)
    for c in candidates:
        if (c / "dist" / "resources.json").is_file():
            return c
    if not required:
        return None
    raise ModelError(
        f"the npm package {IMGLY_DATA_PACKAGE} is not installed; run `npm ci` in the alphacut "
        "checkout, or set ALPHACUT_DATA_PACKAGE to its folder"
    )


def npm_dist(folder: Path) -> Path:
    """The ``dist/`` folder of the data package given as the package, its dist or node_modules."""
    folder = Path(folder)
    firsts = [chunks[0][0] for chunks in IMGLY_CHUNKS.values()]
    for d in (folder, folder / "dist", folder / IMGLY_DATA_PACKAGE / "dist",
              folder / "node_modules" / IMGLY_DATA_PACKAGE / "dist"):
        if (d / "resources.json").is_file() or any((d / h).is_file() for h in firsts):
            return d
    raise ModelError(
        f"{folder}: no chunks of {IMGLY_DATA_PACKAGE}@{IMGLY_DATA_VERSION} found (give the "
        "package folder, its dist/ folder, or the node_modules holding it)"
    )


def mirror() -> str:
    """Base URL under which the data package's ``dist/`` files are found by their hash names."""
    base = os.environ.get("ALPHACUT_MODEL_MIRROR") or IMGLY_CDN
    return base if base.endswith("/") else base + "/"


def offline() -> bool:
    return os.environ.get("ALPHACUT_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _offline_error(spec: ModelSpec, f: ModelFile, url: str) -> ModelError:
    if f.source.startswith("npm:"):
        how = (
            f"fetch the files of {IMGLY_DATA_PACKAGE}@{IMGLY_DATA_VERSION}'s dist/ on a machine with "
            f"a network (`npm pack {IMGLY_DATA_PACKAGE}@{IMGLY_DATA_VERSION}`, or the chunks under "
            f"{url}), copy them here and run `alphacut models install {spec.id} --from-npm DIR`"
        )
    else:
        how = (
            f"download {url} on a machine with a network and run "
            f"`alphacut models install {spec.id} --file PATH`"
        )
    return ModelError(f"ALPHACUT_OFFLINE is set, so {spec.id} is not downloaded; to install it by hand, {how}")


def human_size(n: int | None) -> str:
    return "? bytes" if n is None else f"{n / 1e6:.1f} MB"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def _stamp_ok(path: Path, f: ModelFile) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and (f.sha256 is None or stamp.get("sha256") == f.sha256)
    )


def file_path(spec: ModelSpec, f: ModelFile | None = None) -> Path:
    f = f or spec.main_file
    return models_dir() / spec.id / f.name


def verify_file(path: Path, f: ModelFile, *, deep: bool = False) -> bool:
    """True when ``path`` holds exactly the bytes of ``f`` (hash checked, or stamp trusted)."""
    if not path.is_file():
        return False
    if f.size is not None and path.stat().st_size != f.size:
        return False
    if not deep and _stamp_ok(path, f):
        return True
    digest = sha256_file(path)
    if f.sha256 is not None and digest != f.sha256:
        return False
    _write_stamp(path, digest)
    return True


def _chunks(f: ModelFile) -> tuple[tuple[str, int], ...]:
    key = f.source.removeprefix("npm:")
    try:
        return IMGLY_CHUNKS[key]
    except KeyError:
        raise ModelError(f"{IMGLY_DATA_PACKAGE} has no resource {key!r} in the catalog") from None


def _assemble(f: ModelFile, tmp: Path, read: Callable[[str, int], bytes], progress: Progress | None) -> None:
    """Concatenate ``f``'s chunks (``read(hash, size)`` gives each one) into ``tmp``, checking each."""
    chunks = _chunks(f)
    total = sum(n for _, n in chunks)
    done = 0
    with open(tmp, "wb") as out:
        for digest, n in chunks:
            data = read(digest, n)
            if len(data) != n or hashlib.sha256(data).hexdigest() != digest:
                raise ModelError(f"{digest}: chunk is corrupt (its SHA-256 or size is not the catalog's)")
            out.write(data)
            done += n
            if progress:
                progress(done, total)
        out.flush()
        os.fsync(out.fileno())


def _assemble_from_npm(f: ModelFile, tmp: Path, dist: Path, progress: Progress | None) -> None:
    """Assemble ``f`` from the chunk files of a local copy of the data package's ``dist/``."""

    def read(digest: str, n: int) -> bytes:
        try:
            return (dist / digest).read_bytes()
        except OSError as e:
            raise ModelError(f"{dist / digest}: cannot read model chunk: {e.strerror or e}") from None

    _assemble(f, tmp, read, progress)


def _download_chunks(f: ModelFile, tmp: Path, base: str, progress: Progress | None) -> None:
    """Download ``f``'s chunks from ``base`` (resumable, each verified), then assemble them.

    Chunks land in ``<model dir>/.chunks/<hash>``, so an interrupted install resumes where it
    stopped; a chunk whose bytes are wrong is fetched once more from scratch, then it fails.
    The chunk folder is removed once the model is assembled.
    """
    from concurrent.futures import ThreadPoolExecutor

    from alphacut.models import download

    chunks = _chunks(f)
    total = sum(n for _, n in chunks)
    cache = tmp.parent / ".chunks"
    cache.mkdir(exist_ok=True)
    lock = threading.Lock()
    got: dict[str, int] = {}

    def report(digest: str, done: int) -> None:
        if progress:
            with lock:
                got[digest] = done
                progress(sum(got.values()), total)

    def fetch(item: tuple[str, int]) -> None:
        digest, n = item
        dest = cache / digest
        if dest.is_file() and dest.stat().st_size == n and sha256_file(dest) == digest:
            report(digest, n)
            return
        part = cache / (digest + ".part")
        for attempt in (1, 2):
            try:
                download.download(base + digest, part, sha256=digest, size=n,
                                  progress=lambda d, _t: report(digest, d))
                break
            except DownloadError as e:
                report(digest, 0)
                if attempt == 2 or "SHA-256" not in str(e):
                    raise
        os.replace(part, dest)

    with ThreadPoolExecutor(CHUNK_WORKERS) as pool:
        for fut in [pool.submit(fetch, c) for c in chunks]:
            fut.result()
    _assemble(f, tmp, lambda digest, n: (cache / digest).read_bytes(), None)
    shutil.rmtree(cache, ignore_errors=True)


def _fetch(f: ModelFile, tmp: Path, progress: Progress | None, token: str | None) -> str:
    """Download ``f`` into ``tmp``; returns its SHA-256 (already compared with the catalog's)."""
    from alphacut.models import download  # imported lazily: only remote models need it

    return download.download(f.source, tmp, sha256=f.sha256, size=f.size, token=token, progress=progress)


def plan(model: str | ModelSpec, *, from_npm: Path | None = None) -> str:
    """One line: what installing ``model`` fetches, how big, from where, and where it goes."""
    spec = get_spec(model) if isinstance(model, str) else model
    f = spec.main_file
    dest = file_path(spec, f)
    if f.source.startswith("npm:"):
        chunks = _chunks(f)
        size = sum(n for _, n in chunks)
        local = npm_dist(from_npm) if from_npm else find_data_package(required=False)
        if local is not None:
            where = local if from_npm else local / "dist"
            return f"assembling {spec.id} from {len(chunks)} chunks ({human_size(size)}) in {where} into {dest}"
        return (f"downloading {spec.id}: {len(chunks)} chunks, {human_size(size)}, from {mirror()} "
                f"into {dest}")
    return f"downloading {spec.id}: {human_size(f.size)} from {f.source} into {dest}"


def install(
    model: str | ModelSpec,
    *,
    force: bool = False,
    progress: Progress | None = None,
    token: str | None = None,
    source_file: Path | None = None,
    from_npm: Path | None = None,
    announce: Announce | None = None,
) -> Path:
    """Make ``model`` present and verified in the store; return the path of its main file.

    ``source_file`` installs a file the user already has (gated models) after checking its
    hash; ``from_npm`` assembles an embedded model from a copy of the data package (its folder,
    ``dist/`` or ``node_modules``). Without either, an embedded model comes from a local copy of
    the package if one is found, else from the CDN. ``announce`` gets one line before anything
    is fetched. Idempotent and safe to run from several processes at once.
    """
    spec = get_spec(model) if isinstance(model, str) else model
    paths = []
    for f in spec.files:
        path = file_path(spec, f)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not force and verify_file(path, f):
                paths.append(path)
                continue
            tmp = path.with_name(path.name + ".part")
            embedded = source_file is None and f.source.startswith("npm:")
            dist = None
            if embedded:
                dist = npm_dist(from_npm) if from_npm else find_data_package(required=False)
                dist = dist if from_npm or dist is None else dist / "dist"
            local = source_file is not None or dist is not None
            if not local:
                url = mirror() if embedded else f.source
                if offline():
                    raise _offline_error(spec, f, url)
            if announce and source_file is None:
                announce(plan(spec, from_npm=from_npm))
            try:
                if local or embedded:
                    tmp.unlink(missing_ok=True)
                    if source_file is not None:
                        _copy_checked(Path(source_file), tmp, progress)
                    elif dist is not None:
                        _assemble_from_npm(f, tmp, dist, progress)
                    else:
                        _download_chunks(f, tmp, mirror(), progress)  # chunks stay for resuming
                    if embedded and f.derive:  # a file the user hands in is taken as it is
                        _derive(spec, f, tmp)
                    digest = sha256_file(tmp)
                else:
                    token = token or os.environ.get("HF_TOKEN") or None
                    if spec.gated and token is None:
                        raise ModelError(
                            f"{spec.id} is gated: accept its licence on its hub page, then "
                            "pass --token (or set HF_TOKEN), or install a file you have "
                            f"with `alphacut models install {spec.id} --file PATH`"
                        )
                    digest = _fetch(f, tmp, progress, token)  # a partial download stays for resuming
                if f.sha256 is not None and digest != f.sha256:
                    tmp.unlink(missing_ok=True)
                    raise ModelError(
                        f"{spec.id}: {f.name} has SHA-256 {digest}, expected {f.sha256}; not installed"
                    )
                os.replace(tmp, path)
                _write_stamp(path, digest)
            except OSError as e:
                if local or embedded:
                    tmp.unlink(missing_ok=True)
                raise ModelError(f"{spec.id}: cannot install {f.name}: {e.strerror or e}") from None
            except BaseException:
                if local or embedded:
                    tmp.unlink(missing_ok=True)
                raise
            paths.append(path)
    return paths[0]


def _derive(spec: ModelSpec, f: ModelFile, tmp: Path) -> None:
    """Replace ``tmp`` (the verified source) by its derived form, e.g. the widened fp32 graph
    (which keeps only the output ``spec`` reads)."""
    if f.derive != "fp32":
        raise ModelError(f"{f.name}: unknown derivation {f.derive!r}")
    from alphacut.models.widen import widen_fp16_graph

    wide = tmp.with_name(tmp.name + ".wide")
    try:
        widen_fp16_graph(tmp, wide, spec.output)
        os.replace(wide, tmp)
    finally:
        wide.unlink(missing_ok=True)


def _copy_checked(src: Path, tmp: Path, progress: Progress | None) -> None:
    if not src.is_file():
        raise ModelError(f"{src}: file not found")
    total = src.stat().st_size
    done = 0
    with open(src, "rb") as i, open(tmp, "wb") as o:
        while block := i.read(COPY_BLOCK):
            o.write(block)
            done += len(block)
            if progress:
                progress(done, total)
        o.flush()
        os.fsync(o.fileno())


def resolve(model: str | os.PathLike | None, *, auto_install: bool = True) -> tuple[ModelSpec, Path]:
    """Spec and verified file path for a catalog id or a path to an ``.onnx`` file.

    Embedded models install themselves on first use (from a local copy of the data package, or
    downloaded from its CDN); remote models must be installed first with ``alphacut models
    install``.
    """
    from alphacut.models.catalog import DEFAULT_MODEL

    model = model or DEFAULT_MODEL
    if str(model).endswith(".onnx") or os.sep in str(model):
        spec = spec_from_file(Path(model))
        return spec, Path(model)
    spec = get_spec(str(model))
    path = file_path(spec)
    if verify_file(path, spec.main_file):
        return spec, path
    if path.exists():
        # Present but wrong: a corrupt store entry is replaced, never used.
        path.unlink()
    if spec.embedded and auto_install:
        return spec, install(spec)
    raise ModelError(
        f"model {spec.id} is not installed; run `alphacut models install {spec.id}`"
    )


def status() -> list[dict]:
    """One row per catalog model: id, size, licence, and whether a verified copy is installed."""
    rows = []
    for spec in CATALOG.values():
        path = file_path(spec)
        rows.append(
            {
                "id": spec.id,
                "title": spec.title,
                "size": spec.main_file.size,
                "installed": path.is_file() and _stamp_ok(path, spec.main_file),
                "embedded": spec.embedded,
                "gated": spec.gated,
                "licence": spec.licence,
                "path": str(path),
            }
        )
    return rows

"""The model store: installs, verifies and locates model files under ``$ALPHACUT_HOME``.

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
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from alphacut.models.catalog import (
    CATALOG,
    IMGLY_DATA_PACKAGE,
    ModelFile,
    ModelSpec,
    get_spec,
    spec_from_file,
)
from alphacut.errors import ModelError

HASH_BLOCK = 1 << 20
Progress = Callable[[int, int | None], None]  # (bytes done, total or None)


def home() -> Path:
    """Root of the model store: ``$ALPHACUT_HOME`` or the user cache directory."""
    env = os.environ.get("ALPHACUT_HOME")
    return Path(env) if env else Path(user_cache_dir("alphacut"))


def models_dir() -> Path:
    return home() / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def find_data_package() -> Path:
    """Locate the installed npm data package that carries the embedded IS-Net chunks.

    Looks at ``$ALPHACUT_DATA_PACKAGE`` first, then ``node_modules`` in the current
    directory, the source checkout, and their parents.
    """
    env = os.environ.get("ALPHACUT_DATA_PACKAGE")
    candidates = [Path(env)] if env else []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            candidates.append(d / "node_modules" / IMGLY_DATA_PACKAGE)
    for c in candidates:
        if (c / "dist" / "resources.json").is_file():
            return c
    raise ModelError(
        f"the npm package {IMGLY_DATA_PACKAGE} is not installed; run `make setup` "
        "(or `npm ci`) in the alphacut checkout, or set ALPHACUT_DATA_PACKAGE to its folder"
    )


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


def _assemble_from_npm(f: ModelFile, tmp: Path, progress: Progress | None) -> None:
    """Concatenate the package's content-addressed chunks into ``tmp``, checking each one."""
    pkg = find_data_package()
    key = f.source.removeprefix("npm:")
    resources = json.loads((pkg / "dist" / "resources.json").read_text())
    if key not in resources:
        raise ModelError(f"{IMGLY_DATA_PACKAGE} has no resource {key!r}")
    entry = resources[key]
    done = 0
    with open(tmp, "wb") as out:
        for chunk in entry["chunks"]:
            chunk_path = pkg / "dist" / chunk["hash"]
            try:
                data = chunk_path.read_bytes()
            except OSError as e:
                raise ModelError(f"{chunk_path}: cannot read model chunk: {e}") from None
            if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise ModelError(f"{chunk_path}: chunk is corrupt (SHA-256 does not match its name)")
            start, end = chunk["offsets"]
            if len(data) != end - start or start != done:
                raise ModelError(f"{chunk_path}: chunk has the wrong length or offset")
            out.write(data)
            done += len(data)
            if progress:
                progress(done, entry["size"])
        out.flush()
        os.fsync(out.fileno())
    if done != entry["size"]:
        raise ModelError(f"{key}: assembled {done} bytes, expected {entry['size']}")


def _fetch(f: ModelFile, tmp: Path, progress: Progress | None, token: str | None) -> str:
    """Download ``f`` into ``tmp``; returns its SHA-256 (already compared with the catalog's)."""
    from alphacut.models import download  # imported lazily: only remote models need it

    return download.download(f.source, tmp, sha256=f.sha256, size=f.size, token=token, progress=progress)


def install(
    model: str | ModelSpec,
    *,
    force: bool = False,
    progress: Progress | None = None,
    token: str | None = None,
    source_file: Path | None = None,
) -> Path:
    """Make ``model`` present and verified in the store; return the path of its main file.

    ``source_file`` installs a file the user already has (gated models) after checking its
    hash. Idempotent and safe to run from several processes at once.
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
            local = source_file is not None or f.source.startswith("npm:")
            try:
                if local:
                    tmp.unlink(missing_ok=True)
                    if source_file is not None:
                        _copy_checked(Path(source_file), tmp, progress)
                    else:
                        _assemble_from_npm(f, tmp, progress)
                        if f.derive:  # a file the user hands in is taken as it is
                            _derive(f, tmp)
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
                if local:
                    tmp.unlink(missing_ok=True)
                raise ModelError(f"{spec.id}: cannot install {f.name}: {e.strerror or e}") from None
            except BaseException:
                if local:
                    tmp.unlink(missing_ok=True)
                raise
            paths.append(path)
    return paths[0]


def _derive(f: ModelFile, tmp: Path) -> None:
    """Replace ``tmp`` (the verified source) by its derived form, e.g. the widened fp32 graph."""
    if f.derive != "fp32":
        raise ModelError(f"{f.name}: unknown derivation {f.derive!r}")
    from alphacut.models.widen import widen_fp16_graph

    wide = tmp.with_name(tmp.name + ".wide")
    try:
        widen_fp16_graph(tmp, wide)
        os.replace(wide, tmp)
    finally:
        wide.unlink(missing_ok=True)


def _copy_checked(src: Path, tmp: Path, progress: Progress | None) -> None:
    if not src.is_file():
        raise ModelError(f"{src}: file not found")
    total = src.stat().st_size
    done = 0
    with open(src, "rb") as i, open(tmp, "wb") as o:
        while block := i.read(HASH_BLOCK * 4):
            o.write(block)
            done += len(block)
            if progress:
                progress(done, total)
        o.flush()
        os.fsync(o.fileno())


def resolve(model: str | os.PathLike | None, *, auto_install: bool = True) -> tuple[ModelSpec, Path]:
    """Spec and verified file path for a catalog id or a path to an ``.onnx`` file.

    Embedded models install themselves on first use (no network); remote models must be
    installed first with ``alphacut models install`` so a cut-out never starts a download.
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

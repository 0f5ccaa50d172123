"""Ray engine: the same cut-outs as the local engine, spread over a Ray cluster with Ray Data.

    alphacut remove INPUT... -o OUTPUT --engine ray [--ray-address ADDR]

INPUT is a directory, a file, or any filesystem URI Ray Data reads (``s3://``, ``gs://``,
``abfss://`` …); OUTPUT is a directory or URI. The driver lists the inputs, maps each to its
output path exactly as the local engine does (the relative path, the format's extension),
and leaves out the ones whose output already exists, before any byte is read. Ray Data then
reads the remaining files as binary and runs ``map_batches`` over a pool of actors; each
actor holds one ``alphacut.Remover`` (one ONNX Runtime session) for its whole life, decodes,
cuts out, encodes, verifies and writes. The bytes are ``CutOut.encode`` with the same
options, so they are identical to the local engine's.

A file that fails is recorded, never fatal: ``OUTPUT/alphacut-report.jsonl`` gets one JSON
object per input (``path``, ``output``, ``ok``, ``skipped``, ``error``, ``note``), and the exit
code is 0 only when every input succeeded (or already had its output). An actor that dies
(killed, out of memory, node lost) is restarted and its work retried by Ray.

``cut_out_dataset`` is the same stage for a Ray Data pipeline of your own.

This is the only module of alphacut that imports Ray; the CLI imports it only for
``--engine ray``. Install with ``pip install 'alphacut[ray]'``.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import secrets
import sys
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import ray  # an ImportError here tells the CLI that the extra is missing
import ray.data

from alphacut.errors import AlphacutError
from alphacut.models.catalog import DEFAULT_MODEL

REPORT_NAME = "alphacut-report.jsonl"
#: Threads of each actor's ONNX Runtime session (and the CPUs each actor asks Ray for).
THREADS_ENV = "ALPHACUT_THREADS"
#: Actor pool size: ``N`` (fixed) or ``MIN,MAX`` (autoscaling); default: CPUs / threads.
ACTORS_ENV = "ALPHACUT_RAY_ACTORS"
#: When set on the driver, each actor writes ``<pid>.pid`` into this directory when its
#: session is ready (monitoring, and the tests' way to find a worker to kill).
PIDFILE_ENV = "ALPHACUT_RAY_PIDFILE_DIR"
#: Retries of one batch after its actor died (a poison file that kills every actor it meets
#: is given up after this many and reported as failed instead of looping forever).
TASK_RETRIES = 3


# --------------------------------------------------------------------------- filesystems


@dataclass(frozen=True)
class Location:
    """A user-given path or URI, resolved to a pyarrow filesystem and a path inside it."""

    given: str
    fs: Any  # pyarrow.fs.FileSystem
    path: str
    local: bool

    def display(self, path: str) -> str:
        """How a path inside this filesystem is shown to the user (URI for remote ones)."""
        if self.local:
            return path
        scheme = self.given.split("://", 1)[0]
        return f"{scheme}://{path}"


_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/+(.*)$")


def locate(given: str) -> Location:
    """Resolve a local path, ``file://`` or any URI pyarrow (hence Ray Data) understands.

    ``scheme:/path`` (what ``pathlib.Path`` makes of ``scheme://path``, as the CLI's ``-o``
    option does) is read as ``scheme://path``.
    """
    m = _URI.match(given)
    if m and len(m.group(1)) > 1:  # not a Windows drive letter
        given = f"{m.group(1)}:///{m.group(2)}" if m.group(1) == "file" else f"{m.group(1)}://{m.group(2)}"
    if "://" not in given or given.startswith("file://"):
        path = given.removeprefix("file://")
        return Location(given, pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path)), True)
    fs, path = pafs.FileSystem.from_uri(given)
    return Location(given, fs, path.rstrip("/"), False)


def _info(loc: Location, path: str | None = None):
    return loc.fs.get_file_info(path if path is not None else loc.path)


def _list_files(loc: Location, root: str) -> list[str]:
    """Files under ``root``, recursively, sorted; hidden file names skipped like the local engine."""
    sel = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    out = [
        i.path for i in loc.fs.get_file_info(sel)
        if i.type == pafs.FileType.File and not posixpath.basename(i.path).startswith(".")
    ]
    return sorted(out)


def _is_image(loc: Location, path: str) -> bool:
    """Whether a file found in an input folder is one to cut out, by the local engine's rule
    (``decode.looks_like_image``); on an object store by its extension alone, so that planning
    reads no object."""
    from alphacut.stages.decode import IMAGE_EXTENSIONS, looks_like_image

    if loc.local:
        return looks_like_image(Path(path))
    return posixpath.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _write_bytes(out: Location, path: str, data: bytes, *, overwrite: bool, protect: str | None) -> None:
    """Write one output: atomically on local disks, one PUT on object stores."""
    if out.local:
        from alphacut.stages.output import write_atomic

        write_atomic(Path(path), data, overwrite=overwrite, protect=Path(protect) if protect else None)
        return
    from alphacut.errors import OutputError

    try:
        parent = posixpath.dirname(path)
        if parent:
            try:
                out.fs.create_dir(parent, recursive=True)
            except OSError:
                pass  # object stores have no directories; a real failure shows on write
        with out.fs.open_output_stream(path) as f:
            f.write(data)
    except OSError as e:
        raise OutputError(f"{out.display(path)}: cannot write: {e}") from None


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Root:
    """One CLI input: where its files live and where their outputs go."""

    path: str  # path inside the input filesystem
    is_dir: bool
    out_base: str  # path inside the output filesystem


def target_for(path: str, roots: Iterable[Root], ext: str, suffix: str = "") -> str | None:
    """Output path of an input file: its path relative to its input, with the new extension.

    Used by the driver to plan and by the actors to write, so both always agree. The
    deepest root that contains the file wins.
    """
    best: tuple[int, str] | None = None
    for r in roots:
        base = r.path.rstrip("/")
        if r.is_dir and path.startswith(base + "/"):
            rel = path[len(base) + 1:]
        elif not r.is_dir and path == r.path:
            rel = posixpath.basename(path)
        else:
            continue
        if best is None or len(base) > best[0]:
            d, name = posixpath.split(rel)
            best = (len(base), posixpath.join(r.out_base, d, f"{PurePosixPath(name).stem}{suffix}{ext}"))
    return None if best is None else best[1]


@dataclass
class Plan:
    inp: Location
    out: Location
    roots: list[Root]
    todo: list[str] = field(default_factory=list)  # input paths to process
    targets: dict[str, str] = field(default_factory=dict)  # input path -> output path
    skipped: list[str] = field(default_factory=list)  # input paths whose output exists
    errors: list[dict] = field(default_factory=list)  # report lines for inputs not planned


def plan(inputs: list[str], output: str, fmt: str, *, suffix: str = "", overwrite: bool = False) -> Plan:
    """Map inputs to outputs (mirroring the local engine) and find what is already done.

    Raises ``AlphacutError`` for setup problems (mixed filesystems); per-input problems
    (missing, collisions, output = input) become report lines.
    """
    from alphacut import formats
    from alphacut.engines.batch import check_suffix

    check_suffix(suffix)  # the same rule as the local engine: no path separators
    ext = formats.get(fmt).extension
    locs = [locate(i) for i in inputs]
    out = locate(output)
    kinds = {(type(l.fs).__name__, l.given.split("://", 1)[0] if not l.local else "") for l in locs}
    if len(kinds) > 1:
        raise AlphacutError("--engine ray: all inputs must be on one filesystem (all local, or all one URI scheme)")
    inp = locs[0]
    roots: list[Root] = []
    errors: list[dict] = []
    for loc in locs:
        info = _info(loc)
        if info.type == pafs.FileType.NotFound:
            errors.append(_line(loc.given, None, False, f"{loc.given}: no such file or directory"))
            continue
        is_dir = info.type == pafs.FileType.Directory
        if len(locs) == 1 or not is_dir:
            base = out.path
        else:
            base = posixpath.join(out.path, posixpath.basename(loc.path.rstrip("/")))
        roots.append(Root(loc.path, is_dir, base))
    p = Plan(inp, out, roots, errors=errors)
    files: list[str] = []
    seen_src: set[str] = set()
    for r in roots:
        for f in ([f for f in _list_files(inp, r.path) if _is_image(inp, f)] if r.is_dir else [r.path]):
            if f not in seen_src:
                seen_src.add(f)
                files.append(f)
    # An output directory below an input directory holds no inputs (a rerun must not cut
    # out the cut-outs). OUTPUT = INPUT is left as the local engine treats it.
    same_fs = inp.local == out.local and (inp.local or inp.given.split("://")[0] == out.given.split("://")[0])
    below = out.path.rstrip("/") + "/"
    if same_fs and any(r.is_dir and below.startswith(r.path.rstrip("/") + "/") and below != r.path.rstrip("/") + "/"
                       for r in roots):
        files = [f for f in files if not f.startswith(below)]
    if same_fs:  # nor is a report of an earlier run (OUTPUT = INPUT)
        files = [f for f in files if f != posixpath.join(out.path, REPORT_NAME)]
    existing = set(_list_files(out, out.path)) if _info(out).type == pafs.FileType.Directory else set()
    owner: dict[str, str] = {}
    for f in files:
        t = target_for(f, roots, ext, suffix)
        label = inp.display(f)
        if t is None:  # cannot happen for listed files; kept as a guard
            errors.append(_line(label, None, False, f"{label}: no output path for this input"))
            continue
        if t in owner:
            errors.append(_line(label, out.display(t), False,
                                f"{label}: its output {out.display(t)} would collide with that of {inp.display(owner[t])}; skipped"))
            continue
        if same_fs and t == f:
            errors.append(_line(label, out.display(t), False, f"{label}: output would overwrite the input; skipped"))
            continue
        owner[t] = f
        p.targets[f] = t
        if t in existing and not overwrite:
            p.skipped.append(f)
        else:
            p.todo.append(f)
    return p


def _line(path: str, output: str | None, ok: bool, error: str | None = None, *, skipped: bool = False, note: str | None = None) -> dict:
    return {"path": path, "output": output, "ok": ok, "skipped": skipped, "error": error, "note": note}


# --------------------------------------------------------------------------- the actor


class CutOutActor:
    """Ray Data callable class: one ``Remover`` (one ONNX Runtime session) per actor.

    In dataset mode (``sink=None``) each row's ``bytes`` become ``cutout`` (and ``mask``)
    bytes plus ``error``; in CLI mode (``sink`` given) each output is written where the plan
    says and the row returned is a report line.
    """

    def __init__(
        self,
        *,
        model: str | None = DEFAULT_MODEL,
        options=None,
        max_pixels: int | None = None,
        threads: int = 1,
        masks: bool = False,
        sink: dict | None = None,
        pidfile_dir: str | None = None,
    ):
        if threads:
            os.environ[THREADS_ENV] = str(threads)  # infer.get_session reads it
        from alphacut.options import Options
        from alphacut.pipeline import Remover

        self.options = options or Options()
        self.remover = Remover(model, max_pixels=max_pixels, options=self.options)
        _ = self.remover.session  # load now: the session lives as long as the actor
        self.format = self.options.format
        self.masks = masks
        if masks:  # the mask is a file of its own: never flattened, in PNG where the cut-out is a JPEG
            from alphacut import formats

            fmt = self.options.format or "png"
            self.mask_options = self.options.replace(
                mask_only=True, background=None, shadow=False, format=fmt if formats.get(fmt).alpha else "png")
        self.sink = sink
        if sink is not None:
            self.out = locate(sink["output"])
            self.inp = locate(sink["input"])
            self.roots = [Root(**r) for r in sink["roots"]]
        if pidfile_dir:
            Path(pidfile_dir).mkdir(parents=True, exist_ok=True)
            Path(pidfile_dir, f"{os.getpid()}.pid").write_text(str(os.getpid()))

    def _cut(self, data: bytes, label: str):
        """(cut-out bytes, mask bytes or None, error, note) for one encoded image."""
        from alphacut.errors import AlphacutError as _AE

        try:
            cut = self.remover.remove(bytes(data), label)  # the one path (pipeline.Remover.remove)
            out = cut.encode(options=self.options)
            mask = cut.encode(options=self.mask_options) if self.masks else None
            return out, mask, None, cut.notice
        except _AE as e:
            return None, None, str(e), None
        except MemoryError:
            return None, None, f"{label}: not enough memory", None
        except Exception as e:  # noqa: BLE001 - a bug must not end the job; it is reported with the file
            return None, None, f"{label}: unexpected error: {type(e).__name__}: {e}", None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        datas = batch["bytes"]
        n = len(datas)
        paths = batch["path"] if "path" in batch else [None] * n
        if self.sink is not None:
            return self._write_batch(datas, paths)
        cutouts, maskb, errors, notes = [], [], [], []
        for i, (data, path) in enumerate(zip(datas, paths)):
            label = str(path) if path is not None else f"image {i}"
            c, m, e, note = self._cut(data, label)
            cutouts.append(c)
            maskb.append(m)
            errors.append(e)
            notes.append(note)
        out = {k: v for k, v in batch.items() if k != "bytes"}
        out["cutout"] = _objects(cutouts)
        if self.masks:
            out["mask"] = _objects(maskb)
        out["error"] = _objects(errors)
        out["note"] = _objects(notes)
        return out

    def _write_batch(self, datas, paths) -> dict[str, np.ndarray]:
        from alphacut import formats

        ext = formats.get(self.format).extension
        rows = []
        for data, path in zip(datas, paths):
            path = str(path)
            label = self.inp.display(path)
            target = target_for(path, self.roots, ext, self.sink.get("suffix", ""))
            if target is None:
                rows.append(_line(label, None, False, f"{label}: no output path for this input"))
                continue
            shown = self.out.display(target)
            c, _, e, note = self._cut(data, label)
            if c is not None:
                try:
                    # Planned outputs did not exist (or --overwrite); a retried batch may find
                    # its own earlier write, which holds the same bytes: replace it.
                    _write_bytes(self.out, target, c, overwrite=True, protect=path if self.inp.local else None)
                except AlphacutError as err:
                    e = str(err)
            rows.append(_line(label, shown, e is None, e, note=note))
        return {k: _objects([r[k] for r in rows]) for k in ("path", "output", "ok", "skipped", "error", "note")}


def _objects(values: list) -> np.ndarray:
    a = np.empty(len(values), dtype=object)
    a[:] = values
    return a


# --------------------------------------------------------------------------- sizing


def _threads() -> int:
    try:
        return max(1, int(os.environ.get(THREADS_ENV) or 1))
    except ValueError:
        return 1


def _actors(threads: int, spare: int = 0) -> int | tuple[int, int]:
    """Actor pool size: ``ALPHACUT_RAY_ACTORS`` or as many as the cluster's CPUs (less
    ``spare``) hold."""
    env = os.environ.get(ACTORS_ENV, "").strip()
    if env:
        parts = [int(x) for x in env.replace("-", ",").split(",") if x.strip()]
        if len(parts) == 1:
            return max(1, parts[0])
        return (max(1, parts[0]), max(parts[0], parts[1], 1))
    cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else (os.cpu_count() or 1)
    return max(1, int((cpus - spare) // threads))


def _pool(size: int | tuple[int, int]) -> ray.data.ActorPoolStrategy:
    if isinstance(size, tuple):
        return ray.data.ActorPoolStrategy(min_size=size[0], max_size=size[1])
    return ray.data.ActorPoolStrategy(size=size)


def _map(ds: ray.data.Dataset, kwargs: dict, size: int | tuple[int, int], threads: int) -> ray.data.Dataset:
    """``map_batches`` over the actor pool: one image per call, ``threads`` CPUs per actor.

    A dead actor is restarted without limit (Ray Data's default) and its batch retried at
    most ``TASK_RETRIES`` times (Ray Data's default is without limit, which a file that
    crashes every worker would turn into an endless loop). Ray 2.60 marks per-operator
    remote args as deprecated (removal planned for 2.64) without a replacement for
    ``max_task_retries`` yet; the warning is silenced here and this is the one place to
    change when upgrading.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return ds.map_batches(
            CutOutActor, fn_constructor_kwargs=kwargs, batch_size=1, batch_format="numpy",
            compute=_pool(size), num_cpus=threads, max_restarts=-1, max_task_retries=TASK_RETRIES,
        )


# --------------------------------------------------------------------------- Python API


def cut_out_dataset(
    ds: ray.data.Dataset,
    *,
    model: str = DEFAULT_MODEL,
    format: str = "png",
    mask_only: bool = False,
    background: tuple[int, int, int] | str | None = None,
    quality: int | None = None,
    refine: str | None = None,
    threshold: float | None = None,
    max_pixels: int | None = None,
    concurrency: int | tuple[int, int] | None = None,
    threads: int | None = None,
    masks: bool = False,
) -> ray.data.Dataset:
    """Cut out every image of a Ray Dataset.

    ``ds`` has a ``bytes`` column of encoded images (as ``ray.data.read_binary_files``
    gives, optionally with ``include_paths=True``). The result has the other input columns
    (``path`` …), ``cutout`` (encoded bytes, identical to ``CutOut.encode`` with these
    options), ``mask`` (the 8-bit mask encoded in the same format, when ``masks=True``),
    ``error`` (None, or why this image failed; its ``cutout`` is then None) and ``note``.
    Each actor holds one ONNX Runtime session with ``threads`` threads (default:
    ``$ALPHACUT_THREADS`` or 1) and asks Ray for as many CPUs. ``concurrency`` is the actor
    pool: a size or ``(min, max)``; by default as many actors as the cluster's CPUs hold,
    less one CPU, which the stages before this one need: Ray Data starts the actors first,
    and a read task asking for a CPU that the actors hold would wait for ever. To give the
    actors every CPU, read with ``num_cpus=0`` (reading is I/O), as ``alphacut remove
    --engine ray`` does::

        ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True, num_cpus=0)
        out = cut_out_dataset(ds, format="webp", masks=True, concurrency=8)
    """
    from alphacut.options import Options

    options = Options(format=format, mask_only=mask_only, background=background, avif_quality=quality,
                      refine=refine, threshold=threshold)  # ValueError (OptionError) here, not in the actors
    threads = threads or _threads()
    if concurrency is None:
        concurrency = _actors(threads, spare=1)
    kwargs = {
        "model": model, "options": options, "max_pixels": max_pixels,
        "threads": threads, "masks": masks, "pidfile_dir": os.environ.get(PIDFILE_ENV) or None,
    }
    return _map(ds, kwargs, concurrency, threads)


# --------------------------------------------------------------------------- CLI


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Report:
    """JSON lines streamed to a temporary file, put in place when the job ends."""

    def __init__(self, out: Location):
        self.out = out
        self.path = posixpath.join(out.path, REPORT_NAME)
        if out.local:
            Path(out.path).mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{REPORT_NAME}.", suffix=".part", dir=out.path)
        else:
            fd, self.tmp = tempfile.mkstemp(prefix="alphacut-report.", suffix=".jsonl")
        self.f = os.fdopen(fd, "w", encoding="utf-8")
        self.done: set[str] = set()

    def add(self, line: dict) -> None:
        self.done.add(line["path"])
        self.f.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.f.flush()

    def close(self) -> str:
        self.f.close()
        if self.out.local:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        else:
            with open(self.tmp, "rb") as src:
                _write_bytes(self.out, self.path, src.read(), overwrite=True, protect=None)
            os.unlink(self.tmp)
        return self.out.display(self.path)


def run_cli(
    inputs: list[str],
    output: str,
    opts,
    *,
    model: str = DEFAULT_MODEL,
    address: str | None = None,
    max_pixels: int | None = None,
    quiet: bool = False,
    suffix: str = "",
) -> int:
    """``alphacut remove ... --engine ray``. Returns the exit code: 0 all done, 1 some inputs
    failed (see the report), 2 setup error (cluster, model, output not writable)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # alphacut sends nothing anywhere
    try:
        p = plan(inputs, output, opts.format, suffix=suffix, overwrite=opts.overwrite)
    except AlphacutError as e:
        _say(f"error: {e}")
        return 2
    except (OSError, ValueError) as e:
        _say(f"error: cannot list the inputs or the output: {e}")
        return 2
    if address is None and p.todo:
        try:  # fail once, here, rather than in every actor
            from alphacut.models import store

            store.resolve(model)
        except (AlphacutError, ValueError) as e:
            _say(f"error: {e}")
            return 2
    try:
        report = _Report(p.out)
    except OSError as e:
        _say(f"error: {output}: cannot write the report there: {e}")
        return 2

    failed = 0
    for line in p.errors:
        report.add(line)
        failed += 1
        _say(f"error: {line['error']}")
    for f in p.skipped:
        report.add(_line(p.inp.display(f), p.out.display(p.targets[f]), True, skipped=True))
    written = 0
    code = 0
    if p.todo:
        if not quiet and p.skipped:
            _say(f"{len(p.skipped)} outputs exist already and are skipped; {len(p.todo)} to do")
        started = False
        lost: list[str] = []
        try:
            if not ray.is_initialized():
                if not address and "RAY_AUTH_MODE" not in os.environ and "RAY_AUTH_TOKEN" not in os.environ:
                    # A private instance: its own token, in its processes' environment only
                    # (Ray would otherwise create and keep one in ~/.ray/auth_token).
                    os.environ["RAY_AUTH_MODE"] = "token"
                    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
                    from ray._raylet import Config

                    Config.initialize("")  # Ray read its config at import; as Ray itself does here
                level = logging.ERROR if quiet else logging.INFO
                if quiet:
                    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
                    logging.getLogger("ray").setLevel(logging.ERROR)
                if address:
                    ray.init(address=address, log_to_driver=not quiet, logging_level=level)
                else:
                    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                             log_to_driver=not quiet,
                             logging_level=level)
                started = True
            if quiet:
                for name in ("ray", "ray.data"):
                    logging.getLogger(name).setLevel(logging.ERROR)
            written, errs, lost = _run_job(p, opts, model=model,
                                           max_pixels=max_pixels, quiet=quiet, suffix=suffix, report=report)
            failed += errs
        except Exception as e:  # noqa: BLE001 - connection refused, actors that cannot start, ...
            _say(f"error: the Ray job failed: {type(e).__name__}: {e}")
            code = 2
            done = report.done
            lost = [f for f in p.todo if p.inp.display(f) not in done]
        finally:
            if started:
                ray.shutdown()
        for f in lost:  # planned inputs with no result: their tasks failed for good
            label = p.inp.display(f)
            report.add(_line(label, p.out.display(p.targets[f]), False,
                             f"{label}: no result (its task failed after {TASK_RETRIES} retries, or the job "
                             "stopped; see the Ray logs)"))
            failed += 1
    try:
        where = report.close()
    except (OSError, AlphacutError) as e:
        _say(f"error: cannot write the report: {e}")
        return 2
    total = len(p.errors) + len(p.skipped) + len(p.todo)
    if not quiet or failed:
        _say(f"{written} written, {len(p.skipped)} skipped (output exists), {failed} failed, of {total}; "
             f"report: {where}")
    if code:
        return code
    return 1 if failed else 0


def _run_job(p: Plan, opts, *, model, max_pixels, quiet, suffix,
             report: _Report) -> tuple[int, int, list[str]]:
    """Run the dataset, streaming report lines; return (written, failed, inputs with no result)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not quiet
    # A block whose task failed for good (retries spent) is dropped rather than ending the
    # job; its files have no row and are reported as failed from the plan.
    ctx.max_errored_blocks = -1
    threads = _threads()
    sink = {
        "input": p.inp.given,
        "output": p.out.given,
        "roots": [r.__dict__ for r in p.roots],
        "suffix": suffix,
    }
    kwargs = {
        "model": model, "options": opts.options, "max_pixels": max_pixels,
        "threads": threads, "sink": sink,
        "pidfile_dir": os.environ.get(PIDFILE_ENV) or None,
    }
    ds = ray.data.read_binary_files(
        p.todo, include_paths=True, filesystem=p.inp.fs,
        override_num_blocks=min(len(p.todo), 10_000), num_cpus=0,  # reading is I/O; CPUs go to actors
    )
    ds = _map(ds, kwargs, _actors(threads), threads)
    pending = {p.inp.display(f): f for f in p.todo}
    written = errors = 0
    for row in ds.iter_rows():
        line = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        pending.pop(line["path"], None)
        report.add(line)
        if line["ok"]:
            written += 1
            if line.get("note") and not quiet:
                _say(f"note: {line['note']}")
        else:
            errors += 1
            _say(f"error: {line['error']}")
    return written, errors, list(pending.values())

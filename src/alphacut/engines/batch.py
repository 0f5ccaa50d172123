"""Batch runner: many inputs → many outputs with one model session, stages overlapped.

Three stages run concurrently: a reader thread decodes images and builds their model inputs
ahead of the main thread, which runs inference, and a finisher thread upscales, refines and
composes the previous one, then encodes, verifies and writes it. NumPy, Pillow, ISA-L and
ONNX Runtime release the GIL, so the stages overlap for real. The model session is created
while the reader starts, and the reader may run ahead by up to ``READ_AHEAD_BYTES`` of
prepared inputs (always one), so its decoding fills the core that session creation leaves
idle instead of competing with inference later. Large photos are not held during inference
(see ``Remover.prepare``), and the finisher's queue has one slot, so memory stays bounded.
A failure is recorded for its file and the batch goes on, whatever a stage raises (an
unexpected exception is reported as an internal error for that file): every thread always
reaches its end marker, so a batch always ends, with one outcome per job.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alphacut import formats
from alphacut.errors import AlphacutError, OutputError, UsageError
from alphacut.options import Options
from alphacut.pipeline import Remover


@dataclass
class Job:
    """One input and where its output goes; ``source`` is a path or raw bytes (stdin)."""

    source: Path | bytes
    target: Path | None  # None: the caller takes the bytes (stdout)
    label: str


@dataclass
class Outcome:
    job: Job
    ok: bool
    message: str = ""
    data: bytes | None = None  # encoded bytes when job.target is None
    skipped: bool = False


@dataclass
class SaveOptions:
    """What to write (the validated ``Options``) and what to do about existing outputs."""

    options: Options = field(default_factory=Options)
    overwrite: bool = False
    skip_existing: bool = False

    @property
    def format(self) -> str:
        return self.options.format or formats.DEFAULT_FORMAT


_DONE = object()

#: How much prepared input (model tensors, and pixels kept for small photos) the reader may
#: hold ahead of inference; one item is always allowed, whatever its size.
READ_AHEAD_BYTES = 128 << 20


class _ReadAhead:
    """A FIFO of prepared items bounded by their bytes rather than their count."""

    def __init__(self, budget: int):
        self.budget = budget
        self.items: list[tuple[object, int]] = []
        self.held = 0
        self.cond = threading.Condition()

    def put(self, item: object, size: int = 0) -> None:
        with self.cond:
            self.cond.wait_for(lambda: not self.items or self.held + size <= self.budget)
            self.items.append((item, size))
            self.held += size
            self.cond.notify_all()

    def get(self) -> object:
        with self.cond:
            self.cond.wait_for(lambda: self.items)
            item, size = self.items.pop(0)
            self.held -= size
            self.cond.notify_all()
            return item


def _prepared_bytes(prepared) -> int:
    n = prepared.tensor.nbytes if prepared.tensor is not None else 0
    return n + (prepared.image.rgba.nbytes if prepared.image is not None else 0)


def run_batch(
    remover: Remover,
    jobs: Iterable[Job],
    opts: SaveOptions,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Process every job; return one Outcome per job, in completion order."""
    finished: queue.Queue = queue.Queue(maxsize=1)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def report(o: Outcome) -> None:
        with lock:
            outcomes.append(o)
        if on_done:
            on_done(o)

    def attempt(job: Job, stage: str, fn, *args, **kw):
        """fn(*args, **kw), or None after reporting the job's failure (the batch goes on)."""
        try:
            return fn(*args, **kw)
        except AlphacutError as e:
            report(Outcome(job, False, str(e)))
        except MemoryError:
            report(Outcome(job, False, f"{job.label}: not enough memory for {stage}"))
        except Exception as e:  # noqa: BLE001 - a bug in a stage must not stop or hang the batch
            report(Outcome(job, False, f"{job.label}: internal error in {stage}: {type(e).__name__}: {e}"))
        return None

    def reader() -> None:
        try:
            for job in jobs:
                attempt(job, "decoding", read, job)
        finally:
            inferred.put(_DONE)

    def read(job: Job) -> None:
        if job.target is not None and job.target.exists() and not opts.overwrite:
            if opts.skip_existing:
                report(Outcome(job, True, f"{job.target}: exists, skipped", skipped=True))
            else:
                report(Outcome(job, False, f"{job.target}: exists (use --overwrite or --skip-existing)"))
            return
        prepared = remover.prepare(job.source, job.label, keep_pixels=False)
        inferred.put((job, prepared), _prepared_bytes(prepared))

    def finisher() -> None:
        while (item := finished.get()) is not _DONE:
            job, prepared, raw = item
            del item
            try:
                attempt(job, "the cut-out", finish, job, prepared, raw)
            except Exception:  # noqa: BLE001 - on_done itself failed: keep draining, the batch must end
                pass
            del prepared, raw

    def finish(job: Job, prepared, raw) -> None:
        cut = remover.finish(prepared, raw)
        cut.mask = None  # outputs are made from rgba alone: free the float mask (192 MB at 48 MP)
        if job.target is None:
            report(Outcome(job, True, cut.notice or "", data=cut.encode(opts.format, options=opts.options)))
        else:
            protect = job.source if isinstance(job.source, Path) else None
            cut.save(job.target, opts.format, overwrite=opts.overwrite, protect=protect, options=opts.options)
            report(Outcome(job, True, cut.notice or ""))

    inferred = _ReadAhead(READ_AHEAD_BYTES)
    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=finisher, daemon=True)]
    for t in threads:
        t.start()
    try:
        try:
            _ = remover.session  # load the model while the reader decodes the first images
        except Exception:  # noqa: BLE001
            pass  # reported for each job that needs it, by the loop below
        while (item := inferred.get()) is not _DONE:
            job, prepared = item
            del item
            raw = attempt(job, "inference", remover.infer, prepared)
            if raw is None:
                continue
            finished.put((job, prepared, raw))
            del prepared, raw
    finally:
        finished.put(_DONE)
        for t in threads:
            t.join()
    return outcomes


def check_suffix(suffix: str) -> None:
    """A ``--suffix`` is added to a file name: a path separator (or NUL) would put outputs
    into other directories, even outside the output directory."""
    import os

    bad = [c for c in ("/", "\\", "\0", os.sep, os.altsep) if c and c in suffix]
    if bad:
        raise UsageError(f"--suffix {suffix!r}: it is added to file names, so it may not contain {bad[0]!r}")


def default_output_dir(src: Path) -> Path:
    """``<dir>-cutout`` beside an input directory; a usage error where that has no name."""
    if src.name in ("", ".", ".."):
        raise UsageError(
            f"{src}: give -o OUTPUT_DIR for this directory (the default, a '-cutout' directory "
            "beside the input, is only made for a named directory)"
        )
    return src.with_name(src.name + "-cutout")


def plan_outputs(
    inputs: list[Path], output: Path | None, fmt: str, *, suffix: str = "", not_images: list[Path] | None = None
) -> tuple[list[Job], list[str]]:
    """Map inputs (files and directories, recursive) to output paths.

    Files found in a directory that are not images (``decode.looks_like_image``) get no job;
    they are appended to ``not_images`` when it is given. Files named directly always do.

    One input file: ``output`` is the output file (default ``<stem>-cutout.<ext>`` beside
    it). Directories or several inputs: ``output`` is a directory mirroring each input's
    structure, each output named as its input with the format's extension. Returns the
    jobs and a list of errors for inputs that cannot be planned (missing, collisions);
    raises ``UsageError`` for a request that cannot be planned at all.
    """
    from alphacut.stages.decode import looks_like_image
    ext = formats.get(fmt).extension
    check_suffix(suffix)
    errors: list[str] = []
    jobs: list[Job] = []
    single = len(inputs) == 1 and not inputs[0].is_dir()
    if single:
        src = inputs[0]
        if not src.exists():
            return [], [f"{src}: no such file"]
        target = output if output is not None else src.with_name(f"{src.stem}{suffix or '-cutout'}{ext}")
        if output is not None and output.is_dir():
            target = output / f"{src.stem}{suffix}{ext}"
        return [Job(src, target, str(src))], []
    seen: dict[Path, Path] = {}
    for src in inputs:
        if not src.exists():
            errors.append(f"{src}: no such file or directory")
            continue
        if src.is_dir():
            base_out = output if output is not None else default_output_dir(src)
            files = []
            for p in sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")):
                if looks_like_image(p):
                    files.append(p)
                elif not_images is not None:
                    not_images.append(p)
            pairs = [(p, base_out / p.relative_to(src).with_name(f"{p.stem}{suffix}{ext}")) for p in files]
            if output is not None and len(inputs) > 1:
                pairs = [(p, output / src.name / t.relative_to(output)) for p, t in pairs]
        else:
            if output is None:
                pairs = [(src, src.with_name(f"{src.stem}{suffix or '-cutout'}{ext}"))]
            else:
                pairs = [(src, output / f"{src.stem}{suffix}{ext}")]
        for p, t in pairs:
            if t in seen:
                errors.append(f"{p}: its output {t} would collide with that of {seen[t]}; skipped")
                continue
            try:
                if t.exists() and t.samefile(p):
                    errors.append(f"{p}: output would overwrite the input; skipped")
                    continue
            except OSError:
                pass
            seen[t] = p
            jobs.append(Job(p, t, str(p)))
    return jobs, errors


def ensure_writable_dir(path: Path) -> None:
    """Fail early, once, when the output directory cannot be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create output directory: {e.strerror or e}") from None
    import os

    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output directory is not writable")

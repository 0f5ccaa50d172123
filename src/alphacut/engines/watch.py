"""Watch a folder: cut out new and changed images as they arrive, until stopped (Ctrl+C).

Polling with ``os.stat`` rather than OS file events: it works the same on every platform and
on network shares, and a file still being written has to be told apart from a finished one
either way. A file is taken once its size and modification time have stayed the same for
``settle`` seconds (a copy in progress, a download, a camera still writing keeps changing
them), and is taken again when it changes later. A file whose output is already newer than
it is left alone, so a restarted watch does not redo the folder. Each round runs the normal
batch (``engines.batch``): same atomic, verified writes; a failed file is reported once per
version of it and the watch goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from alphacut.engines import batch
from alphacut.pipeline import Remover


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _up_to_date(job: batch.Job, sig: tuple[int, int]) -> bool:
    try:
        return job.target is not None and job.target.stat().st_mtime_ns >= sig[1]
    except OSError:
        return False


def watch(
    remover: Remover,
    folder: Path,
    output: Path,
    opts: batch.SaveOptions,
    on_done: Callable[[batch.Outcome], None],
    *,
    suffix: str = "",
    interval: float = 0.5,
    settle: float = 1.0,
    stop: threading.Event | None = None,
    on_not_image: Callable[[Path], None] | None = None,
    on_plan_error: Callable[[str], None] | None = None,
) -> None:
    """Poll ``folder`` every ``interval`` s and cut out each image that is new or changed and has
    been still for ``settle`` s, into ``output`` (mirroring the folder), until ``stop`` is set.
    An input that cannot be planned (two inputs whose outputs would collide) is reported to
    ``on_plan_error`` once, and again only if it went away and came back."""
    stop = stop or threading.Event()
    output_root = output.resolve()
    pending: dict[Path, tuple[tuple[int, int], float]] = {}  # path -> (signature, seen since)
    handled: dict[Path, tuple[int, int]] = {}  # path -> signature last processed or reported
    opts = replace(opts, overwrite=True, skip_existing=False)  # targets are older than inputs
    reported: set[str] = set()  # planning errors said and still there
    while not stop.is_set():
        not_images: list[Path] = []
        jobs, errors = batch.plan_outputs([folder], output, opts.format, suffix=suffix, not_images=not_images)
        for message in errors:
            if message not in reported and on_plan_error:
                on_plan_error(message)
        reported = set(errors)
        now = time.monotonic()
        ready = []
        for path in not_images:
            sig = _signature(path)
            if sig is not None and handled.get(path) != sig and _still(pending, path, sig, now, settle):
                handled[path] = sig
                if on_not_image:
                    on_not_image(path)
        for job in jobs:
            path = Path(job.source)
            if output_root in path.resolve().parents:
                continue  # our own outputs, when OUT is inside IN
            sig = _signature(path)
            if sig is None or handled.get(path) == sig or _up_to_date(job, sig):
                continue
            if _still(pending, path, sig, now, settle):
                handled[path] = sig
                ready.append(job)
        if ready:
            output.mkdir(parents=True, exist_ok=True)
            batch.run_batch(remover, ready, opts, on_done)
        for path in [p for p in pending if not p.exists()]:
            del pending[path]
        stop.wait(interval)


def _still(pending: dict, path: Path, sig: tuple[int, int], now: float, settle: float) -> bool:
    """True once ``path`` has kept signature ``sig`` for ``settle`` seconds."""
    seen = pending.get(path)
    if seen is None or seen[0] != sig:
        pending[path] = (sig, now)
        return False
    if now - seen[1] >= settle:
        del pending[path]
        return True
    return False


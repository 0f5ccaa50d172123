"""A few threads for the full-resolution stages (refine, compose, encode), sized once.

NumPy, SciPy, Pillow and the deflate library release the GIL in their heavy calls, so work
split into independent pieces (tiles, row bands, PNG strips) runs on several cores from
threads, without copying pixels into other processes. Every caller splits its work so the
result does not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def threads() -> int:
    """Threads for one stage: the CPUs this process may use, at most 4. ``ALPHACUT_THREADS``
    overrides it; the same variable sets ONNX Runtime's threads (``infer.get_session``), so
    one number says how many cores a process (a Ray actor, say) may keep busy."""
    env = os.environ.get("ALPHACUT_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(4, os.cpu_count() or 1))


def map_ordered(fn: Callable[[T], R], items: Iterable[T], name: str = "alphacut") -> list[R]:
    """``[fn(x) for x in items]`` on a few threads, results in order; a worker's exception
    (MemoryError included) is raised here. One item or one thread: no pool at all."""
    items = list(items)
    n = min(threads(), len(items))
    if n <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(n, thread_name_prefix=name) as pool:
        return list(pool.map(fn, items))

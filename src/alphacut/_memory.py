"""Process-wide memory behaviour for long-running alphacut processes (CLI, server).

glibc raises its mmap threshold after the first large free, so Pillow's 16 MB image blocks
and ONNX Runtime's buffers then come from heaps that are never returned to the system: a
48 MP cut-out measured 2.0 GB peak RSS that way. A fixed 1 MiB threshold makes every large
buffer its own mapping, released when freed (measured: 1.65 GB for the same run, same time).
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3


def release_large_buffers() -> None:
    """Make large allocations return to the OS when freed (glibc only; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass

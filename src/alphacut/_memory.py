"""Process-wide memory settings for alphacut's own processes (CLI, server): glibc malloc, NumPy pages.

The pipeline allocates two kinds of buffers: full-resolution arrays (192 MB each for a 48 MP
RGBA photo or its float mask) and many mid-sized temporaries (row bands, refinement tiles,
PNG strips: 0.1-30 MB, again for every band). Left to itself glibc raises its mmap
threshold after the first large free, so full-resolution arrays end up in heaps that are
not returned (2.0 GB peak RSS at 48 MP in an earlier version; 1.08 GB against 0.99 GB for the
batch below today). A fixed 1 MiB threshold avoided that, but made every temporary a fresh
mapping whose pages fault in again on each use: 1.1 million page faults and 3.3 s of system
time for a batch of three 1 MP photos and one 48 MP one.

So:
- allocations of 32 MiB and more (glibc's largest threshold) are their own mappings,
  returned to the system when freed: peak memory stays what the stages hold at once;
- smaller ones come from the heap, which keeps up to 64 MiB of freed memory instead of
  giving it back at once, so the next band reuses warm pages;
- one heap for all threads: a band freed by one stage thread serves the next one's.
Measured on that batch (2 cores): 0.49 million faults, 1.8 s system time, 1.0 s less wall
time, peak RSS 1.01 GB against 0.99 GB.

And NumPy's request for transparent huge pages on every array of 4 MiB and more is turned off
(``NUMPY_MADVISE_HUGEPAGE=0`` unless the user set it). Where the kernel compacts memory for
such requests on the faulting thread (``defrag`` = ``madvise``, the common default), a machine
whose memory is fragmented by other work pays for it on every fresh full-resolution array: on
this 2-core VM, with the other processes of a busy machine, 0.6 s of system time to upscale a
48 MP mask and 0.3 s to decode its photo, against 0.1 s each with ordinary pages; the passes
over those arrays took the same time either way.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20


def configure_malloc() -> None:
    """Apply the settings above (call before any worker thread starts; a no-op off glibc)."""
    if not sys.platform.startswith("linux"):
        return
    no_numpy_hugepages()
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        libc.mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def no_numpy_hugepages() -> None:
    """NumPy's huge-page requests off, for this process and its children, unless the user
    chose otherwise with ``NUMPY_MADVISE_HUGEPAGE``."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read when NumPy is imported
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # already imported: its (private) switch, where this version has it
        try:
            numpy._core.multiarray._set_madvise_hugepage(False)
        except AttributeError:
            pass

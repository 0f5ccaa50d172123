"""The CLI's malloc settings (alphacut._memory): mid-sized temporaries reuse warm heap pages,
full-resolution buffers go back to the system when freed. Run in child processes, so this
test process keeps its own malloc settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from alphacut._memory import configure_malloc
if sys.argv[1] == "on":
    configure_malloc()

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def touch(nbytes):
    a = np.empty(nbytes, np.uint8)
    a.fill(1)
    return a

touch(8 << 20)  # a row band, freed
f0 = faults()
for _ in range(10):
    touch(8 << 20)  # the next bands: the same size again
band_faults = faults() - f0
big = touch(256 << 20)  # a full-resolution buffer
held = rss()
del big
print(band_faults, held - rss())
"""


def _probe(mode: str) -> tuple[int, int]:
    r = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    faults, released = r.stdout.split()
    return int(faults), int(released)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_bands_reuse_pages_and_full_size_buffers_are_returned():
    on_faults, on_released = _probe("on")
    off_faults, _ = _probe("off")
    # Ten 8 MiB bands: without the settings each one is a fresh mapping (~2048 faults each
    # with 4 KiB pages, fewer on huge pages); with them the pages are reused.
    assert on_faults < 200, on_faults
    assert off_faults > 5 * max(on_faults, 1), (off_faults, on_faults)
    # The 256 MiB buffer is not kept in the heap once freed.
    assert on_released > 200 << 20, on_released


HUGEPAGES = """
import os, sys
import numpy as np
from numpy._core import multiarray
from alphacut._memory import configure_malloc
configure_malloc()
print(os.environ.get("NUMPY_MADVISE_HUGEPAGE"), multiarray._get_madvise_hugepage())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="NumPy asks for huge pages on Linux only")
def test_numpy_huge_page_requests_off_unless_the_user_chose():
    """NumPy (already imported) stops asking for huge pages, children inherit the setting, and
    a NUMPY_MADVISE_HUGEPAGE the user set is left as it is."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    r = subprocess.run([sys.executable, "-c", HUGEPAGES], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "False"]
    r = subprocess.run([sys.executable, "-c", HUGEPAGES], capture_output=True, text=True, timeout=60,
                       env={**env, "NUMPY_MADVISE_HUGEPAGE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "True"]

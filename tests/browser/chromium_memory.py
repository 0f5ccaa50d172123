"""Chromium's memory as the browser tests see it: summed over the processes this test
session started (on a shared machine other jobs' browsers must not count), from /proc, and
a sampler of its peak every 0.2 s. Sampling slows threaded WASM: never time while it runs."""

from __future__ import annotations

import os
import threading


def _ours(pid: str) -> bool:
    """Whether the process descends from this one (Playwright's driver runs under this
    process and starts Chromium)."""
    me = str(os.getpid())
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = f.read().rsplit(")", 1)[1].split()[1]  # the parent's pid
        except OSError:
            return False
        if pid == me:
            return True
        if pid in ("0", "1"):
            return False
    return False


#: What each measure reads: (file under /proc/PID, its line's label).
MEASURES = {"rss": ("status", "VmRSS:"), "pss": ("smaps_rollup", "Pss:")}


def _our_chromium_pids():
    """The pids of the Chromium processes this test session started."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if "chrom" in f.read() and _ours(pid):
                    yield pid
        except OSError:
            continue


def chromium_bytes(measure: str = "pss") -> int:
    """RSS or PSS (bytes) summed over our Chromium processes."""
    name, label = MEASURES[measure]
    total = 0
    for pid in _our_chromium_pids():
        try:
            with open(f"/proc/{pid}/{name}") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith(label))
        except (OSError, StopIteration):
            continue
    return total


def anonymous_mappings(kind: str = "renderer") -> list[int]:
    """Sizes of the readable and writable anonymous mappings in our Chromium processes of
    ``kind`` (``--type=``): large buffers (a photo's pixels, a WASM heap) each have their own."""
    sizes = []
    for pid in _our_chromium_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"--type={kind}".encode() not in f.read().replace(b"\0", b" ").split():  # title rewritten
                    continue
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) == 5 and fields[1].startswith("rw"):  # no path: anonymous
                        lo, hi = (int(x, 16) for x in fields[0].split("-"))
                        sizes.append(hi - lo)
        except OSError:
            continue
    return sizes


def largest_mapping_bytes(kind: str = "renderer") -> int:
    """Size of the largest readable and writable anonymous mapping in our Chromium processes
    of ``kind``: in a renderer after an inference, ONNX Runtime's WASM heap (a WASM memory
    never shrinks, so its size is the heap's peak)."""
    return max(anonymous_mappings(kind), default=0)


class Peak:
    """``with Peak("rss") as p: ...`` then ``p.peak``: the largest sum seen, every 0.2 s."""

    def __init__(self, measure: str = "pss"):
        self.measure = measure
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, chromium_bytes(self.measure))
            self._stop.wait(0.2)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)

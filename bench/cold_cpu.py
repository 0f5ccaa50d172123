"""Where the CPU goes on a first visit: the browser app from navigation until its model is ready,
in a fresh (incognito) Chromium, with the CPU seconds each process kind and thread used.

    flock /tmp/alphacut-bench.lock .venv/bin/python bench/cold_cpu.py [--pairs 3] [QUERY ...]

On the 2-core machine a cold start keeps both cores busy, so its wall time moves with the
total CPU that the page, its workers, Chromium's other processes and the local server spend
before the model is ready; that total varies less from run to run than the wall time. CPU
times are read from /proc twice (before navigation, at 'ready'), never sampled in between (a
sampler slows threaded WASM). Each QUERY (e.g. '' and '?sw=off') is a variant of the page;
with several, they alternate, `--pairs` times, and each pass prints one line. Per-process
totals include threads that ended before 'ready' (the model's download helper); the
per-thread table (`--threads`) lists only the threads still alive then.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

TICK = os.sysconf("SC_CLK_TCK")


def _kind(pid: int) -> str:
    """'browser', 'renderer', 'gpu-process', 'network' (Chromium's utility process for it), … or
    'python' (this process: the local server and Playwright's client)."""
    if pid == os.getpid():
        return "python"
    try:
        # (Chromium rewrites its child processes' command lines as one space-separated string)
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return "?"
    kind = next((a.split("=", 1)[1] for a in cmd if a.startswith("--type=")), None)
    if kind is None:
        return "browser" if "chrom" in cmd[0] else Path(cmd[0]).name or "?"
    if kind == "utility" and any("network" in a for a in cmd):
        return "network"
    return kind


def _seconds(stat: str) -> float:
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def snapshot(pids: set[int]) -> tuple[collections.Counter, collections.Counter]:
    """CPU seconds so far: per process kind (exited threads included), and per (kind, thread
    name) of the live threads."""
    procs, threads = collections.Counter(), collections.Counter()
    for pid in pids:
        kind = _kind(pid)
        try:
            procs[kind] += _seconds(Path(f"/proc/{pid}/stat").read_text())
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            threads[(kind, stat[stat.index("(") + 1:stat.rindex(")")])] += _seconds(stat)
    return procs, threads


def one_pass(pw, url: str) -> dict:
    from browser.conftest import CHROMIUM
    from browser_bench import ARGS, descendants, wait_js

    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_context().new_page()
        pids = descendants(os.getpid()) | {os.getpid()}
        p0, t0 = snapshot(pids)
        start = time.perf_counter()
        page.goto(url)
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'ready' || e.type === 'fatal')", 180)
        wall = time.perf_counter() - start
        p1, t1 = snapshot(descendants(os.getpid()) | {os.getpid()})
        ready = page.evaluate("window.alphacut.events.find(e => e.type === 'ready')")
        if not ready:
            raise RuntimeError(page.evaluate("window.alphacut.events.find(e => e.type === 'fatal').message"))
    finally:
        browser.close()
    procs = {k: p1[k] - p0.get(k, 0) for k in p1}
    threads = {k: t1[k] - t0.get(k, 0) for k in t1}
    return {"wall_s": wall, "model_s": ready["timings"]["model"] / 1000, "session_s": ready["timings"]["session"] / 1000,
            "cpu_s": sum(procs.values()), "procs": procs, "threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries", nargs="*", default=[""], help="page query strings to compare ('' is the default page)")
    ap.add_argument("--pairs", type=int, default=1, help="passes per query, alternating")
    ap.add_argument("--threads", action="store_true", help="also print the CPU of each live thread (last pass)")
    args = ap.parse_args()

    from browser.conftest import Server
    from playwright.sync_api import sync_playwright

    from alphacut.models.catalog import DEFAULT_MODEL
    from alphacut.serve.app import create_app

    server = Server(create_app(model=DEFAULT_MODEL))
    runs: dict[str, list[dict]] = {q: [] for q in args.queries}
    try:
        with sync_playwright() as pw:
            for _ in range(args.pairs):
                for q in args.queries:
                    r = one_pass(pw, server.url + q)
                    runs[q].append(r)
                    kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["procs"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
                    print(f"[{q or 'default'}] to ready {r['wall_s']:.2f} s (model {r['model_s']:.2f}, session "
                          f"{r['session_s']:.2f}); CPU {r['cpu_s']:.2f} s: {kinds}", flush=True)
    finally:
        server.stop()
    if len(args.queries) > 1 or args.pairs > 1:
        for q, rs in runs.items():
            print(f"[{q or 'default'}] median: to ready {statistics.median(r['wall_s'] for r in rs):.2f} s, "
                  f"CPU {statistics.median(r['cpu_s'] for r in rs):.2f} s over {len(rs)} passes")
    if args.threads:
        last = runs[args.queries[-1]][-1]["threads"]
        for (kind, name), v in sorted(last.items(), key=lambda kv: -kv[1]):
            if v >= 0.02:
                print(f"  {v:6.2f} s  {kind:11s} {name}")


if __name__ == "__main__":
    main()

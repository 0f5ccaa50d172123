"""A real multi-node Ray cluster on one machine, every socket on 127.0.0.1: for the tests,
the benchmark and trying ``--ray-address`` without a cluster. Kept apart from the engine
(``alphacut.engines.ray``), which never needs it."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar, Self

import ray

_JOIN_SHIM = (
    "import sys, types, ray._private.ray_constants as rc, ray.scripts.scripts as s\n"
    "p = types.ModuleType('ray_constants'); p.__dict__.update(rc.__dict__); p.ENABLE_RAY_CLUSTER = True\n"
    "s.ray_constants = p\n"
    "sys.argv = ['ray'] + sys.argv[1:]\n"
    "s.main()\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A real multi-node Ray cluster on this machine, every socket on 127.0.0.1.

    For tests, benchmarks and trying ``--ray-address`` without a cluster. Each node is a
    ``ray start`` process tree in its own session; ``stop()`` kills those trees (and the
    workers under their raylets) by process id, never other Ray instances on the machine.

    Ray on Linux binds a node to the host's routable address; in the loopback mode it uses
    on macOS every address is 127.0.0.1 but a second node may not join. ``LOOPBACK_ENV``
    (below) selects that mode for every process of the cluster, and a few-line shim lets
    ``ray start --address`` join. The cluster has its own random token (Ray's token
    authentication); drivers need ``driver_env`` in their environment.
    """

    LOOPBACK_ENV: ClassVar[dict[str, str]] = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, *, object_store_mb: int = 200,
                 env: dict[str, str] | None = None, timeout: float = 120):
        self.temp_dir = tempfile.mkdtemp(prefix="acray", dir="/tmp")  # unix socket paths are short
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        #: What a driver's environment needs to use this cluster (loopback mode, its token).
        self.driver_env = {**self.LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.env = {**os.environ, **self.driver_env, **(env or {})}
        self.pgids: list[int] = []
        self.timeout = timeout
        try:
            for i in range(nodes):
                self._start_node(i, cpus_per_node, object_store_mb)
        except BaseException:
            self.stop()
            raise

    def _start_node(self, i: int, cpus: int, store_mb: int) -> None:
        args = [
            f"--num-cpus={cpus}", "--num-gpus=0", "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
            f"--object-store-memory={store_mb * 1_000_000}",
            f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
        ]
        if i == 0:
            args = ["--head", f"--port={self.port}", "--include-dashboard=false", *args]
        else:
            args = [f"--address={self.address}", *args]
        log = open(os.path.join(self.temp_dir, f"start-node{i}.log"), "wb")  # noqa: SIM115
        # Output to a file, never a pipe: the daemons inherit it and a pipe would never close.
        proc = subprocess.Popen(
            [sys.executable, "-c", _JOIN_SHIM, "start", *args], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pgids.append(proc.pid)
        try:
            rc = proc.wait(timeout=self.timeout)
        finally:
            log.close()
        if rc != 0:
            tail = Path(self.temp_dir, f"start-node{i}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ray start (node {i}) failed with exit code {rc}:\n{tail}")

    def wait_for_nodes(self, n: int, timeout: float = 60) -> None:
        """Block until ``n`` nodes are alive (run from a driver connected to the cluster)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for x in ray.nodes() if x.get("Alive")) >= n:
                return
            time.sleep(0.5)
        raise TimeoutError(f"fewer than {n} Ray nodes alive after {timeout} s")

    def processes(self) -> list:
        import psutil

        found = {}
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) in self.pgids:
                    found[proc.pid] = proc
                    for c in proc.children(recursive=True):
                        found[c.pid] = c
            except (psutil.Error, OSError):
                continue
        return list(found.values())

    def stop(self) -> None:
        import psutil

        procs = self.processes()
        for proc in procs:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)
        import shutil

        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

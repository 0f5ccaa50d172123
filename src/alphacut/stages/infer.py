"""Infer stage: one ONNX Runtime session per model file per process, run on one tensor.

Sessions are created lazily and cached (creating one costs about a second), so a batch, the
HTTP API and repeated ``Remover`` calls share one. Only the output the catalog names is
requested: IS-Net exports have 12 outputs, and asking for all of them costs memory and time.

For models in the store, the graph ONNX Runtime builds at its highest optimisation level is
saved once (``<store>/models/.ort-cache``) and later sessions load it with no optimisation
pass: 0.3 s less start-up for IS-Net here, the same kernels and outputs. That graph may hold
layouts for this CPU's instruction set, so its name carries the ONNX Runtime version, the
CPU's feature flags and the model file's size and time; a cache file that does not load is
replaced. ``ALPHACUT_ORT_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from alphacut.models.catalog import ModelSpec
from alphacut.errors import ModelError

_sessions: dict[tuple[str, int], "Session"] = {}
_lock = threading.Lock()


class Session:
    """An ONNX Runtime session plus the names of the input and the one output we read."""

    def __init__(self, path: Path, spec: ModelSpec, threads: int = 0):
        import onnxruntime as ort  # imported lazily: `alphacut --help` stays fast

        # If ONNX Runtime was imported before alphacut (so ORT_DISABLE_TELEMETRY came too
        # late), at least its usage events stay off.
        ort.disable_telemetry_events()

        cache = optimized_graph_path(path, ort.__version__)
        self.session = _load_cached(ort, cache, threads) if cache is not None else None
        if self.session is None:
            self.session = _build(ort, Path(path), threads, cache)
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, found {len(inputs)}")
        self.input_name = inputs[0].name
        names = [o.name for o in outputs]
        if isinstance(spec.output, str):
            if spec.output not in names:
                raise ModelError(f"{path}: no output named {spec.output!r} (has {names})")
            self.output_name = spec.output
        else:
            try:
                self.output_name = names[spec.output]
            except IndexError:
                raise ModelError(f"{path}: no output #{spec.output} (has {len(names)})") from None
        self.lock = threading.Lock()
        # Give the arena's free blocks back after each run: the full-resolution stages that
        # follow inference (upscale, refine, compose, encode) then do not stack on top of
        # the model's working memory.
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, tensor: np.ndarray) -> np.ndarray:
        with self.lock:  # ORT sessions are thread-safe, but two runs at once only fight for cores
            return self.session.run([self.output_name], {self.input_name: tensor}, self.run_options)[0]


def _session(ort, path: Path, threads: int, *, optimise: bool = True, save_to: Path | None = None):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Memory patterns pre-plan one big block per run: with them IS-Net peaks at 2.2 GiB
    # RSS, without them at 1.4 GiB for the same CPU time (measured here, 2 cores). The
    # arena stays on: turning it off saved a little more but cost ~25% CPU time.
    opts.enable_mem_pattern = False
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if save_to is not None:
        opts.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _load_cached(ort, cache: Path, threads: int):
    """The session from a cached optimised graph, or None (none yet, or it does not load:
    then it is removed and made again)."""
    if not cache.exists():
        return None
    try:
        return _session(ort, cache, threads, optimise=False)
    except Exception:
        cache.unlink(missing_ok=True)
        return None


def _build(ort, path: Path, threads: int, cache: Path | None):
    """The session from the model file, optimised; the optimised graph saved to ``cache``
    when given (if only the saving fails, the model still loads, uncached)."""
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        part = cache.with_name(f".{cache.name}.{os.getpid()}.part")
        try:
            session = _session(ort, path, threads, save_to=part)
        except Exception:
            part.unlink(missing_ok=True)
        else:
            _keep_cache(part, cache)
            return session
    try:
        return _session(ort, path, threads)
    except Exception as e:  # ORT raises its own exception types for bad files
        raise ModelError(f"{path}: ONNX Runtime cannot load this model: {e}") from None


def _keep_cache(part: Path, cache: Path) -> None:
    """Put a freshly saved optimised graph in place and drop the model's older ones (another
    ONNX Runtime version or CPU: 176 MB each for IS-Net)."""
    try:
        if not part.exists():
            return
        os.replace(part, cache)
    except OSError:
        part.unlink(missing_ok=True)
        return
    stem = cache.name.split(".", 1)[0]
    for old in cache.parent.glob(f"{stem}.*.onnx"):
        if old != cache:
            old.unlink(missing_ok=True)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def optimized_graph_path(path: Path, ort_version: str) -> Path | None:
    """Where the optimised graph of a store model is cached (None: not cached)."""
    from alphacut.models import store

    if os.environ.get("ALPHACUT_ORT_CACHE", "1") == "0":
        return None
    try:
        path = Path(path).resolve()
        root = store.models_dir().resolve()
        if root not in path.parents:
            return None  # a user's own file: nothing is written beside it
        st = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{ort_version}|{_cpu_flags()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return root / ".ort-cache" / f"{path.stem}.{key}.onnx"


def get_session(path: Path, spec: ModelSpec, threads: int | None = None) -> Session:
    threads = int(os.environ.get("ALPHACUT_THREADS", 0)) if threads is None else threads
    key = (str(Path(path).resolve()), threads)
    with _lock:
        s = _sessions.get(key)
        if s is None:
            s = _sessions[key] = Session(Path(path), spec, threads)
        return s


def infer(session: Session, tensor: np.ndarray) -> np.ndarray:
    return session.run(tensor)

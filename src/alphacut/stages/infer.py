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

The device (``--device``, ``Remover(device=...)``) picks ONNX Runtime's execution provider:
``cpu``, ``cuda`` (the ``onnxruntime-gpu`` build: ``pip install alphacut[gpu]``), ``dml``
(DirectML, ``onnxruntime-directml`` on Windows), ``coreml`` (macOS builds); ``auto`` takes
the first of cuda, dml, coreml that the installed build has, else the CPU. A device the build
lacks, or whose provider does not start (no driver, no GPU), falls back to the CPU with a
one-line notice (``Session.notice``; a ``Remover`` issues it as a ``DeviceFallbackWarning``,
which the CLI prints as a ``note:``); the session says which provider really runs. Only CPU sessions use the optimised-graph cache (a graph
optimised for one provider may hold nodes only that provider runs).
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alphacut.errors import ModelError
from alphacut.models.catalog import ModelSpec

_sessions: dict[tuple[str, int, str], Session] = {}
_lock = threading.Lock()

CPU = "CPUExecutionProvider"
#: Device name -> ONNX Runtime execution provider; ``auto`` tries them in this order.
PROVIDERS = {
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": CPU,
}
#: The values of ``--device`` (CLI, ``serve``), ``Remover(device=...)`` and ``remove(device=...)``.
DEVICES = ("auto", *PROVIDERS)
DEFAULT_DEVICE = "auto"
_HOW = {
    "cuda": "pip install 'alphacut[gpu]' (onnxruntime-gpu) and NVIDIA's CUDA runtime",
    "dml": "onnxruntime-directml, on Windows",
    "coreml": "an onnxruntime build for macOS",
}


class DeviceFallbackWarning(RuntimeWarning):
    """The device asked for is not usable here; inference runs on the CPU instead."""


@dataclass(frozen=True)
class DeviceChoice:
    """What a device request resolves to before a session exists: the device and provider
    to try first, and the notice if the request cannot be met by this build at all."""

    requested: str
    device: str
    provider: str
    notice: str | None = None


def available_providers() -> list[str]:
    """The execution providers compiled into the installed ONNX Runtime build."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    return device


def choose_device(requested: str = DEFAULT_DEVICE, available: list[str] | None = None) -> DeviceChoice:
    """Resolve ``requested`` against the providers of the installed build (``available``)."""
    check_device(requested)
    available = available_providers() if available is None else available
    if requested == "auto":
        for device, provider in PROVIDERS.items():
            if provider in available:
                return DeviceChoice(requested, device, provider)
        return DeviceChoice(requested, "cpu", CPU)
    provider = PROVIDERS[requested]
    if provider in available:
        return DeviceChoice(requested, requested, provider)
    return DeviceChoice(
        requested, "cpu", CPU,
        f"device {requested}: this ONNX Runtime build has no {provider} (it needs {_HOW[requested]}); running on the CPU",
    )


class Session:
    """An ONNX Runtime session plus the names of the input and the one output we read."""

    def __init__(self, path: Path, spec: ModelSpec, threads: int = 0, device: str = DEFAULT_DEVICE):
        import onnxruntime as ort  # imported lazily: `alphacut --help` stays fast

        # If ONNX Runtime was imported before alphacut (so ORT_DISABLE_TELEMETRY came too
        # late), at least its usage events stay off.
        ort.disable_telemetry_events()

        choice = choose_device(device, list(ort.get_available_providers()))
        self.requested = device
        self.notice = choice.notice
        self.session = None
        if choice.provider != CPU:
            try:
                self.session = _session(ort, Path(path), threads, providers=[choice.provider, CPU])
            except Exception as e:  # the provider's libraries or device are missing
                self.notice = f"device {choice.device}: {choice.provider} did not start ({_first_line(e)}); running on the CPU"
            else:
                running = self.session.get_providers()[0]
                if running != choice.provider:  # ONNX Runtime fell back by itself
                    self.notice = f"device {choice.device}: {choice.provider} did not start; running on the CPU"
                    self.session = None
        if self.session is None:
            cache = optimized_graph_path(path, ort.__version__)
            self.session = _load_cached(ort, cache, threads) if cache is not None else None
            if self.session is None:
                self.session = _build(ort, Path(path), threads, cache)
        #: The provider that runs, and its device name ("cpu", "cuda", ...).
        self.provider = self.session.get_providers()[0]
        self.device = next((d for d, p in PROVIDERS.items() if p == self.provider), self.provider)
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


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _session(ort, path: Path, threads: int, *, optimise: bool = True, save_to: Path | None = None, providers=(CPU,)):
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
    return ort.InferenceSession(str(path), opts, providers=list(providers))


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


def get_session(path: Path, spec: ModelSpec, threads: int | None = None, device: str = DEFAULT_DEVICE) -> Session:
    threads = int(os.environ.get("ALPHACUT_THREADS", 0)) if threads is None else threads
    key = (str(Path(path).resolve()), threads, check_device(device))
    with _lock:
        s = _sessions.get(key)
        if s is None:
            s = _sessions[key] = Session(Path(path), spec, threads, device)
        return s


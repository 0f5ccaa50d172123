"""The infer stage's sessions: the optimised graph of a store model is cached and reused."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from alphacut.models import catalog, store
from alphacut.stages import infer


def small_model(path, rng) -> None:
    """A Conv + BatchNorm + Relu graph: ONNX Runtime fuses it, so the optimised graph differs."""
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    bn = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
          (("s", rng.random(8) + 0.5), ("b", rng.standard_normal(8)), ("mu", rng.standard_normal(8)), ("var", rng.random(8) + 0.5))]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "mu", "var"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["output"], axes=[1], keepdims=1),
    ]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 32, 32])],
        [w, *bn],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def store_model(tmp_path, monkeypatch, rng):
    """A small model file inside a fresh store, a spec to load it with, and an input."""
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    model = store.models_dir() / "m" / "m.onnx"
    model.parent.mkdir(parents=True)
    small_model(model, rng)
    return model, catalog.CATALOG[catalog.DEFAULT_MODEL], rng.standard_normal((1, 3, 32, 32)).astype(np.float32)


def test_optimised_graph_cached_for_store_models_only(tmp_path, monkeypatch, rng):
    model, spec, x = store_model(tmp_path, monkeypatch, rng)

    first = infer.Session(model, spec)  # optimises, and saves the optimised graph
    cache = infer.optimized_graph_path(model, __import__("onnxruntime").__version__)
    assert cache is not None and cache.exists() and cache.parent.name == ".ort-cache"
    assert not list(cache.parent.glob(".*.part"))  # renamed into place
    stamp = cache.stat().st_mtime_ns
    import onnxruntime as ort

    loaded = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda p, *a, **k: loaded.append(p) or real(p, *a, **k))
    second = infer.Session(model, spec)  # loads the cached graph, writes nothing
    assert loaded == [str(cache)] and cache.stat().st_mtime_ns == stamp
    assert np.array_equal(first.run(x), second.run(x))

    cache.write_bytes(b"not an onnx graph")  # a broken cache file is replaced
    third = infer.Session(model, spec)
    assert np.array_equal(third.run(x), first.run(x)) and cache.stat().st_size > 1000

    assert infer.optimized_graph_path(model, "1.32.0") != infer.optimized_graph_path(model, "1.33.0")

    own = tmp_path / "mine.onnx"  # a user's own file: nothing written beside it or in the store
    small_model(own, rng)
    assert infer.optimized_graph_path(own, "1.32.0") is None
    infer.Session(own, spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "mine.onnx"]

    monkeypatch.setenv("ALPHACUT_ORT_CACHE", "0")
    assert infer.optimized_graph_path(model, "1.32.0") is None


def test_cache_failures_never_stop_the_model_loading(tmp_path, monkeypatch, rng):
    """If saving the optimised graph fails, the model loads uncached; a new cache entry
    replaces the model's older ones (another ONNX Runtime or CPU)."""
    model, spec, x = store_model(tmp_path, monkeypatch, rng)
    cache = infer.optimized_graph_path(model, __import__("onnxruntime").__version__)
    real = infer._session

    def no_saving(ort, path, threads, *, optimise=True, save_to=None):
        if save_to is not None:
            raise RuntimeError("cannot write the optimised graph")
        return real(ort, path, threads, optimise=optimise)

    monkeypatch.setattr(infer, "_session", no_saving)
    plain = infer.Session(model, spec)
    assert not cache.parent.exists() or not list(cache.parent.iterdir())
    monkeypatch.setattr(infer, "_session", real)
    cache.parent.mkdir(parents=True, exist_ok=True)
    stale = cache.parent / "m.0123456789abcdef.onnx"
    stale.write_bytes(b"an older build's graph")
    other = cache.parent / "other.0123456789abcdef.onnx"
    other.write_bytes(b"another model's graph")
    cached = infer.Session(model, spec)
    assert cache.exists() and not stale.exists() and other.exists()
    assert np.array_equal(plain.run(x), cached.run(x))


# ----------------------------------------------------------------------------- devices

CUDA, DML, COREML, CPU = (infer.PROVIDERS[d] for d in ("cuda", "dml", "coreml", "cpu"))


def test_device_choice_follows_the_installed_build():
    """auto takes the first GPU provider the build has, else the CPU; an explicit device the
    build lacks resolves to the CPU with a one-line notice saying what it would need."""
    assert infer.choose_device("auto", [CPU]) == infer.DeviceChoice("auto", "cpu", CPU)
    assert infer.choose_device("auto", [DML, CUDA, CPU]).device == "cuda"
    assert infer.choose_device("auto", [COREML, CPU]).provider == COREML
    assert infer.choose_device("cpu", [CUDA, CPU]).provider == CPU
    assert infer.choose_device("cuda", [CUDA, CPU]) == infer.DeviceChoice("cuda", "cuda", CUDA)
    for device, hint in (("cuda", "alphacut[gpu]"), ("dml", "directml"), ("coreml", "macOS")):
        c = infer.choose_device(device, [CPU])
        assert (c.device, c.provider) == ("cpu", CPU)
        assert c.notice.startswith(f"device {device}: ") and hint in c.notice and "\n" not in c.notice
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        infer.choose_device("gpu", [CPU])
    # the real (CPU) build of the test environment
    assert infer.choose_device("auto").device == "cpu" and CPU in infer.available_providers()


def test_real_cpu_session_reports_its_provider(tmp_path, monkeypatch, rng):
    model, spec, x = store_model(tmp_path, monkeypatch, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback notice for devices that need none
        cpu = infer.Session(model, spec, device="cpu")
        auto = infer.Session(model, spec, device="auto")
    for s in (cpu, auto):
        assert (s.device, s.provider, s.notice) == ("cpu", CPU, None)
    assert np.array_equal(cpu.run(x), auto.run(x))


def test_missing_device_falls_back_to_the_cpu_with_a_notice(tmp_path, monkeypatch, rng):
    """--device cuda on the CPU build: a DeviceFallbackWarning, the same output as the CPU."""
    model, spec, x = store_model(tmp_path, monkeypatch, rng)
    cpu = infer.Session(model, spec, device="cpu")
    s = infer.Session(model, spec, device="cuda")
    assert re.fullmatch(r"device cuda: .*alphacut\[gpu\].*running on the CPU", s.notice)
    assert (s.device, s.provider) == ("cpu", CPU)
    assert np.array_equal(s.run(x), cpu.run(x))


def test_provider_that_does_not_start_falls_back(tmp_path, monkeypatch, rng):
    """The build lists CUDA, but its session cannot start (no driver or GPU here): either
    ONNX Runtime raises, or it quietly runs on the CPU; both end on the CPU, with a notice,
    and a GPU session never goes through the optimised-graph cache."""
    import onnxruntime as ort

    model, spec, x = store_model(tmp_path, monkeypatch, rng)
    reference = infer.Session(model, spec, device="cpu").run(x)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    asked = []
    real = infer._session

    def recording(ort_, path, threads, **kw):
        asked.append((Path(path).name, tuple(kw.get("providers", (CPU,))), kw.get("save_to")))
        return real(ort_, path, threads, **kw)

    monkeypatch.setattr(infer, "_session", recording)
    # ONNX Runtime itself drops a provider it does not have (it warns) and runs on the CPU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ORT's own warning about the provider
        s = infer.Session(model, spec, device="auto")
    assert s.notice.startswith("device cuda: CUDAExecutionProvider did not start")
    assert asked[0] == ("m.onnx", (CUDA, CPU), None)  # tried first, without the cache
    assert all(p == (CPU,) for _, p, _ in asked[1:])  # then the CPU session
    assert (s.device, s.provider) == ("cpu", CPU) and np.array_equal(s.run(x), reference)

    def failing(ort_, path, threads, **kw):
        if kw.get("providers", (CPU,))[0] != CPU:
            raise RuntimeError("libcublasLt.so.12: cannot open shared object file\nmore detail")
        return real(ort_, path, threads, **kw)

    monkeypatch.setattr(infer, "_session", failing)
    s = infer.Session(model, spec, device="cuda")
    assert "did not start (libcublasLt.so.12: cannot open shared object file); running on the CPU" in s.notice
    assert (s.device, s.provider) == ("cpu", CPU) and np.array_equal(s.run(x), reference)


def test_sessions_are_cached_per_device(tmp_path, monkeypatch, rng):
    model, spec, _ = store_model(tmp_path, monkeypatch, rng)
    monkeypatch.setattr(infer, "_sessions", {})
    a = infer.get_session(model, spec, device="cpu")
    assert infer.get_session(model, spec, device="cpu") is a
    assert infer.get_session(model, spec, device="auto") is not a
    with pytest.raises(ValueError):
        infer.get_session(model, spec, device="tpu")


def test_cli_device_names_are_the_stage_s():
    from alphacut import cli

    assert tuple(d.value for d in cli.Device) == infer.DEVICES

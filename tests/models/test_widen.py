"""The float32 model derived from the fp16 one: exact weights, no float Casts, same outputs
(or only the one the catalog reads, without the nodes and weights it does not need),
deterministic bytes, installed through the store with its SHA-256 checked."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from alphacut.errors import ModelError
from alphacut.models import catalog, store
from alphacut.models.catalog import ModelFile, ModelSpec
from alphacut.models.widen import widen_fp16_graph


def fp16_graph(path, rng) -> None:
    """IS-Net's shape of fp16 build: float32 input cast to fp16, fp16 weights and compute
    (a fp16 Constant included), casts back to float32 at two graph outputs, one of which also
    feeds another node."""
    w = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float16), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float16), "b")
    w2 = numpy_helper.from_array((rng.standard_normal((1, 4, 1, 1))).astype(np.float16), "w2")
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array([0.5], np.float16), "k")),
        helper.make_node("Mul", ["r", "k"], ["m"]),
        helper.make_node("Cast", ["m"], ["side"], to=TensorProto.FLOAT),  # a graph output ...
        helper.make_node("ReduceMean", ["m"], ["rm"], axes=[1], keepdims=1),  # ... also used inside
        helper.make_node("Sigmoid", ["rm"], ["s"]),
        helper.make_node("Cast", ["s"], ["output"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["m", "w2"], ["d"], kernel_shape=[1, 1]),  # a deep-supervision head:
        helper.make_node("Cast", ["d"], ["deep"], to=TensorProto.FLOAT),  # read by no one at inference
    ]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 16, 16]),
         helper.make_tensor_value_info("side", TensorProto.FLOAT, [1, 4, 16, 16]),
         helper.make_tensor_value_info("deep", TensorProto.FLOAT, [1, 1, 16, 16])],
        [w, b, w2],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(["output", "side"], {"input": x})


def test_widened_graph_is_float32_exact_and_equivalent(tmp_path, rng):
    src, dst = tmp_path / "m16.onnx", tmp_path / "m32.onnx"
    fp16_graph(src, rng)
    widen_fp16_graph(src, dst)
    wide = onnx.load(dst)
    assert not [n for n in wide.graph.node if n.op_type == "Cast"]
    assert all(i.data_type == TensorProto.FLOAT for i in wide.graph.initializer)
    assert [o.name for o in wide.graph.output] == ["output", "side", "deep"]
    narrow = {i.name: numpy_helper.to_array(i) for i in onnx.load(src).graph.initializer}
    for i in wide.graph.initializer:  # every fp16 value is a float32 value: exact
        assert np.array_equal(numpy_helper.to_array(i), narrow[i.name].astype(np.float32))
    x = rng.random((1, 3, 16, 16), dtype=np.float32) - 0.5
    (o16, s16), (o32, s32) = run(src, x), run(dst, x)
    # ONNX Runtime's CPU backend has no fp16 kernels for these ops: it casts the fp16 graph's
    # nodes to float32 itself, so both graphs compute the same thing (the widened one without
    # the per-run casts). A GPU computing in fp16 would differ by about 1e-3.
    assert np.abs(o16 - o32).max() < 1e-5 and np.abs(s16 - s32).max() < 1e-5
    # deterministic: the catalog pins the derived file's SHA-256
    widen_fp16_graph(src, tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == dst.read_bytes()


@pytest.mark.parametrize("keep", ["output", 0])
def test_widened_graph_keeps_only_the_output_read(tmp_path, rng, keep):
    """The deep-supervision outputs go, with the nodes and weights only they used; the kept
    output is the same bit for bit. An output the graph lacks is an error, not a guess."""
    src, full, only = tmp_path / "m16.onnx", tmp_path / "full.onnx", tmp_path / "only.onnx"
    fp16_graph(src, rng)
    widen_fp16_graph(src, full)
    widen_fp16_graph(src, only, keep)
    g = onnx.load(only).graph
    assert [o.name for o in g.output] == ["output"]
    assert [n.op_type for n in g.node] == ["Conv", "Relu", "Constant", "Mul", "ReduceMean", "Sigmoid"]
    assert sorted(i.name for i in g.initializer) == ["b", "w"]  # w2 fed only the dropped head
    x = rng.random((1, 3, 16, 16), dtype=np.float32) - 0.5
    want = ort.InferenceSession(str(full), providers=["CPUExecutionProvider"]).run(["output"], {"input": x})[0]
    got = ort.InferenceSession(str(only), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert len(got) == 1 and np.array_equal(got[0], want)
    with pytest.raises(ModelError, match="no output 'mask'"):
        widen_fp16_graph(src, tmp_path / "bad.onnx", "mask")


def test_store_derives_then_checks_the_sha(tmp_path, monkeypatch, rng):
    """An ``npm:`` source with ``derive="fp32"``: chunks checked, graph widened, the result's
    SHA-256 compared with the catalog's; a wrong pin installs nothing."""
    src = tmp_path / "m16.onnx"
    fp16_graph(src, rng)
    payload = src.read_bytes()
    pkg = tmp_path / "pkg"
    (pkg / "dist").mkdir(parents=True)
    h = hashlib.sha256(payload).hexdigest()
    (pkg / "dist" / h).write_bytes(payload)
    (pkg / "dist" / "resources.json").write_text(json.dumps(
        {"/models/t": {"chunks": [{"hash": h, "offsets": [0, len(payload)]}], "size": len(payload), "mime": "x"}}))
    widen_fp16_graph(src, tmp_path / "expected.onnx", 0)  # the spec below reads output 0
    want = hashlib.sha256((tmp_path / "expected.onnx").read_bytes()).hexdigest()
    monkeypatch.setenv("ALPHACUT_DATA_PACKAGE", str(pkg))
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(catalog.IMGLY_CHUNKS, "/models/t", ((h, len(payload)),))
    for sha, ok in ((want, True), ("0" * 64, False)):
        spec = ModelSpec(id=f"t-{ok}", title="t", files=(ModelFile("t.onnx", None, sha, "npm:/models/t", "fp32"),),
                         input_size=(16, 16), mean=(0, 0, 0), std=(1, 1, 1), embedded=True)
        monkeypatch.setitem(catalog.CATALOG, spec.id, spec)
        if ok:
            path = store.install(spec.id)
            assert path.read_bytes() == (tmp_path / "expected.onnx").read_bytes()
            # a derived file the user already has is installed as it is (not widened again)
            path.unlink()
            with monkeypatch.context() as mp:
                mp.setattr(store, "_derive", lambda *a: pytest.fail("a user's file was converted"))
                got = store.install(spec.id, source_file=tmp_path / "expected.onnx")
            assert got == path and got.read_bytes() == (tmp_path / "expected.onnx").read_bytes()
        else:
            with pytest.raises(ModelError, match="expected 0000"):
                store.install(spec.id)
            assert not store.file_path(spec).exists()
            assert not list(store.file_path(spec).parent.glob("*.part*"))  # .part and .part.wide


@pytest.mark.model
def test_default_fp32_model_gives_the_fp16_models_mask(photos):
    """The catalog's claim: isnet-fp32 is the same network as isnet, only faster on CPUs."""
    from PIL import Image

    from alphacut import Remover

    assert catalog.DEFAULT_MODEL == "isnet-fp32"
    rgba = np.asarray(Image.open(photos["astronaut"]).convert("RGBA"))
    m32 = Remover("isnet-fp32", refine="none").predict_mask(rgba)
    m16 = Remover("isnet", refine="none").predict_mask(rgba)
    d = np.abs(m32 - m16)
    assert d.max() < 1e-3, d.max()
    assert np.abs(np.round(m32 * 255) - np.round(m16 * 255)).max() <= 1

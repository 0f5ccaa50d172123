"""Derive a float32 graph from an fp16 one (the embedded IS-Net "medium" weights).

Why: the data package ships IS-Net with fp16 weights *and* fp16 compute (float32 only at the
graph's input and outputs). ONNX Runtime's CPU and WASM backends have few fp16 kernels, so
they wrap every node in Cast pairs and widen the weights again on each run. Measured here:
the widened graph gives the same mask (max difference 4e-5) and runs about 8 % faster natively and
17-20 % faster in the browser's threaded WASM (README, models table; docs/browser.md).

The conversion is exact (every fp16 value is a float32 value) and deterministic: the result's
SHA-256 is pinned in the catalog and checked like any other model file.

It also keeps only the output the catalog reads (``keep_output``). IS-Net has twelve: the
final mask, five side masks and six decoder feature maps, all deep supervision for training.
ONNX Runtime runs every node of a graph whatever a run asks for, so the unread ones cost
time: without them, inference took about 4 % less in the browser's threaded WASM and 5 %
less natively (2-core machine, same inputs, same mask bit for bit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alphacut.errors import ModelError

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto data types
GRAPH, GRAPHS = 5, 10  # onnx.AttributeProto types (control flow's subgraphs)


def widen_fp16_graph(src: Path, dst: Path, keep_output: str | int | None = None) -> None:
    """Write ``src`` (an fp16 ONNX graph) to ``dst`` with float32 weights and no float Casts;
    with ``keep_output`` (a name or index), that output alone and the nodes it needs."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # a declared dependency; a broken install says so plainly
        raise ModelError(f"the onnx package is needed to derive the float32 model: {e}") from None

    model = onnx.load(str(src))
    g = model.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == FLOAT16:
            wide = numpy_helper.to_array(init).astype(np.float32)
            g.initializer[i].CopyFrom(numpy_helper.from_array(wide, init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == FLOAT16:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32), a.t.name))

    # Every Cast between float types is now an identity: route its consumers to its input.
    alias: dict[str, str] = {}
    kept = []
    for node in g.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and to in (FLOAT, FLOAT16):
            alias[node.output[0]] = node.input[0]
        else:
            kept.append(node)

    def source(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    for node in kept:
        for k, name in enumerate(node.input):
            if name:
                node.input[k] = source(name)
    # A graph output that came out of a Cast: the producing node now writes it directly.
    producer = {out: node for node in kept for out in node.output}
    graph_inputs = {i.name for i in g.input}
    for out in g.output:
        if out.name not in alias:
            continue
        src_name = source(out.name)
        if src_name in graph_inputs or src_name not in producer:
            raise ModelError(f"{src}: output {out.name} is not produced by a node; cannot widen")
        node = producer.pop(src_name)
        node.output[list(node.output).index(src_name)] = out.name
        producer[out.name] = node
        for other in kept:
            for k, name in enumerate(other.input):
                if name == src_name:
                    other.input[k] = out.name
    if keep_output is not None:
        kept = _only_output(g, kept, keep_output, src)
    del g.node[:]
    g.node.extend(kept)
    del g.value_info[:]  # fp16 shape annotations; ONNX Runtime infers them again
    for vi in [*g.input, *g.output]:
        if vi.type.tensor_type.elem_type == FLOAT16:
            vi.type.tensor_type.elem_type = FLOAT
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"{src}: the widened graph is not valid ONNX: {e}") from None
    with open(dst, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


def _only_output(g, nodes: list, keep: str | int, src: Path) -> list:
    """Leave ``keep`` as the graph's one output; return the nodes it depends on (in order) and
    drop the initializers nothing reads any more."""
    names = [o.name for o in g.output]
    name = names[keep] if isinstance(keep, int) and -len(names) <= keep < len(names) else keep
    if name not in names:
        raise ModelError(f"{src}: the graph has no output {keep!r} (it has {', '.join(names)})")
    out = next(o for o in g.output if o.name == name)
    del g.output[:]
    g.output.append(out)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    needed, todo = set(), [name]
    while todo:
        i = producer.get(todo.pop())
        if i is not None and i not in needed:
            needed.add(i)
            todo.extend(x for x in nodes[i].input if x)
    nodes = [n for i, n in enumerate(nodes) if i in needed]
    read = {x for n in nodes for x in n.input}
    if any(a.type in (GRAPH, GRAPHS) for n in nodes for a in n.attribute):
        return nodes  # control flow: its subgraphs may read initializers by name; keep them all
    weights = [w for w in g.initializer if w.name in read]
    del g.initializer[:]
    g.initializer.extend(weights)
    return nodes

"""ONNX graph passes that make exporter output digestible for onnx2torch (the Core ML route).

Measured on torch's legacy exporter output: onnx2torch fails on weights shared through ``Identity``
nodes, on ``Clip`` bounds that come from ``Constant`` nodes or are empty (''), and it bakes every
``Shape``-derived reshape into a constant when the result is traced, which breaks a flexible batch.
Each pass is ``ModelProto -> ModelProto``, returns a new model (the argument is not modified) and keeps
the graph's outputs numerically identical, except ``strip_nms``, which moves NMS to the host on purpose.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ExportError
from .passes import run_onnx
from .passes import simplify as simplify_graph

log = logging.getLogger(__name__)

NMS_METADATA_KEY = "spinepose_deploy.host_nms"  # JSON of the stripped NMS's settings, for the host
_SHAPE_PROBE_BATCHES = (2, 3)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of its subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for sub in _subgraphs(node):
            yield from _all_nodes(sub)


def _node_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names its subgraphs refer to."""
    names = {n for n in node.input if n}
    for sub in _subgraphs(node):
        for inner in _all_nodes(sub):
            names.update(n for n in inner.input if n)
    return names


def _rename_reads(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Point every consumer of a name in ``mapping`` (subgraphs included) at its new name."""
    for node in _all_nodes(graph):
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
    for out in graph.output:
        if out.name in mapping:
            out.name = mapping[out.name]


def _rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a node-produced tensor everywhere: producer, consumers, graph outputs, value_info."""
    for node in _all_nodes(graph):
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for vi in [*graph.output, *graph.value_info]:
        if vi.name == old:
            vi.name = new


def _unique(graph: onnx.GraphProto, base: str) -> str:
    used = {n for node in _all_nodes(graph) for n in [*node.input, *node.output]}
    used |= {t.name for t in graph.initializer} | {v.name for v in graph.input}
    name, i = base, 0
    while name in used:
        i += 1
        name = f"{base}_{i}"
    return name


def _const_value(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    """The value of an initializer or a ``Constant`` node output, else None."""
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            tensor = _constant_attr_tensor(node, name)
            return None if tensor is None else numpy_helper.to_array(tensor)
    return None


def _constant_attr_tensor(node: onnx.NodeProto, name: str) -> onnx.TensorProto | None:
    """The tensor a ``Constant`` node produces, or None for string/sparse constants (left as nodes)."""
    for attr in node.attribute:
        if attr.name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attr.t)
            tensor.name = name
            return tensor
        if attr.name == "value_float":
            return numpy_helper.from_array(np.array(attr.f, np.float32), name)
        if attr.name == "value_floats":
            return numpy_helper.from_array(np.array(list(attr.floats), np.float32), name)
        if attr.name == "value_int":
            return numpy_helper.from_array(np.array(attr.i, np.int64), name)
        if attr.name == "value_ints":
            return numpy_helper.from_array(np.array(list(attr.ints), np.int64), name)
    return None


def prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes and initializers that no graph output depends on (graph inputs are kept)."""
    model = _copy(model)
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed |= _node_reads(node)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    produced = {n for node in _all_nodes(graph) for n in node.output}
    infos = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return model


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """``passes.simplify`` (onnxslim, else onnxsim), keeping the model's metadata (stand-in marks, NMS)."""
    props = list(model.metadata_props)
    result = simplify_graph(_copy(model))
    existing = {p.key for p in result.metadata_props}
    result.metadata_props.extend(p for p in props if p.key not in existing)
    return result


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn top-level ``Constant`` nodes into initializers (onnx2torch reads many operands only there)."""
    model = _copy(model)
    graph = model.graph
    outputs = {o.name for o in graph.output}
    nodes, inits = [], []
    for node in graph.node:
        tensor = None
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output[0] not in outputs:
            tensor = _constant_attr_tensor(node, node.output[0])
        if tensor is None:
            nodes.append(node)
        else:
            inits.append(tensor)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    return model


def drop_empty_optional_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove trailing '' inputs; give ``Clip`` an explicit lowest-float min where min is '' but max is set.

    onnx2torch reads Clip's bounds by position and fails on an empty name, so an omitted min that
    precedes a given max is replaced by the dtype's lowest value (the same result).
    """
    model = _copy(model)
    graph = model.graph
    for node in _all_nodes(graph):
        while node.input and node.input[-1] == "":
            del node.input[-1]
        if node.op_type == "Clip" and len(node.input) == 3 and node.input[1] == "":
            bound = _const_value(graph, node.input[2])
            dtype = bound.dtype if bound is not None else np.dtype(np.float32)
            lowest = np.array(np.finfo(dtype).min if dtype.kind == "f" else np.iinfo(dtype).min, dtype)
            name = _unique(graph, f"{node.name or 'clip'}_min")
            graph.initializer.append(numpy_helper.from_array(lowest, name))
            node.input[1] = name
    return model


def resolve_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove ``Identity`` nodes (e.g. weights shared through them) by pointing consumers at their input.

    An Identity that produces a graph output stays, so output names do not change.
    """
    model = _copy(model)
    graph = model.graph
    outputs = {o.name for o in graph.output}
    mapping: dict[str, str] = {}
    nodes = []
    for node in graph.node:
        if node.op_type == "Identity" and node.domain in ("", "ai.onnx") and node.output[0] not in outputs:
            mapping[node.output[0]] = node.input[0]
        else:
            nodes.append(node)
    if not mapping:
        return model
    for key, value in mapping.items():  # chains: a -> b -> c resolves to the first name
        while value in mapping:
            value = mapping[value]
        mapping[key] = value
    del graph.node[:]
    graph.node.extend(nodes)
    _rename_reads(graph, mapping)
    infos = [v for v in graph.value_info if v.name not in mapping]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return model


def _skip_pre_top_k(name: str, producers: dict[str, onnx.NodeProto]) -> str:
    """The data input of a ``Gather`` whose indices come from a ``TopK`` (through reshapes); else ``name``."""
    node = producers.get(name)
    if node is None or node.op_type != "Gather":
        return name
    source, steps = producers.get(node.input[1]), 0
    while source is not None and source.op_type in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Cast") and steps < 4:
        source, steps = producers.get(source.input[0]), steps + 1
    return node.input[0] if source is not None and source.op_type == "TopK" else name


def strip_nms(model: onnx.ModelProto) -> onnx.ModelProto:
    """Cut a detector graph before its ``NonMaxSuppression``; expose what fed it as ``boxes`` and ``scores``.

    ``boxes`` is (B, A, 4) and ``scores`` (B, A, C) (NMS takes scores as (B, C, A); a feeding
    Transpose is skipped, otherwise one is added). The NMS settings (``center_point_box`` and the
    constant thresholds) go to ``metadata_props[NMS_METADATA_KEY]`` as JSON for the host. A graph
    without NMS is returned unchanged.
    """
    nms = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
    if not nms:
        return _copy(model)
    if len(nms) > 1:
        raise ExportError(
            f"strip_nms: the graph has {len(nms)} NonMaxSuppression nodes; only one can be moved to the host"
        )
    model = onnx.shape_inference.infer_shapes(_copy(model))
    graph = model.graph
    node = nms[0]
    boxes_src, scores_src = node.input[0], node.input[1]
    settings = _nms_settings(graph, node)
    producers = {o: n for n in graph.node for o in n.output}
    transpose = producers.get(scores_src)
    perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None) if transpose else None
    if transpose is not None and transpose.op_type == "Transpose" and perm == [0, 2, 1]:
        scores_src = transpose.input[0]
    else:
        transposed = _unique(graph, "scores_bac")
        graph.node.append(helper.make_node("Transpose", [scores_src], [transposed], perm=[0, 2, 1]))
        scores_src = transposed
    # mmdeploy-style graphs keep only the pre-top-k best anchors before NMS; expose every anchor instead:
    # a traced TopK can order ties differently from ONNX Runtime, and the host filters by score anyway.
    boxes_src, scores_src = _skip_pre_top_k(boxes_src, producers), _skip_pre_top_k(scores_src, producers)
    types = {v.name: v for v in [*graph.value_info, *graph.input, *graph.output]}
    outputs = []
    for new, src in (("boxes", boxes_src), ("scores", scores_src)):
        src = _expose(graph, src, new)
        info = onnx.ValueInfoProto()
        if src in types:
            info.CopyFrom(types[src])
        else:
            info.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        info.name = new
        outputs.append(info)
    del graph.output[:]
    graph.output.extend(outputs)
    _set_metadata(model, NMS_METADATA_KEY, json.dumps(settings, sort_keys=True))
    return prune(model)


def _expose(graph: onnx.GraphProto, src: str, name: str) -> str:
    """Make tensor ``src`` available under ``name`` (renaming it, or via Identity for inputs/initializers)."""
    if src == name:
        return src
    if any(n == name for node in _all_nodes(graph) for n in node.output):
        _rename_tensor(graph, name, _unique(graph, f"{name}_orig"))  # free the name
    if src in {v.name for v in graph.input} | {t.name for t in graph.initializer}:
        graph.node.append(helper.make_node("Identity", [src], [name]))
    else:
        _rename_tensor(graph, src, name)
    return src


def _nms_settings(graph: onnx.GraphProto, node: onnx.NodeProto) -> dict:
    settings: dict = {"center_point_box": 0}
    for attr in node.attribute:
        if attr.name == "center_point_box":
            settings["center_point_box"] = int(attr.i)
    keys = ("max_output_boxes_per_class", "iou_threshold", "score_threshold")
    for key, name in zip(keys, list(node.input[2:]) + [""] * 3, strict=False):
        value = _const_value(graph, name) if name else None
        settings[key] = None if value is None else value.reshape(-1)[0].item()
    return settings


def _set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props[key] = value
    helper.set_model_props(model, props)


def set_static_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """Fix dim 0 of every graph input to ``batch`` (then ``simplify`` can fold all shape arithmetic)."""
    model = _copy(model)
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch
    return model


def batch_agnostic_reshapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace batch-dependent computed ``Reshape`` shapes by constants using -1 (or 0) for the batch.

    onnx2torch turns ``Shape`` into a constant when traced, so a reshape computed from the input's
    shape would keep the trace batch forever. The computed shapes are evaluated in ONNX Runtime at
    two batch sizes: equal -> constant; different only at one position that scales with the batch ->
    constant with -1 there (0 if the shape already has a -1 and that axis is copied from the input).
    Anything else is left alone (and the writer's check at a second batch size reports it).
    """
    model = _copy(model)
    graph = model.graph
    produced = {o for n in graph.node for o in n.output}
    reshapes = [n for n in graph.node if n.op_type == "Reshape" and n.input[1] in produced]
    feeds = _probe_feeds(graph)
    if not reshapes or feeds is None:
        return model
    probe = _copy(model)
    pairs = []  # per reshape: (its shape tensor, the shape of its data tensor)
    for i, node in enumerate(reshapes):
        data_shape = _unique(probe.graph, f"_probe_shape_{i}")
        probe.graph.node.append(helper.make_node("Shape", [node.input[0]], [data_shape]))
        pairs.append((node.input[1], data_shape))
    names = list(dict.fromkeys(n for pair in pairs for n in pair))
    existing = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.ValueInfoProto(name=n) for n in names if n not in existing)
    runs = [run_onnx(probe, feed) for feed in feeds]
    fixed = 0
    for node, (shape_name, data_name) in zip(reshapes, pairs, strict=True):
        target = _constant_shape([r[shape_name] for r in runs], [r[data_name] for r in runs])
        if target is None:
            continue
        name = _unique(graph, f"{node.name or 'reshape'}_shape")
        graph.initializer.append(numpy_helper.from_array(target, name))
        node.input[1] = name
        fixed += 1
    log.debug("batch_agnostic_reshapes: %d of %d computed reshape shapes made constant", fixed, len(reshapes))
    return prune(model) if fixed else model


def _probe_feeds(graph: onnx.GraphProto) -> list[dict[str, np.ndarray]] | None:
    """Random feeds at each probe batch, or None if an input has a symbolic dim other than the batch."""
    inits = {t.name for t in graph.initializer}
    feeds: list[dict[str, np.ndarray]] = [{} for _ in _SHAPE_PROBE_BATCHES]
    rng = np.random.default_rng(0)
    for inp in graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        rest = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if not dims or any(d is None for d in rest):
            return None
        dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        for feed, batch in zip(feeds, _SHAPE_PROBE_BATCHES, strict=True):
            shape = [batch, *rest]
            value = rng.standard_normal(shape) if dtype.kind == "f" else np.zeros(shape)
            feed[inp.name] = value.astype(dtype)
    return feeds


def _constant_shape(shapes: list[np.ndarray], data_shapes: list[np.ndarray]) -> np.ndarray | None:
    """The constant Reshape target valid at every batch, from its values at the probe batches, or None."""
    (b1, b2), (v1, v2) = _SHAPE_PROBE_BATCHES, [s.astype(np.int64) for s in shapes]
    if v1.shape != v2.shape or v1.ndim != 1:
        return None
    if (v1 == v2).all():
        return v1
    diff = np.flatnonzero(v1 != v2)
    if len(diff) != 1 or v1[diff[0]] * b2 != v2[diff[0]] * b1:
        return None
    axis, target = int(diff[0]), v1.copy()
    if -1 not in target:
        target[axis] = -1
        return target
    d1, d2 = data_shapes
    if axis < min(len(d1), len(d2)) and d1[axis] == v1[axis] and d2[axis] == v2[axis]:
        target[axis] = 0  # allowzero=0: copy this axis from the input
        return target
    return None


def sanitize_for_torch(
    model: onnx.ModelProto, *, keep_nms: bool = False, static_batch: int | None = None
) -> onnx.ModelProto:
    """All passes in order: strip NMS, static batch (if given), simplify, constants -> initializers,
    empty optional inputs, Identity resolution, batch-agnostic reshapes (dynamic batch only)."""
    if not keep_nms:
        model = strip_nms(model)
    if static_batch is not None:
        model = set_static_batch(model, static_batch)
    model = simplify(model)
    model = constants_to_initializers(model)
    model = drop_empty_optional_inputs(model)
    model = resolve_identities(model)
    if static_batch is None:
        model = batch_agnostic_reshapes(model)
    return model

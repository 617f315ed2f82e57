"""TensorRT's ONNX rules, checked on the ONNX graph alone (no TensorRT, no GPU needed).

What the TensorRT exporter hands to ``trt.OnnxParser`` is checked here first, so a graph TensorRT would refuse
stops the export with one line naming the node and the rule, on any machine. The rules are the ONNX-TensorRT
support matrix (``onnx/onnx-tensorrt`` ``docs/operators.md``, TensorRT 10.x: opsets 9-20) plus the layer limits
of the TensorRT API documentation, restricted to what a static read can decide:

- ``opset``                (note) ai.onnx opset outside 9..20, the matrix's tested range (the TensorRT-RTX 1.7
                           parser builds opset 7 and 22 graphs of supported ops, so it is not an error)
- ``unsupported-op``       an op the matrix marks unsupported, or a custom domain (no plugin is registered)
- ``dq-type``              DequantizeLinear of anything but INT8 / FP8 / INT4 (int32 bias DQs from
                           ORT's QuantizeBias=True, uint8 activations): IDequantizeLayer refuses them
- ``qdq-zero-point``       non-zero Q/DQ zero point (TensorRT quantization is symmetric)
- ``dq-scalar``            a 0-d quantized constant feeding DequantizeLinear (ORT's quantizer leaves them for
                           scalar operands such as LayerNorm's epsilon): the parser reshapes it before the DQ and
                           the builder refuses "Quantized constant ... is only allowed before DQ" (found by the
                           TensorRT-RTX builder; NVIDIA/TensorRT#3919); ``fix_scalar_dq`` gives them shape [1]
- ``no-kernel``            (TensorRT-RTX) NonMaxSuppression / NonZero: "has no runners that implement it" for
                           every target; the detector is cut before NMS and NMS runs on the host
- ``topk-k``               TopK whose K can exceed 3840 (ITopKLayer limit); ``topk-sorted`` (note): sorted=0
                           (TensorRT returns sorted results, which sorted=0 allows; the builder accepts it)
- ``constant-input``       an input the importer needs at build time (axes, NMS parameters, TopK's K when
                           static) that is computed at run time
- ``dynamic-shape``        a graph input with a dynamic dim other than the batch: no optimisation profile
- ``pool-dilations``, ``maxpool-indices``, ``resize-mode``, ``scatternd-reduction``, ``layernorm-outputs``:
                           attribute restrictions of the matrix (Resize: nearest, linear and cubic modes; the
                           builder refuses antialias and tf_crop_and_resize)
Every error rule's example graph (``tests/_trt_rule_examples.py``) is refused by the real TensorRT-RTX builder
in the fast tests, and every small-mode graph these rules pass is built by it.
Notes (recorded, not errors): data-dependent outputs (NonMaxSuppression, NonZero: the engine needs an output
allocator), NMS with more boxes than INMSLayer's TopK box limit (5000), INT64 constants outside INT32 range
(TensorRT clamps them), FLOAT64 tensors (cast to FP32), TopK with a K known only at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

OPSET_RANGE = (9, 20)  # onnx-tensorrt 10.x: "supports operators in the inclusive range of opset 9 to opset 20"
MAX_TOPK = 3840  # ITopKLayer: k <= 3840
NMS_TOPK_BOX_LIMIT = 5000  # INMSLayer::setTopKBoxLimit default and maximum on the GPUs TensorRT 10 supports
QUANTIZED_TYPES = {TensorProto.INT8, TensorProto.FLOAT8E4M3FN, TensorProto.INT4}
# "N" rows of the support matrix (TensorRT 10.x)
UNSUPPORTED_OPS = frozenset(
    [
        "AffineGrid",
        "Bernoulli",
        "BitShift",
        "BitwiseAnd",
        "BitwiseNot",
        "BitwiseOr",
        "BitwiseXor",
        "BlackmanWindow",
        "Col2Im",
        "CenterCropPad",
        "Compress",
        "ConcatFromSequence",
        "ConvInteger",
        "DFT",
        "Det",
        "DynamicQuantizeLinear",
        "HammingWindow",
        "HannWindow",
        "ImageDecoder",
        "MatMulInteger",
        "MaxRoiPool",
        "MaxUnpool",
        "MelWeightMatrix",
        "Multinomial",
        "NegativeLogLikelihoodLoss",
        "Optional",
        "OptionalGetElement",
        "OptionalHasElement",
        "QLinearConv",
        "QLinearMatMul",
        "RegexFullMatch",
        "STFT",
        "SequenceAt",
        "SequenceConstruct",
        "SequenceEmpty",
        "SequenceErase",
        "SequenceInsert",
        "SequenceLength",
        "SequenceMap",
        "SoftmaxCrossEntropyLoss",
        "SplitToSequence",
        "StringConcat",
        "StringNormalizer",
        "StringSplit",
        "TfIdfVectorizer",
        "Unique",
    ]
)
REDUCE_OPS = frozenset(
    [
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "ReduceSumSquare",
    ]
)
DATA_DEPENDENT_OPS = frozenset({"NonMaxSuppression", "NonZero"})
# flavour (backend name) -> ops its builder has no kernel for, on any target
NO_KERNEL_OPS = {"tensorrt": frozenset(), "tensorrt-rtx": DATA_DEPENDENT_OPS}
RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class Finding:
    rule: str
    node: str
    op: str
    message: str
    error: bool = True

    def line(self) -> str:
        return f"node '{self.node}' ({self.op}): TensorRT rule {self.rule}: {self.message}"


@dataclass(frozen=True)
class Report:
    """Every finding on one graph; ``errors`` would stop the TensorRT parser or builder."""

    graph: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    flavour: str = "tensorrt"  # whose builder the rules were checked for (NO_KERNEL_OPS differ)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if not f.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def first_error(self) -> str:
        """One line for the user: the first broken rule and how many more there are."""
        errors = self.errors
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{self.graph}: {errors[0].line()}{more}" if errors else ""

    def to_dict(self) -> dict:
        return {
            "checked": f"{self.flavour}: onnx-tensorrt 10.x support matrix, TensorRT layer limits and what the "
            "TensorRT-RTX builder refused (static, no GPU)",
            "passed": self.ok,
            "errors": [f.line() for f in self.errors],
            "notes": [f.line() for f in self.notes],
        }


def check(model: onnx.ModelProto, name: str = "graph", flavour: str = "tensorrt") -> Report:
    """Check ``model`` against the ONNX rules of ``flavour``'s builder ('tensorrt' | 'tensorrt-rtx').

    Dynamic batch (axis 0) is fine: the profile covers it."""
    graph = _Graph(model)
    findings = [*_check_opset(model), *_check_inputs(model)]
    missing = NO_KERNEL_OPS[flavour]
    for node in model.graph.node:
        found = list(_check_node(graph, node))
        if node.op_type in missing:  # the note "sized at run time" becomes: no kernel at all
            found = [f for f in found if f.rule != "data-dependent"] + [
                Finding(
                    "no-kernel",
                    _label(node),
                    node.op_type,
                    f"{flavour} has no kernel for it on any GPU; cut the graph before it (NMS on the host)",
                )
            ]
        findings.extend(found)
    findings.extend(_check_types(graph))
    return Report(name, tuple(findings), flavour)


# ------------------------------------------------------------------------------------------ graph view


class _Graph:
    """Constants, producers and inferred types of a graph, for the rules below."""

    def __init__(self, model: onnx.ModelProto) -> None:
        try:  # types of intermediate tensors (Q/DQ inputs); shapes of what TopK / NMS read
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        except Exception:  # a graph onnx cannot infer still gets the structural checks
            inferred = model
        g = inferred.graph
        self.constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for node in g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.nodes = list(g.node)
        self.producer = {out: node for node in g.node for out in node.output}
        self.types: dict[str, onnx.TypeProto] = {v.name: v.type for v in [*g.input, *g.value_info, *g.output]}
        self.elem = {i.name: i.data_type for i in g.initializer}
        self.elem.update({n: t.tensor_type.elem_type for n, t in self.types.items() if t.HasField("tensor_type")})
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    def shape(self, name: str) -> list[int | None] | None:
        if name in self.constants:
            return list(self.constants[name].shape)
        kind = self.types.get(name)
        if kind is None or not kind.HasField("tensor_type") or not kind.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else None for d in kind.tensor_type.shape.dim]

    def is_constant(self, name: str) -> bool:
        """Known at build time: an initializer, a Constant, or a shape computation of static shapes."""
        return self.value(name) is not None

    def value(self, name: str, depth: int = 0) -> np.ndarray | None:
        """The value of an integer tensor when it follows from constants and static shapes, else None."""
        if name in self.constants:
            return self.constants[name]
        node = self.producer.get(name)
        if node is None or depth > 32:
            return None
        if node.op_type == "Shape":
            shape = self.shape(node.input[0])
            return None if shape is None or None in shape else np.array(shape, np.int64)
        args = [self.value(i, depth + 1) for i in node.input if i]
        if any(a is None for a in args):
            return None
        ops = {
            "Identity": lambda: args[0],
            "Cast": lambda: args[0],
            "Min": lambda: np.minimum.reduce(args),
            "Max": lambda: np.maximum.reduce(args),
            "Concat": lambda: np.concatenate([np.atleast_1d(a) for a in args]),
            "Gather": lambda: np.take(args[0], args[1], axis=_attr(node, "axis", 0)),
            "Squeeze": lambda: args[0].reshape(-1) if args[0].size == 1 else None,
            "Unsqueeze": lambda: args[0].reshape(-1) if args[0].size == 1 else None,
            "Reshape": lambda: args[0].reshape(-1) if args[0].size == 1 else None,
        }
        compute = ops.get(node.op_type)
        return compute() if compute is not None else None

    def upper_bound(self, name: str, depth: int = 0) -> int | None:
        """Largest value an integer scalar can take: its constant value, or the smallest bound of a Min."""
        value = self.value(name)
        if value is not None:
            return int(np.max(value))
        node = self.producer.get(name)
        if node is None or depth > 32:
            return None
        if node.op_type in ("Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape"):
            return self.upper_bound(node.input[0], depth + 1)
        if node.op_type == "Min":
            bounds = [b for b in (self.upper_bound(i, depth + 1) for i in node.input) if b is not None]
            return min(bounds) if bounds else None
        return None


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _text(value: object) -> object:
    return value.decode() if isinstance(value, bytes) else value


def _label(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else "?")


# ------------------------------------------------------------------------------------------ the rules


def _check_opset(model: onnx.ModelProto) -> Iterable[Finding]:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= entry.version <= OPSET_RANGE[1]:
            low, high = OPSET_RANGE
            yield Finding(
                "opset",
                "<graph>",
                "opset_import",
                f"ai.onnx opset {entry.version}; the support matrix is tested on {low}-{high}",
                error=False,
            )


def _check_inputs(model: onnx.ModelProto) -> Iterable[Finding]:
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        if [i for i in dynamic if i != 0]:
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            yield Finding(
                "dynamic-shape",
                value.name,
                "input",
                f"shape {shape} is dynamic beyond the batch axis; the optimisation profile covers only the batch",
            )


def _need_constant(graph: _Graph, node: onnx.NodeProto, index: int, what: str) -> Iterable[Finding]:
    if len(node.input) > index and node.input[index] and not graph.is_constant(node.input[index]):
        yield Finding("constant-input", _label(node), node.op_type, f"{what} must be known at build time")


def _check_node(graph: _Graph, node: onnx.NodeProto) -> Iterable[Finding]:
    op, label = node.op_type, _label(node)
    if node.domain not in ("", "ai.onnx"):
        yield Finding("unsupported-op", label, op, f"custom domain '{node.domain}' (no TensorRT plugin registered)")
        return
    if op in UNSUPPORTED_OPS:
        yield Finding("unsupported-op", label, op, "not in the onnx-tensorrt support matrix")
    if op in ("QuantizeLinear", "DequantizeLinear"):
        yield from _check_qdq(graph, node)
    elif op == "TopK":
        yield from _check_topk(graph, node)
    elif op == "NonMaxSuppression":
        for index, what in ((2, "max_output_boxes_per_class"), (3, "iou_threshold"), (4, "score_threshold")):
            yield from _need_constant(graph, node, index, what)
        boxes = graph.shape(node.input[0])
        if boxes and len(boxes) == 3 and boxes[1] and boxes[1] > NMS_TOPK_BOX_LIMIT:
            yield Finding(
                "nms-boxes",
                label,
                op,
                f"{boxes[1]} candidate boxes; INMSLayer considers at most {NMS_TOPK_BOX_LIMIT} after the score "
                "threshold (TopK box limit)",
                error=False,
            )
    elif op in ("Slice",):
        yield from _need_constant(graph, node, 3, "axes")
    elif (
        op in ("Squeeze", "Unsqueeze")
        and graph.opset >= 13
        or op in REDUCE_OPS
        and (graph.opset >= 18 or op == "ReduceSum" and graph.opset >= 13)
    ):
        yield from _need_constant(graph, node, 1, "axes")
    elif op == "Pad":
        yield from _need_constant(graph, node, 3, "axes")
    elif op in ("AveragePool", "MaxPool", "LpPool"):
        dilations = _attr(node, "dilations", [])
        if any(d != 1 for d in dilations):
            yield Finding("pool-dilations", label, op, f"dilations {list(dilations)}; must be empty or all ones")
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            yield Finding("maxpool-indices", label, op, "the Indices output is not supported")
    elif op == "Resize":
        yield from _check_resize(node)
    elif op == "ScatterND" and _text(_attr(node, "reduction", "none")) != "none":
        yield Finding("scatternd-reduction", label, op, "reduction is not supported")
    elif op == "LayerNormalization" and len([o for o in node.output if o]) > 1:
        yield Finding("layernorm-outputs", label, op, "only the first output Y is supported")
    if op in DATA_DEPENDENT_OPS:
        yield Finding(
            "data-dependent",
            label,
            op,
            "output shape depends on the data: the engine sizes it at run time (IOutputAllocator)",
            error=False,
        )


def _check_qdq(graph: _Graph, node: onnx.NodeProto) -> Iterable[Finding]:
    label, op = _label(node), node.op_type
    if op == "DequantizeLinear":
        if _is_scalar_quantized(graph.constants, graph.elem, node.input[0]):
            yield Finding(
                "dq-scalar",
                label,
                op,
                f"quantized constant '{node.input[0]}' is 0-d; the parser reshapes it before the DQ and the "
                "builder refuses that (give it shape [1]: tensorrt_rules.fix_scalar_dq)",
            )
        kind = graph.elem.get(node.input[0])
        if kind is not None and kind not in QUANTIZED_TYPES:
            yield Finding(
                "dq-type",
                label,
                op,
                f"input '{node.input[0]}' is {TensorProto.DataType.Name(kind)}; TensorRT dequantizes only "
                "INT8, FP8 and INT4 (quantize without QuantizeBias for TensorRT)",
            )
    if len(node.input) > 2 and node.input[2]:
        zero = graph.value(node.input[2]) if graph.elem.get(node.input[2]) != TensorProto.FLOAT else None
        kind = graph.elem.get(node.input[2])
        if kind == TensorProto.UINT8:
            yield Finding("dq-type", label, op, "uint8 zero point; TensorRT quantizes to INT8 only (symmetric)")
        elif zero is not None and np.any(zero != 0):
            yield Finding("qdq-zero-point", label, op, "non-zero zero point; TensorRT quantization is symmetric")


def _check_topk(graph: _Graph, node: onnx.NodeProto) -> Iterable[Finding]:
    label = _label(node)
    if _attr(node, "sorted", 1) != 1:
        yield Finding("topk-sorted", label, "TopK", "sorted=0; TensorRT returns sorted results", error=False)
    if len(node.input) < 2:  # opset < 10: K is an attribute
        k = int(_attr(node, "k", 1))
        bound: int | None = k
    else:
        bound = graph.upper_bound(node.input[1])
    if bound is None:  # K known only at run time: the axis length bounds it when static
        shape = graph.shape(node.input[0])
        axis = int(_attr(node, "axis", -1))
        if shape and -len(shape) <= axis < len(shape):
            bound = shape[axis]
    if bound is None:
        yield Finding(
            "topk-k",
            label,
            "TopK",
            f"K is computed at run time and not provably <= {MAX_TOPK}; TensorRT fails at run time above it",
            error=False,
        )
    elif bound > MAX_TOPK:
        yield Finding("topk-k", label, "TopK", f"K can be {bound}; TensorRT allows K <= {MAX_TOPK}")


def _check_resize(node: onnx.NodeProto) -> Iterable[Finding]:
    label = _label(node)
    mode = _text(_attr(node, "mode", "nearest"))
    transform = _text(_attr(node, "coordinate_transformation_mode", "half_pixel"))
    nearest = _text(_attr(node, "nearest_mode", "round_prefer_floor"))
    problems = []
    if mode not in ("nearest", "linear", "cubic"):
        problems.append(f"mode '{mode}'")
    if transform not in RESIZE_TRANSFORMS:
        problems.append(f"coordinate_transformation_mode '{transform}'")
    if mode == "nearest" and nearest not in RESIZE_NEAREST:
        problems.append(f"nearest_mode '{nearest}'")
    if _attr(node, "antialias", 0):
        problems.append("antialias")
    if _text(_attr(node, "keep_aspect_ratio_policy", "stretch")) != "stretch":
        problems.append("keep_aspect_ratio_policy other than stretch")
    if problems:
        yield Finding("resize-mode", label, "Resize", f"{', '.join(problems)} not supported")


def _check_types(graph: _Graph) -> Iterable[Finding]:
    # Slice clamps starts/ends to the axis anyway: PyTorch's INT64_MAX "to the end" is harmless there
    slice_bounds = {n.input[i] for n in graph.nodes if n.op_type == "Slice" for i in (1, 2) if len(n.input) > i}
    other_uses = {i for n in graph.nodes for k, i in enumerate(n.input) if not (n.op_type == "Slice" and k in (1, 2))}
    for name, array in graph.constants.items():
        if name in slice_bounds and name not in other_uses:
            continue
        if array.dtype == np.int64 and array.size and (array.min() < INT32.min or array.max() > INT32.max):
            yield Finding(
                "int64-range",
                name,
                "constant",
                "INT64 values outside INT32 range; TensorRT clamps them (fine for Slice ends, wrong elsewhere)",
                error=False,
            )
    doubles = sorted(n for n, kind in graph.elem.items() if kind == TensorProto.DOUBLE)
    if doubles:
        yield Finding(
            "float64",
            doubles[0],
            "tensor",
            f"{len(doubles)} FLOAT64 tensor(s); TensorRT casts them to FP32",
            error=False,
        )


def cap_topk(model: onnx.ModelProto, limit: int = MAX_TOPK) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` whose TopK nodes take at most ``limit`` (TensorRT's maximum), and what changed.

    A constant K above the limit is lowered; a run-time K that cannot be proven below it gets a ``Min`` with
    the limit in front. Only the TopKs that could break the rule change: for a detector's pre-NMS top-k
    (mmdeploy keeps 5000 of 8400 anchors at 640) this drops only the lowest-scoring candidates, which
    the score threshold and NMS drop anyway; the exporter verifies outputs against the original. mmdeploy's own
    export computes that K in the graph (its ``topk__dynamic`` rewriter: K = min(pre_top_k, A) via ``Shape``),
    which ``_Graph.upper_bound`` follows through Shape / Gather / Min, so a real end2end.onnx is capped alike.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = _Graph(out)
    changed: list[str] = []
    initializers = {i.name: i for i in out.graph.initializer}
    for node in [n for n in out.graph.node if n.op_type == "TopK" and len(n.input) > 1]:
        findings = [f for f in _check_topk(graph, node) if f.rule == "topk-k" and f.error]
        if not findings:
            continue
        k_name = node.input[1]
        uses = sum(k_name in n.input for n in out.graph.node)
        if k_name in initializers and uses == 1:
            initializers[k_name].CopyFrom(numpy_helper.from_array(np.array([limit], np.int64), k_name))
        else:
            cap, capped = f"{_label(node)}/tensorrt_k_cap", f"{_label(node)}/tensorrt_k"
            out.graph.initializer.append(numpy_helper.from_array(np.array([limit], np.int64), cap))
            index = list(out.graph.node).index(node)
            out.graph.node.insert(index, onnx.helper.make_node("Min", [k_name, cap], [capped], name=capped))
            node.input[1] = capped
        changed.append(f"TopK '{_label(node)}': K capped at {limit} for TensorRT ({findings[0].message})")
    return out, changed


def _is_scalar_quantized(constants: dict[str, np.ndarray], elem: dict[str, int], name: str) -> bool:
    value = constants.get(name)
    return value is not None and value.ndim == 0 and elem.get(name) in QUANTIZED_TYPES


def fix_scalar_dq(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` whose 0-d quantized constants feeding DequantizeLinear have shape [1] (rule dq-scalar).

    Per-tensor DequantizeLinear is elementwise, so the values are the same; the DQ output becomes [1] instead
    of a scalar, which broadcasts the same in the ops that read it (ONNX Runtime outputs stay bit-identical,
    tested). Returns (model, names changed); the model is returned as is when nothing changes.
    """
    initializers = {i.name: i for i in model.graph.initializer}
    elem = {name: i.data_type for name, i in initializers.items()}
    constants = {name: numpy_helper.to_array(i) for name, i in initializers.items() if not i.dims}
    names = sorted(
        {
            n.input[0]
            for n in model.graph.node
            if n.op_type == "DequantizeLinear" and _is_scalar_quantized(constants, elem, n.input[0])
        }
    )
    if not names:
        return model, []
    out = onnx.ModelProto()
    out.CopyFrom(model)
    outputs = {n.output[0] for n in out.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in names}
    for tensor in out.graph.initializer:
        if tensor.name in names:
            tensor.dims.append(1)
    # the recorded scalar shapes of those DQ outputs are stale now: let shape inference redo them
    kept = [v for v in out.graph.value_info if v.name not in outputs]
    del out.graph.value_info[:]
    out.graph.value_info.extend(kept)
    return out, names

"""INT8: QDQ ONNX with onnxruntime.quantization, NNCF for OpenVINO, coremltools.optimize for Core ML.

- ``prepare``: ``quant_pre_process`` (symbolic shape inference + ORT basic optimisation) on the FP32 graph.
- ``calibrate``: activation ranges collected once per graph, chunk by chunk (memory stays bounded for the
  histogram methods), saved as ORT's calibration cache; every retry round re-uses it.
- ``quantize_qdq``: ``quantize_static`` in QDQ format, per-channel symmetric int8 weights, with a ``Scheme``
  per target: TensorRT needs symmetric int8 activations; x86 CPUs (ORT, OpenVINO) run u8 activations x s8
  weights, and without VNNI their 8-bit multiply-add (vpmaddubsw) saturates int16, so weights use 7 bits
  there (``reduce_range``; ORT's own advice for non-VNNI x86). Measured on this AVX2 host (lifter stand-in,
  MPJPE vs FP32): u8/s8 full range 33 mm emulated but 346 mm through ORT's kernels (saturation), 7-bit 39 mm
  both ways; s8/s8 symmetric QDQ ran at 0.5-0.6x FP32 speed, u8/7-bit at 1.4-1.8x (``benchmarks/int8_speed.py``).
- ``sensitivity`` / ``exclusion_rounds``: when the fidelity gate fails, rank nodes by how much quantization
  error they add (``qdq_loss_debug``: drop in SQNR vs the FP32 model from a node's inputs to its output) and
  named groups (detector / SimCC head, first conv); later rounds keep more of them in float.
- ``nncf_openvino``: ``nncf.quantize`` on the OpenVINO model (OpenVINO's own int8 patterns), saved as IR.
- ``coreml_weights``: int8 per-channel weights on a converted ML Program (runs anywhere); activation
  quantization needs Core ML predictions for calibration, so it runs on macOS only.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ..errors import BackendUnavailableError, ExportError, InvalidOptionError, first_line
from .base import WriteResult
from .calibration import FeedFiles

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# ops whose output ORT's QDQ quantizer gives their input's scale: a bad scale upstream travels through them
DATA_MOVEMENT_OPS = (
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Gather",
    "Split",
    "Identity",
    "Expand",
    "Resize",
    "MaxPool",
    "Pad",
    "DepthToSpace",
    "SpaceToDepth",
)
CHUNK = 8  # calibration feeds per collection step: bounds the activations held in memory
SENSITIVITY_FEEDS = 4
MAX_SQNR_DB = 60.0  # inputs quantized losslessly (or not at all) count as this clean
ROUND_UNITS = (1, 3, 8)  # units kept in float in exclusion rounds 2, 3, 4 (cumulative, most sensitive first)
# Named groups of nodes worth keeping in float together, per role: (label, substrings of node names).
GROUPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "pose": (("SimCC head (final conv, mlp, GAU, cls_x/cls_y)", ("/head/", "final_layer", "cls_x", "cls_y")),),
    "detector": (("detector head", ("head",)),),
    "lifter": (),
}


@dataclass(frozen=True)
class Scheme:
    """How one target wants its QDQ graph."""

    name: str
    activations: str  # "u8" | "s8"
    symmetric_activations: bool
    reduce_range: bool  # 7-bit weights
    # int32 DequantizeLinear on Conv/Gemm biases: ORT and OpenVINO fold it into their integer kernels, but
    # TensorRT dequantizes only INT8/FP8/INT4 (onnx-tensorrt operators.md, DequantizeLinear) and would refuse
    # the graph; it fuses float biases into the INT8 kernel itself
    quantize_bias: bool = True
    weights_only: bool = False  # weights quantized by the target's own tools; activations stay float

    def to_dict(self) -> dict:
        if self.weights_only:
            return {"name": self.name, "activations": "fp16", "weights": "int8 symmetric per-channel (coremltools)"}
        return {
            "name": self.name,
            "activations": f"{'s8 symmetric' if self.symmetric_activations else self.activations + ' asymmetric'}",
            "weights": f"s8 symmetric per-channel{', 7-bit (reduce_range)' if self.reduce_range else ''}",
            "bias": "int32 (quantized)" if self.quantize_bias else "float (not quantized)",
        }


SCHEMES = {
    "cpu": Scheme("cpu", "u8", False, True),
    "tensorrt": Scheme("tensorrt", "s8", True, False, quantize_bias=False),
    "coreml": Scheme("coreml", "fp16", False, False, weights_only=True),  # activations would need macOS
}


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep NNCF's INFO lines and progress bars and the quantizer's per-weight root-logger warnings off the
    user's terminal: the export prints its own progress and report. Errors still raise."""
    root = logging.getLogger()
    nncf_logger = logging.getLogger("nncf")
    saved = root.level, nncf_logger.level, [(h, h.level) for h in nncf_logger.handlers]
    root.setLevel(max(root.level, logging.ERROR))
    nncf_logger.setLevel(logging.WARNING)
    for handler, _ in saved[2]:
        handler.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF's rich progress bars write to stdout
            yield
    finally:
        root.setLevel(saved[0])
        nncf_logger.setLevel(saved[1])
        for handler, level in saved[2]:
            handler.setLevel(level)


def _ort_quant():
    try:
        from onnxruntime import quantization  # runtime library, loaded on first use: listing backends never fails
    except ImportError:
        raise BackendUnavailableError(
            "onnxruntime.quantization is required for INT8 export. Install: pip install onnxruntime"
        ) from None
    return quantization


def _method(name: str):
    if name not in METHODS:
        raise InvalidOptionError(f"--calib-method: '{name}' is not one of {', '.join(METHODS)}")
    return getattr(_ort_quant().CalibrationMethod, {"minmax": "MinMax"}.get(name, name.capitalize()))


def prepare(src: Path, dest: Path) -> list[str]:
    """Name every node (exclusions go by name), then ``quant_pre_process`` (shape inference + ORT basic
    optimisation); returns notes."""
    # runtime library, loaded on first use: listing backends never fails
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(src))
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    named = dest.with_name(dest.stem + ".named.onnx")
    onnx.save(model, str(named))
    try:
        quant_pre_process(str(named), str(dest))
        return []
    except Exception as exc:  # symbolic shape inference fails on some exotic graphs; ONNX's is enough
        log.warning("quant_pre_process on %s failed (%s); retrying without symbolic shapes", src.name, exc)
        quant_pre_process(str(named), str(dest), skip_symbolic_shape=True)
        return [f"quant_pre_process without symbolic shape inference ({type(exc).__name__})"]
    finally:
        named.unlink(missing_ok=True)


def float_tail(model: Path) -> list[str]:
    """Nodes whose results never reach a Conv/MatMul/Gemm: output decoding (sigmoid, exp, box arithmetic,
    concatenations of boxes with scores, NMS, TopK). They are cheap, and one per-tensor scale over pixel
    coordinates and 0-1 scores together erases the scores ("INT8 detectors detect nothing"): kept float."""
    graph = onnx.load(str(model), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    stack = [node for node in graph.node if node.op_type in COMPUTE_OPS]
    upstream = {node.name for node in stack}
    while stack:
        for name in stack.pop().input:
            node = producer.get(name)
            if node is not None and node.name not in upstream:
                upstream.add(node.name)
                stack.append(node)
    return [node.name for node in graph.node if node.name not in upstream]


def _supports_cache() -> bool:
    quantization = _ort_quant()
    # runtime library, loaded on first use: listing backends never fails
    from onnxruntime.quantization import calibrate as calib_module

    return "calibration_cache_path" in inspect.signature(quantization.quantize_static).parameters and hasattr(
        calib_module, "save_tensors_data"
    )


def calibrate(model: Path, feeds: FeedFiles, method: str, scheme: Scheme, cache: Path) -> Path | None:
    """Collect activation ranges chunk by chunk into ORT's calibration cache; None if this ORT has none."""
    if not _supports_cache():
        return None
    # runtime library, loaded on first use: listing backends never fails
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    ops = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    with tempfile.TemporaryDirectory(prefix="calib-") as tmp:
        model = _without_tail(model, Path(tmp) / "head.onnx")
        # minmax ranges stay raw (the quantizer symmetrises them when the scheme says so); histograms of
        # |x| only suit symmetric activations
        options = {"symmetric": scheme.symmetric_activations and method != "minmax"}
        calibrator = create_calibrator(
            model,
            ops,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(method),
            extra_options=options,
        )
        with _quiet_libraries():  # the histogram calibrators print progress lines to stdout
            for chunk in feeds.chunks(CHUNK):
                # one item per run: the histogram collectors stack each tensor over runs, and the pose / lifter
                # feeds hold as many people as their frame (ragged batches)
                calibrator.collect_data(_SingleItems(chunk))
            data = calibrator.compute_data()
        save_tensors_data(data, cache)
    return cache


def _without_tail(model: Path, out: Path) -> Path:
    """``model`` cut before its float tail (``float_tail``), whose outputs are never quantized: a detector's
    NMS outputs change size from frame to frame, and ORT's histogram collectors stack every calibrated
    tensor over runs (with symmetric activations, TensorRT's scheme, percentile/entropy then crash)."""
    tail = set(float_tail(model))
    if not tail:
        return model
    cut = onnx.load(str(model))
    kept = [node for node in cut.graph.node if node.name not in tail]
    produced = {name for node in kept for name in node.output}
    feeding = [name for node in cut.graph.node if node.name in tail for name in node.input if name in produced]
    outputs = [o for o in cut.graph.output if o.name in produced]
    # ORT's calibrators drop the model's own outputs from their ranges: what fed the tail stays intermediate
    taps = [name for name in dict.fromkeys(feeding) if name not in {o.name for o in outputs}]
    ends = [onnx.helper.make_node("Identity", [name], [f"{name}/calibration_tap"]) for name in taps]
    del cut.graph.node[:]
    cut.graph.node.extend(kept + ends)
    del cut.graph.output[:]
    cut.graph.output.extend(outputs)
    cut.graph.output.extend(onnx.helper.make_empty_tensor_value_info(node.output[0]) for node in ends)
    onnx.save(cut, str(out))
    return out


def quantize_qdq(
    model: Path,
    out: Path,
    *,
    feeds: FeedFiles,
    method: str,
    scheme: Scheme,
    exclude: Sequence[str] = (),
    cache: Path | None = None,
) -> Path:
    """Write a QDQ graph of ``model`` to ``out`` (nodes in ``exclude`` stay float)."""
    quantization = _ort_quant()
    qtype = quantization.QuantType
    # no CalibMaxIntermediateOutputs: the MinMaxCalibrater of ORT 1.32 drops (never merges) the outputs it flushes
    options = {
        "ActivationSymmetric": scheme.symmetric_activations,
        "WeightSymmetric": True,
        "QuantizeBias": scheme.quantize_bias,
    }
    kwargs = {"calibration_cache_path": str(cache)} if cache is not None else {}
    feeds.rewind()
    try:
        with _quiet_libraries():
            quantization.quantize_static(
                str(model),
                str(out),
                None if cache is not None else _SingleItems(feeds),
                quant_format=quantization.QuantFormat.QDQ,
                per_channel=True,
                reduce_range=scheme.reduce_range,
                activation_type=qtype.QInt8 if scheme.activations == "s8" else qtype.QUInt8,
                weight_type=qtype.QInt8,
                nodes_to_exclude=list(exclude),
                calibrate_method=_method(method),
                extra_options=options,
                **kwargs,
            )
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ExportError(
            f"{model.name}: onnxruntime quantize_static failed: {first_line(exc)}"
        ) from exc
    return out


def count_quantized(path: Path) -> dict[str, int]:
    """How many nodes of the QDQ graph are Q/DQ pairs and how many float compute nodes remain."""
    graph = onnx.load(str(path), load_external_data=False).graph
    q = sum(n.op_type == "QuantizeLinear" for n in graph.node)
    dq = sum(n.op_type == "DequantizeLinear" for n in graph.node)
    return {"quantize_linear": q, "dequantize_linear": dq, "nodes": len(graph.node)}


# ----------------------------------------------------------------------------------- sensitivity


@dataclass(frozen=True)
class Unit:
    """Nodes kept in float together, and how much quantization error (dB of SQNR) they account for."""

    label: str
    nodes: tuple[str, ...]
    drop_db: float

    def to_dict(self) -> dict:
        return {"label": self.label, "drop_db": round(self.drop_db, 2), "nodes": len(self.nodes)}


def sensitivity(model: Path, qdq: Path, feeds: FeedFiles, work: Path) -> dict[str, float]:
    """Per node: SQNR (vs the float model) of its worst activation input minus that of its output, in dB.

    A node with a large drop is where quantization hurts: its input or output scale cannot represent the
    tensor (an outlier channel, a long tail) or it amplifies the error it receives.
    """
    # runtime library, loaded on first use: listing backends never fails
    from onnxruntime.quantization import qdq_loss_debug as debug

    float_aug, qdq_aug = work / "sens-float.onnx", work / "sens-qdq.onnx"
    debug.modify_model_output_intermediate_tensors(str(model), str(float_aug))
    debug.modify_model_output_intermediate_tensors(str(qdq), str(qdq_aug))
    sample = _single_items(feeds.head(SENSITIVITY_FEEDS))
    float_acts = debug.collect_activations(str(float_aug), sample)
    qdq_acts = debug.collect_activations(str(qdq_aug), sample)
    matched = debug.create_activation_matching(qdq_acts, float_acts)
    # What consumers see in the QDQ model: the dequantized tensor where it was quantized, else the float one.
    seen = {name: m["post_qdq"] for name, m in matched.items()}
    sqnr = {}
    for name, values in float_acts.items():
        got = seen.get(name, qdq_acts.get(name))
        # data-dependent shapes (after NMS, TopK) cannot be compared element-wise
        if got is not None and [v.shape for v in values] == [g.shape for g in got]:
            sqnr[name] = _sqnr(values, got)
    drops = {}
    for node in onnx.load(str(model), load_external_data=False).graph.node:
        if not node.output or node.output[0] not in sqnr:
            continue
        before = min([MAX_SQNR_DB, *(sqnr[name] for name in node.input if name in sqnr)])
        drops[node.name] = max(0.0, before - sqnr[node.output[0]])
    for path in (float_aug, qdq_aug):
        path.unlink(missing_ok=True)
    return drops


def _single_items(feeds: FeedFiles) -> list[dict[str, np.ndarray]]:
    """First batch item of each feed: enough to rank nodes, and bounds the activations kept in memory."""
    return [{name: value[:1] for name, value in feed.items()} for feed in feeds]


def _sqnr(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    ref = np.concatenate([np.ravel(r) for r in reference]).astype(np.float64)
    err = ref - np.concatenate([np.ravel(g) for g in got]).astype(np.float64)
    signal, noise = float(np.linalg.norm(ref)), float(np.linalg.norm(err))
    if noise <= 1e-12 * max(signal, 1e-12):
        return MAX_SQNR_DB
    return min(MAX_SQNR_DB, 20.0 * math.log10(max(signal, 1e-30) / noise))


def exclusion_rounds(
    model: Path, role: str, drops: dict[str, float], rounds: int
) -> tuple[list[list[str]], list[Unit]]:
    """Cumulative node lists to keep in float in rounds 2.. (most sensitive first) and the ranking behind them.

    A unit is a sensitive node with the nodes that would quantize the tensors around it: producers of its
    inputs (through data-movement ops such as Reshape, which pass their input's quantization on) and the other
    consumers of those tensors and of its outputs. Named groups (the role's head, the first layer) are units
    too, scored by the sum of their members' drops. Units adding no new node are dropped from the ranking.
    """
    graph = onnx.load(str(model), load_external_data=False).graph
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[str]] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n.name)
    by_name = {n.name: n for n in graph.node}
    candidates = []
    for name, drop in drops.items():
        if drop > 0.0:
            candidates.append(Unit(name, tuple(sorted(_neighbourhood(by_name[name], producer, consumers))), drop))
    first = next((n.name for n in graph.node if n.op_type in COMPUTE_OPS), None)
    groups = [*GROUPS.get(role, ()), *([(f"first layer ({first})", (first,))] if first else [])]
    for label, patterns in groups:
        members = tuple(n.name for n in graph.node if any(p in n.name for p in patterns))
        if members:
            candidates.append(Unit(label, members, sum(drops.get(m, 0.0) for m in members)))
    candidates.sort(key=lambda u: -u.drop_db)
    units, covered = [], set()
    for unit in candidates:
        if not set(unit.nodes) <= covered:
            units.append(unit)
            covered.update(unit.nodes)
    plan = []
    for count in ROUND_UNITS[:rounds]:
        excluded = sorted({m for unit in units[:count] for m in unit.nodes})
        if excluded and (not plan or excluded != plan[-1]):
            plan.append(excluded)
    return plan, units


def _neighbourhood(node: onnx.NodeProto, producer: dict, consumers: dict[str, list[str]]) -> set[str]:
    members = {node.name}
    for tensor in node.output:
        members.update(consumers.get(tensor, []))
    pending = list(node.input)
    while pending:
        tensor = pending.pop()
        members.update(consumers.get(tensor, []))
        source = producer.get(tensor)
        if source is None or source.name in members:
            continue
        members.add(source.name)
        if source.op_type in DATA_MOVEMENT_OPS:
            pending.extend(source.input[:1])
    return members


# ------------------------------------------------------------------------------------------ NNCF


def nncf_openvino(model: Path, feeds: FeedFiles, out_dir: Path, stem: str, exclude: Sequence[str] = ()) -> WriteResult:
    """``nncf.quantize`` the OpenVINO model of ``model`` on the calibration feeds; save ``<stem>.xml/.bin``."""
    try:
        # optional extra, loaded only when this feature runs
        import nncf
        import openvino as ov  # runtime library, loaded on first use: listing backends never fails
    except ImportError as exc:
        raise BackendUnavailableError(
            f"nncf and openvino are required for the NNCF INT8 candidate ({exc.name} is missing). "
            "Install: pip install 'spinepose-deploy[openvino]'"
        ) from None
    ov_model = ov.convert_model(str(model))
    items = _SingleItems(feeds)
    # optional extra, loaded only when this feature runs
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    # OpenVINO names an ONNX node's ops after it, with suffixes for decomposed ones (Gemm -> '.../WithoutBiases')
    pattern = "^(?:" + "|".join(re.escape(name) for name in exclude) + ")(?:/.*)?$"
    ignored = nncf.IgnoredScope(patterns=[pattern], validate=False) if exclude else None
    try:
        with _quiet_libraries():
            quantized = nncf.quantize(
                ov_model,
                nncf.Dataset(items),
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(items),
                ignored_scope=ignored,
                # 7-bit weights everywhere, not only in the first layer: without VNNI the int8 multiply-add
                # saturates (the same reason as reduce_range in the CPU QDQ scheme)
                advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE),
            )
    except Exception as exc:  # NNCF raises its own error types and RuntimeErrors from OpenVINO
        raise ExportError(f"{model.name}: nncf.quantize failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / f"{stem}.xml"
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    return WriteResult(
        primary=xml.name,
        files=[xml.name, f"{stem}.bin"],
        notes=[
            f"OpenVINO IR quantized by NNCF {nncf.__version__} (preset mixed, 7-bit weights, "
            f"{len(items)} calibration items, {len(exclude)} node(s) ignored)"
        ],
        extra={"openvino": ov.__version__, "nncf": nncf.__version__, "inference_precision": "f32"},
    )


class _SingleItems:
    """The feeds one batch item at a time (NNCF and ORT's histogram calibrators want one input shape),
    re-iterable and streamed from disk; also a ``CalibrationDataReader`` by duck typing."""

    def __init__(self, feeds: FeedFiles) -> None:
        self.feeds = feeds
        self._count: int | None = None
        self._iter = None

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(len(next(iter(feed.values()))) for feed in self.feeds)
        return self._count

    def __iter__(self):
        for feed in self.feeds:
            for i in range(len(next(iter(feed.values())))):
                yield {name: value[i : i + 1] for name, value in feed.items()}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = iter(self)
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None


# --------------------------------------------------------------------------------------- Core ML


def coreml_weights(package: Path, feeds: FeedFiles | None = None) -> list[str]:
    """Quantize an ML Program's weights to int8 (per channel, symmetric) in place; on macOS also activations."""
    # runtime library, loaded on first use: listing backends never fails
    import coremltools as ct
    from coremltools.optimize import coreml as cto

    model = ct.models.MLModel(str(package), skip_model_load=sys.platform != "darwin")
    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    )
    notes = ["Core ML weights int8 (linear symmetric, per channel; tensors under 2048 values stay fp16)"]
    quantized = cto.linear_quantize_weights(model, config)
    if sys.platform == "darwin" and feeds is not None:  # calibration runs Core ML predictions: macOS only
        act_config = cto.OptimizationConfig(global_config=cto.experimental.OpActivationLinearQuantizerConfig())
        sample = [dict(feed) for feed in feeds.head(16)]
        quantized = cto.linear_quantize_activations(quantized, act_config, sample)
        notes.append("Core ML activations int8 (calibrated on macOS)")
    else:
        notes.append(
            "Core ML activations stay fp16: activation quantization calibrates with Core ML predictions (macOS)"
        )

    staged = package.with_name(package.stem + ".int8.mlpackage")
    quantized.save(str(staged))
    shutil.rmtree(package)
    staged.rename(package)
    return notes

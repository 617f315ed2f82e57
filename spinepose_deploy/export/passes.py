"""Graph passes applied to the ONNX before any backend: simplify, dynamic batch, FP16.

Every pass is verified the same way: reload the result in ONNX Runtime and compare its outputs with the
input graph's on the same feeds (``verify``). A pass that changes results beyond its tolerance raises
ExportError naming the pass and the deviation, so a broken artifact never reaches a bundle.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..backends.onnxruntime import model_bytes_runner, run_model_bytes
from ..errors import BackendUnavailableError, ExportError

log = logging.getLogger(__name__)

# Ops kept in FP32 by the FP16 pass: the converter's defaults (NMS, TopK, Resize, ...) plus ops whose FP16
# range breaks these graphs: ScaleNorm's sum of squares overflows 65504 for 256-d tokens of magnitude ~16,
# YOLOX's exp(wh) overflows, and GridSample coordinates lose sub-pixel precision.
FP16_BLOCKED_OPS = (
    "ReduceL2",
    "ReduceSumSquare",
    "Pow",
    "Sqrt",
    "Exp",
    "GridSample",
    "LayerNormalization",
)


@dataclass(frozen=True)
class Deviation:
    """How far a graph's outputs moved, per output: max and median absolute error, relative to output range."""

    max_abs: dict[str, float]
    median_abs: dict[str, float]
    relative: float  # max over outputs of max_abs / (output range), the pass criterion

    def to_dict(self) -> dict:
        return {"max_abs": self.max_abs, "median_abs": self.median_abs, "relative": self.relative}


def run_onnx(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a graph in ONNX Runtime on the CPU (the reference runtime for every pass)."""
    return run_model_bytes(model.SerializeToString(), feeds)


def onnx_runner(model: onnx.ModelProto) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """``run_onnx`` for many feeds: one ONNX Runtime session of ``model``, built once."""
    return model_bytes_runner(model.SerializeToString())


def compare(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> Deviation:
    """Output-by-output deviation; outputs whose shapes differ (e.g. detections) compare over the common prefix."""
    max_abs, median_abs, relative = {}, {}, 0.0
    for name, ref in reference.items():
        got = candidate[name]
        if ref.shape != got.shape:
            common = tuple(min(a, b) for a, b in zip(ref.shape, got.shape, strict=True))
            index = tuple(slice(0, n) for n in common)
            ref, got = ref[index], got[index]
        if ref.size == 0:
            max_abs[name] = median_abs[name] = 0.0
            continue
        if not np.all(np.isfinite(got)):
            raise ExportError(f"output '{name}' has NaN/inf after the pass")
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        max_abs[name], median_abs[name] = float(diff.max()), float(np.median(diff))
        span = float(np.ptp(ref)) or 1.0
        relative = max(relative, max_abs[name] / span)
    return Deviation(max_abs, median_abs, relative)


def verify(
    name: str, before: onnx.ModelProto, after: onnx.ModelProto, feeds: Mapping[str, np.ndarray], tolerance: float | None
) -> Deviation:
    """Check a pass by running both graphs in ONNX Runtime; raise ExportError beyond ``tolerance`` (relative).

    ``tolerance=None`` only requires finite outputs: for graphs ending in NMS a tiny change can select other
    boxes, so their lowered versions are judged by box recall/IoU in the fidelity gate instead.
    """
    deviation = compare(run_onnx(before, feeds), run_onnx(after, feeds))
    if tolerance is not None and deviation.relative > tolerance:
        raise ExportError(
            f"pass '{name}' changed outputs by {deviation.relative:.3g} of their range (allowed {tolerance:g}); "
            f"max abs error per output: {deviation.max_abs}"
        )
    log.info("pass %s verified: relative deviation %.3g", name, deviation.relative)
    return deviation


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant-fold and fuse with onnxslim (falls back to onnxsim); the result is shape-inferred."""
    try:
        import onnxslim  # optional extra, loaded only when this feature runs
    except ImportError:
        onnxslim = None
    if onnxslim is not None:
        return onnxslim.slim(model)
    try:
        import onnxsim  # optional extra, loaded only when this feature runs
    except ImportError:
        raise BackendUnavailableError(
            "onnxslim (or onnxsim) is required to simplify graphs. Install: pip install 'spinepose-deploy[passes]'"
        ) from None
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise ExportError("onnxsim could not validate the simplified graph")
    return simplified


def make_batch_dynamic(model: onnx.ModelProto, dim_name: str = "batch") -> onnx.ModelProto:
    """Give the first dim of every input and output a symbolic name (values are re-inferred at run time)."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    initializers = {init.name for init in result.graph.initializer}
    for value in [*result.graph.input, *result.graph.output]:
        if value.name in initializers or not value.type.tensor_type.shape.dim:
            continue
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = dim_name
    del result.graph.value_info[:]  # stale static shapes would contradict the new batch dim
    return result


def has_dynamic_batch(model: onnx.ModelProto) -> bool:
    dims = [i.type.tensor_type.shape.dim for i in model.graph.input]
    return all(d and not d[0].HasField("dim_value") for d in dims)


def to_fp16(model: onnx.ModelProto, blocked_ops: tuple[str, ...] = FP16_BLOCKED_OPS) -> onnx.ModelProto:
    """Convert weights and activations to FP16, keeping FP32 inputs/outputs and the blocked ops in FP32."""
    try:
        from onnxconverter_common import float16  # optional extra, loaded only when this feature runs
    except ImportError:
        raise BackendUnavailableError(
            "onnxconverter-common is required for FP16. Install: pip install 'spinepose-deploy[passes]'"
        ) from None
    block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(blocked_ops))
    # The converter names the casts it inserts after the node's name: unnamed blocked nodes would all get
    # "_input_cast_0" and ORT rejects the duplicate, so every node gets a unique name first.
    with warnings.catch_warnings():  # one warning per clipped constant would flood the console
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(name_nodes(model), keep_io_types=True, op_block_list=block)


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique, non-empty name (in place; returns the model)."""
    del model.graph.value_info[:]  # stale types from simplification confuse the converter's cast insertion
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    return model


def batched(feeds: Mapping[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Repeat/trim feeds along the batch axis to ``size`` (to test a dynamic batch)."""
    out = {}
    for name, array in feeds.items():
        reps = int(np.ceil(size / len(array)))
        out[name] = np.concatenate([array] * reps, axis=0)[:size]
    return out

"""TensorRT artifact writers: the engine (``write``) and, for ``--onnx-only``, the exact ONNX it is built from.

Both first make the graph the builder gets (``builder_graph``: 0-d quantized DQ constants shaped [1], which
ONNX Runtime computes bit-identically and the builder otherwise refuses) and check it against the builder's
ONNX rules (``backends.tensorrt_rules``): a graph the parser or builder would refuse stops the export with one
line naming the node and the rule, also on machines without TensorRT. ``write`` then builds a strongly typed
engine (``backends.tensorrt_build``) for the GPU and TensorRT version it runs on, recorded as ``engine_key``
and checked at load. ``write_onnx`` writes the graph with its batch profile in the ONNX metadata plus the
``trtexec`` line that builds the same engine on the target; ``Pipeline.from_bundle`` on a TensorRT host builds
and caches the engines on first use. ``export.tensorrt_rtx`` shares ``builder_graph`` for TensorRT-RTX.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from ..backends import _trt, tensorrt_build, tensorrt_rules
from ..errors import ExportError, ModelLoadError
from ..zoo.specs import ModelSpec
from .base import BatchRange, WriteResult

log = logging.getLogger(__name__)


def builder_graph(
    onnx_path: Path, spec: ModelSpec, flavour: str = "tensorrt"
) -> tuple[onnx.ModelProto, tensorrt_rules.Report, list[str]]:
    """The graph handed to ``flavour``'s builder, its rules report and notes; ExportError if a rule breaks."""
    model, fixed = tensorrt_rules.fix_scalar_dq(onnx.load(str(onnx_path)))
    notes = (
        [f"{len(fixed)} 0-d INT8 constant(s) before DequantizeLinear given shape [1] (rule dq-scalar)"] if fixed else []
    )
    report = tensorrt_rules.check(model, f"{spec.name} ({onnx_path.name})", flavour)
    if not report.ok:
        raise ExportError(report.first_error())
    return model, report, notes


def check_rules(onnx_path: Path, spec: ModelSpec) -> tensorrt_rules.Report:
    """The rules report of the graph handed to TensorRT; ExportError (one line) when a rule is broken."""
    return builder_graph(onnx_path, spec)[1]


def rules_extra(report: tensorrt_rules.Report, batch: BatchRange) -> dict:
    return {"batch_profile": str(batch), "typing": tensorrt_build.TYPING, "rules": report.to_dict()}


def write(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """Build ``<role>.engine`` for the batch range; the timing cache persists across builds in the user cache."""
    model, report, notes = builder_graph(onnx_path, spec)
    built = out_dir / f"{spec.role.value}.builder.onnx"
    onnx.save(model, str(built))
    try:
        key = _trt.gpu_key(0)  # the builder builds for the current GPU (0 unless the caller set another)
        data = tensorrt_build.build_engine(
            built, (batch.min, batch.opt, batch.max), timing_cache=tensorrt_build.timing_cache_path(key)
        )
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from exc
    finally:
        built.unlink(missing_ok=True)
    engine = out_dir / f"{spec.role.value}.engine"
    engine.write_bytes(data)
    return WriteResult(
        primary=engine.name,
        files=[engine.name],
        notes=[
            *notes,
            f"TensorRT {key['tensorrt']} engine for {key['gpu']} (sm {key['compute_capability']}), batch {batch}",
        ],
        extra={"engine_key": key, **rules_extra(report, batch)},
    )


def write_onnx(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """``<role>.onnx`` exactly as the builder would parse it, its profile in the metadata, and its trtexec line."""
    model, report, notes = builder_graph(onnx_path, spec)
    name = save_with_profile(model, out_dir / f"{spec.role.value}.onnx", batch)
    weights = {i.name for i in model.graph.initializer}
    inputs = [
        (
            v.name,
            [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim],
        )
        for v in model.graph.input
        if v.name not in weights
    ]
    command = tensorrt_build.trtexec_command(name, inputs, (batch.min, batch.opt, batch.max))
    return WriteResult(
        primary=name,
        files=[name],
        notes=[
            *notes,
            f"TensorRT-ready {precision} ONNX (no engine: built on first use on the GPU, or with trtexec there)",
        ],
        extra={"onnx_only": True, "trtexec": command, **rules_extra(report, batch)},
    )


def save_with_profile(model: onnx.ModelProto, path: Path, batch: BatchRange) -> str:
    """Save ``model`` with its batch profile in the ONNX metadata (``tensorrt_build.PROFILE_KEY``); its file name."""
    props = {p.key: p for p in model.metadata_props}
    entry = props.get(tensorrt_build.PROFILE_KEY) or model.metadata_props.add()
    entry.key, entry.value = tensorrt_build.PROFILE_KEY, str(batch)
    onnx.save(model, str(path))
    return path.name

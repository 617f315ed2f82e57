"""TensorRT artifact writers: the engine (``write``) and, for ``--onnx-only``, the exact ONNX it is built from.

Both first check the graph against TensorRT's ONNX rules (``backends.tensorrt_rules``): a graph the parser
or builder would refuse stops the export with one line naming the node and the rule, also on machines
without TensorRT. ``write`` then builds a strongly typed engine (``backends.tensorrt_build``) for the GPU and
TensorRT version it runs on, recorded as ``engine_key`` and checked at load. ``write_onnx`` writes the graph
with its batch profile in the ONNX metadata plus the ``trtexec`` line that builds the same engine on the
target; ``Pipeline.from_bundle`` on a TensorRT host builds and caches the engines on first use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from ..backends import tensorrt_build, tensorrt_rules
from ..errors import ExportError, ModelLoadError
from ..zoo.specs import ModelSpec
from .base import BatchRange, WriteResult

log = logging.getLogger(__name__)


def check_rules(onnx_path: Path, spec: ModelSpec) -> tensorrt_rules.Report:
    """The rules report of the graph handed to TensorRT; ExportError (one line) when a rule is broken."""
    report = tensorrt_rules.check(onnx.load(str(onnx_path)), f"{spec.name} ({onnx_path.name})")
    if not report.ok:
        raise ExportError(report.first_error())
    return report


def _extra(report: tensorrt_rules.Report, batch: BatchRange) -> dict:
    return {"batch_profile": str(batch), "typing": tensorrt_build.TYPING, "rules": report.to_dict()}


def write(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """Build ``<role>.engine`` for the batch range; the timing cache persists across builds in the user cache."""
    report = check_rules(onnx_path, spec)
    try:
        data, key = tensorrt_build.build_engine(onnx_path, (batch.min, batch.opt, batch.max))
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from exc
    engine = out_dir / f"{spec.role.value}.engine"
    engine.write_bytes(data)
    return WriteResult(
        primary=engine.name,
        files=[engine.name],
        notes=[f"TensorRT {key['tensorrt']} engine for {key['gpu']} (sm {key['compute_capability']}), batch {batch}"],
        extra={"engine_key": key, **_extra(report, batch)},
    )


def write_onnx(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """``<role>.onnx`` exactly as the builder would parse it, its profile in the metadata, and its trtexec line."""
    report = check_rules(onnx_path, spec)
    model = onnx.load(str(onnx_path))
    props = {p.key: p for p in model.metadata_props}
    entry = props.get(tensorrt_build.PROFILE_KEY) or model.metadata_props.add()
    entry.key, entry.value = tensorrt_build.PROFILE_KEY, str(batch)
    name = f"{spec.role.value}.onnx"
    onnx.save(model, str(out_dir / name))
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
            f"TensorRT-ready {precision} ONNX (no engine: built on first use on the GPU, or with trtexec there)",
        ],
        extra={"onnx_only": True, "trtexec": command, **_extra(report, batch)},
    )

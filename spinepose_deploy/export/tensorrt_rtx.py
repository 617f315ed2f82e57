"""TensorRT-RTX artifact writer: the engine, built ahead of time on this machine (no GPU needed).

The graph is the one the TensorRT writer hands its builder (``tensorrt.builder_graph``, checked against the
TensorRT-RTX rules: no NMS / NonZero, so the exporter cut the detector before NMS). The engine is built for
the requested compute capabilities (none: TensorRT-RTX's default set, Ampere and later) with the batch profile,
and the exact ONNX it was built from is kept beside it: the gate measures that graph where no RTX GPU runs, and
a user on another TensorRT-RTX version can rebuild from it. The JIT compile happens on the target's first load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from ..backends import _trt, tensorrt_build
from ..backends.tensorrt_rtx import engine_key
from ..errors import ExportError, ModelLoadError
from ..zoo.specs import ModelSpec
from .base import BatchRange, WriteResult
from .sanitize import NMS_METADATA_KEY
from .tensorrt import builder_graph, rules_extra, save_with_profile


def write(
    onnx_path: Path,
    out_dir: Path,
    *,
    spec: ModelSpec,
    precision: str,
    batch: BatchRange,
    targets: Sequence[str] = (),
) -> WriteResult:
    """``<role>.rtx.engine`` for ``targets`` (compute capabilities, () = the builder's default) and ``<role>.onnx``."""
    model, report, notes = builder_graph(onnx_path, spec, _trt.RTX.backend)
    source = save_with_profile(model, out_dir / f"{spec.role.value}.onnx", batch)
    start = time.perf_counter()
    try:
        data = tensorrt_build.build_engine(
            out_dir / source, (batch.min, batch.opt, batch.max), flavour=_trt.RTX, targets=tuple(targets)
        )
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from exc
    seconds = time.perf_counter() - start
    engine = out_dir / f"{spec.role.value}.rtx.engine"
    engine.write_bytes(data)
    key = engine_key(tuple(targets))
    nms = next((p.value for p in model.metadata_props if p.key == NMS_METADATA_KEY), None)
    targets_text = ", ".join(targets) if targets else "the builder's default (Ampere and later)"
    extra = {
        "engine_key": key,
        "build_s": round(seconds, 2),
        "engine_bytes": len(data),
        "source_onnx": source,
        **rules_extra(report, batch),
    }
    if nms is not None:
        extra.update(host_nms=True, nms=json.loads(nms))
        notes.append("detector cut before NonMaxSuppression (TensorRT-RTX has no NMS kernel); NMS runs on the host")
    notes.append(
        f"TensorRT-RTX {key['tensorrt_rtx']} engine built ahead of time for compute capabilities {targets_text}, "
        f"batch {batch}; kernels compile on the RTX GPU's first load (runtime cache kept)"
    )
    return WriteResult(primary=engine.name, files=[engine.name, source], notes=notes, extra=extra)

"""OpenVINO artifact writer: ONNX -> IR (.xml + .bin) with ``openvino.convert_model`` + ``save_model``."""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendUnavailableError, InvalidOptionError
from ..zoo.specs import ModelSpec
from .base import BatchRange, WriteResult

# the inference precision hint the bundle asks OpenVINO to use when it loads each kind of artifact
PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


def write(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """Write ``<role>.xml/.bin``. FP16 compresses weights (OpenVINO decompresses or runs them per device)."""
    try:
        import openvino as ov  # runtime library, loaded on first use: listing backends never fails
    except ImportError:
        raise BackendUnavailableError(
            "openvino is required to export for backend 'openvino'. Install: pip install 'spinepose-deploy[openvino]'"
        ) from None
    if precision not in PRECISIONS:
        raise InvalidOptionError(f"--precision: '{precision}' is not supported by the openvino exporter")
    model = ov.convert_model(str(onnx_path))
    stem = spec.role.value
    xml = out_dir / f"{stem}.xml"
    # fp16 stores FP16 weights; bf16 keeps FP32 weights (the CPU converts them when it compiles);
    # int8 graphs are QDQ and keep their FP32 scales uncompressed.
    ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
    notes = [f"OpenVINO IR, weights stored as {'FP16' if precision == 'fp16' else 'FP32'}"]
    return WriteResult(
        primary=xml.name,
        files=[xml.name, f"{stem}.bin"],
        notes=notes,
        extra={"openvino": ov.__version__, "inference_precision": PRECISIONS[precision]},
    )


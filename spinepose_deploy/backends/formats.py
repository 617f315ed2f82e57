"""What each backend is, as one data table (STYLE 10): export, bench, auto-select, doctor and the CLI read it.

One ``BackendFormat`` row per backend: the precisions it exports, its INT8
scheme and the INT8 builders the fidelity gate tries, whether it reads the source ONNX directly (the
auto-select probe needs no export), the PyPI distributions that provide it (the host fingerprint) and
which checks a bundle made for it must pass on load (its artifact writer is in
``export.writers``). Nothing outside ``backends/`` tests a backend's name:
it asks this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import check_choice

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BackendFormat:
    """One backend's row (see the module docstring)."""

    backend: str
    precisions: tuple[str, ...]
    fp16_onnx: bool  # consumes an FP16 ONNX (ORT, TensorRT 11) rather than converting FP32 itself
    int8_scheme: str  # export.quantize.SCHEMES key: how its QDQ graph is quantized
    int8_candidates: tuple[str, ...]  # INT8 builders the gate tries, in order
    int8_qdq: bool  # INT8 goes through a QDQ ONNX (Core ML instead quantizes its own ML Program's weights)
    reads_onnx: bool  # loads the source ONNX as is: the auto-select probe times it without an export
    distributions: tuple[str, ...]  # PyPI distributions that provide the runtime library
    engine_bound_to_gpu: bool = False  # an artifact runs only on the GPU and runtime version that built it
    refuses_newer_artifacts: bool = False  # an artifact from a newer runtime version cannot be read here
    # the artifact is an engine its builder makes from the ONNX on the target GPU: the graph must follow the
    # builder's rules (TopK capped), and --onnx-only writes that graph for the target to build
    builds_engine_on_target: bool = False
    # precisions it computes from the FP32 source ONNX by a runtime hint: probed without an export wherever
    # the device computes them natively (doctor's capabilities), then exported and gated when picked
    hinted: tuple[str, ...] = ()
    # the artifact is an NVIDIA engine: the graph must pass that builder's ONNX rules (tensorrt_rules flavour)
    engine_rules: str | None = None
    host_nms: bool = False  # no NMS kernel: the detector is exported cut before NMS, NMS runs on the host
    # the engine is built ahead of time for a list of GPU compute capabilities (--compute-capability)
    compute_targets: bool = False
    engine_bound_to_version: bool = False  # an artifact runs only with the exact runtime version that built it
    # INT8 calibration method when --calib-method is not given: measured per scheme (see the row)
    calib_method: str = "minmax"
    # a batch range is a ladder of enumerated shapes by default, a range on request (--coreml-shapes)
    batch_shapes: bool = False


FORMATS: dict[str, BackendFormat] = {
    "onnxruntime": BackendFormat(
        "onnxruntime", PRECISIONS, True, "cpu", ("qdq",), True, True,
        ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
        refuses_newer_artifacts=True,
    ),
    # bf16: FP32 weights computed in bfloat16 where the CPU has it (AVX512_BF16 / AMX); the gate measures it
    "openvino": BackendFormat(
        "openvino", ("fp32", "bf16", "fp16", "int8"), False, "cpu", ("qdq", "nncf"), True, True,
        ("openvino",), refuses_newer_artifacts=True, hinted=("bf16", "fp16"),
    ),
    "coreml": BackendFormat(
        "coreml", PRECISIONS, False, "coreml", ("coreml-weights",), False, False, ("coremltools",),
        batch_shapes=True,
    ),
    # percentile: with TensorRT's symmetric activations minmax failed the pose gate on the trained stand-ins
    # (PCK -0.015..-0.031) and percentile passed it (docs/tensorrt_rtx.md, measured)
    "tensorrt": BackendFormat(
        "tensorrt", PRECISIONS, True, "tensorrt", ("qdq",), True, False,
        ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"), engine_bound_to_gpu=True, builds_engine_on_target=True,
        engine_rules="tensorrt", calib_method="percentile",
    ),
    # built ahead of time here (no GPU needed), JIT-compiled on the RTX GPU; no NMS kernel (host NMS)
    "tensorrt-rtx": BackendFormat(
        "tensorrt-rtx", PRECISIONS, True, "tensorrt", ("qdq",), True, False,
        ("tensorrt-rtx-cu12", "tensorrt-rtx-cu13"), engine_rules="tensorrt-rtx", host_nms=True,
        compute_targets=True, engine_bound_to_version=True, calib_method="percentile",
    ),
}  # fmt: skip


def format_of(backend: str, option: str = "--backend") -> BackendFormat:
    """The row of ``backend``; an unknown name raises naming ``option`` and the known ones."""
    check_choice(option, backend, FORMATS)
    return FORMATS[backend]


def onnx_readers() -> tuple[str, ...]:
    """Backends that run the source ONNX without an export (the auto-select probe's candidates)."""
    return tuple(name for name, row in FORMATS.items() if row.reads_onnx)

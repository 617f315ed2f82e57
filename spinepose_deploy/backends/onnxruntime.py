"""ONNX Runtime backend: the CPU EP everywhere, accelerator EPs when this build has them."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidOptionError
from ..paths import cache_subdir
from .base import Availability, Backend, Capability, Session, TensorInfo, dim_str

log = logging.getLogger(__name__)

# device name -> execution provider, in the order "auto" tries them
PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}


def _provider_options(device: str, artifact: Path) -> dict[str, Any]:
    """Sensible options per EP: persistent caches so a second start is fast."""
    if device == "tensorrt":
        cache = cache_subdir("ort-tensorrt")
        return {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
        }
    if device == "coreml":
        # ML Program (fp16 on the GPU/ANE) and, for a graph with static inputs (the detector), only static-shape
        # partitions: the Neural Engine runs those; a dynamic-batch graph would otherwise fall back to the CPU
        return {
            "ModelFormat": "MLProgram",
            "MLComputeUnits": "ALL",
            "RequireStaticInputShapes": "1" if _static_inputs(artifact) else "0",
            "ModelCacheDirectory": str(cache_subdir("ort-coreml")),
        }
    if device == "openvino":
        return {"device_type": "CPU", "cache_dir": str(cache_subdir("ort-openvino"))}
    if device == "cuda":
        return {"cudnn_conv_algo_search": "HEURISTIC"}
    return {}


def _static_inputs(artifact: Path) -> bool:
    """Every graph input has a fixed shape (read from the ONNX header, weights not loaded)."""
    import onnx  # base dependency; only the Core ML EP path needs it here

    try:
        graph = onnx.load(str(artifact), load_external_data=False).graph
    except Exception:  # an unreadable file: ONNX Runtime's own load says why
        return False
    weights = {i.name for i in graph.initializer}
    dims = [d for i in graph.input if i.name not in weights for d in i.type.tensor_type.shape.dim]
    return all(d.HasField("dim_value") and d.dim_value > 0 for d in dims)


class OrtSession(Session):
    backend = "onnxruntime"

    def __init__(self, session: Any, device: str, precision: str) -> None:
        super().__init__()
        self._session = session
        self.device = device
        self.precision = precision
        self.inputs = [
            TensorInfo(i.name, tuple(dim_str(d) for d in i.shape), _ORT_DTYPES.get(i.type, i.type))
            for i in session.get_inputs()
        ]
        self.outputs = [
            TensorInfo(o.name, tuple(dim_str(d) for d in o.shape), _ORT_DTYPES.get(o.type, o.type))
            for o in session.get_outputs()
        ]
        self._output_names = [o.name for o in self.outputs]
        self.providers = list(session.get_providers())

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    def close(self) -> None:
        self._session = None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    suffixes = (".onnx",)
    extra = "gpu"
    library = "onnxruntime"

    def availability(self) -> Availability:
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, "onnxruntime is not installed: pip install onnxruntime")
        try:
            import onnxruntime as ort  # runtime library, loaded on first use: listing backends never fails

            return Availability(True, "", ort.__version__)
        except Exception as exc:  # a broken install must not break doctor
            return Availability(False, f"onnxruntime failed to import: {exc}")

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        if not status:
            return [Capability(self.name, "cpu", p, False, status.reason) for p in ("fp32", "fp16", "int8")]
        import onnxruntime as ort  # runtime library, loaded on first use: listing backends never fails

        available = set(ort.get_available_providers())
        rows = []
        for device, provider in PROVIDERS.items():
            ok = provider in available or (device == "directml" and "DmlExecutionProvider" in available)
            reason = "" if ok else f"{provider} is not in this onnxruntime build ({ort.get_device()}); {_hint(device)}"
            for precision in ("fp32", "fp16", "int8"):
                rows.append(Capability(self.name, device, precision, ok, reason, status.version))
        return rows

    def _load(
        self,
        path: Path,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
        allow_fallback: bool = True,
        spinning: bool = False,
        optimize: bool = True,
        **_: Any,
    ) -> Session:
        import onnxruntime as ort  # runtime library, loaded on first use: listing backends never fails

        if device != "auto" and device not in PROVIDERS:
            raise InvalidOptionError(
                f"--device: '{device}' is not an onnxruntime device (expected auto, {', '.join(PROVIDERS)})"
            )
        available = set(ort.get_available_providers())
        wanted = [d for d in PROVIDERS if PROVIDERS[d] in available] if device == "auto" else [device]
        missing = [d for d in wanted if PROVIDERS[d] not in available]
        if missing and not allow_fallback:
            raise InvalidOptionError(
                f"onnxruntime device '{device}': provider {PROVIDERS[device]} not in this build; "
                f"available: {sorted(available)}"
            )
        chosen = [d for d in wanted if d not in missing] or ["cpu"]
        if "cpu" not in chosen:
            chosen.append("cpu")
        options = ort.SessionOptions()
        # optimize=False runs every node as written (Q/DQ pairs unfused: the QDQ semantics, not ORT's int8 kernels)
        level = ort.GraphOptimizationLevel
        options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        if not spinning:
            # Idle worker threads busy-wait by default; on a laptop or a shared 2-core box that steals the CPU
            # from the other graphs and the pre/post-processing (measured: pose batch 6 347 -> 228 ms here).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        providers = [(PROVIDERS[d], _provider_options(d, path)) for d in chosen]
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        active = session.get_providers()[0]
        active_device = next(d for d, p in PROVIDERS.items() if p == active)
        result = OrtSession(session, active_device, precision)
        if missing or (device not in ("auto", active_device)):
            note = f"onnxruntime: requested device '{device}' is not available here; running on '{active_device}'"
            log.warning(note)
            result.notes.append(note)
        return result


def _hint(device: str) -> str:
    return {
        "cuda": "needs an NVIDIA GPU and pip install 'spinepose-deploy[gpu]'",
        "tensorrt": "needs an NVIDIA GPU, TensorRT and onnxruntime-gpu",
        "coreml": "needs macOS (the onnxruntime macOS wheel has it)",
        "directml": "needs Windows and onnxruntime-directml",
        "openvino": "needs onnxruntime-openvino (or use the native 'openvino' backend)",
    }.get(device, "")


def model_bytes_runner(model: bytes) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """One CPU-EP session of a serialized graph, as ``run(feeds) -> outputs`` (reference runs of export passes
    and fidelity checks: build it once per graph, run it on every feed)."""
    import onnxruntime as ort  # runtime library, loaded on first use: listing backends never fails

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, dict(feeds)), strict=True))

    return run


def run_model_bytes(model: bytes, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a serialized graph once on the CPU EP (``model_bytes_runner`` for many feeds)."""
    return model_bytes_runner(model)(feeds)

"""OpenVINO backend (the native API, not the ONNX Runtime EP): IR (.xml + .bin) or ONNX files.

Precision is always explicit: a CPU with BF16 support would otherwise run an FP32 model in bf16, and
a GPU in f16. The precision that actually ran is read back from the compiled model and recorded.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidOptionError, ModelLoadError, check_choice
from ..paths import cache_subdir
from .base import Availability, Backend, Capability, Session, TensorInfo, dim_str

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
HINTS = ("latency", "throughput")
# our precision -> the device's OPTIMIZATION_CAPABILITIES entry
_CAPABILITY = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8"}
_FROM_OV_TYPE = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}
_QUANTIZED_OPS = {"FakeQuantize", "FakeConvert"}  # what ONNX Q/DQ and NNCF graphs become in OpenVINO


def runtime_message(exc: BaseException) -> str:
    """The informative line of an OpenVINO error (its first lines are source locations)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    noise = ("Exception from ", "Check '", "FrontEnd API failed")
    useful = [line for line in lines if not line.startswith(noise)]
    return (useful or lines or [type(exc).__name__])[0][:300]


def _port_name(port: Any, index: int, kind: str) -> str:
    try:
        return port.get_any_name()
    except RuntimeError:  # an unnamed tensor
        return f"{kind}{index}"


def _tensor_info(port: Any, index: int, kind: str) -> TensorInfo:
    shape = tuple(d.get_length() if d.is_static else dim_str(str(d)) for d in port.get_partial_shape())
    return TensorInfo(_port_name(port, index, kind), shape, np.dtype(port.get_element_type().to_dtype()).name)


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, compiled: Any, device: str, precision: str) -> None:
        super().__init__()
        self._compiled = compiled
        self._request = compiled.create_infer_request()  # one request, reused: not thread-safe
        self.device = device
        self.precision = precision
        self.inputs = [_tensor_info(p, i, "input") for i, p in enumerate(compiled.inputs)]
        self.outputs = [_tensor_info(p, i, "output") for i, p in enumerate(compiled.outputs)]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer(feeds, share_inputs=True, share_outputs=True)
        # OpenVINO reuses its output buffers on the next call: copy out
        return {info.name: np.array(results[port], copy=True) for info, port in zip(self.outputs, self._compiled.outputs, strict=True)}

    def close(self) -> None:
        self._request = None
        self._compiled = None


class OpenVinoBackend(Backend):
    name = "openvino"
    suffixes = (".xml", ".onnx")
    extra = "openvino"
    library = "openvino"

    def __init__(self) -> None:
        self._core_instance: Any = None

    def _core(self) -> Any:
        if self._core_instance is None:
            import openvino as ov

            self._core_instance = ov.Core()
        return self._core_instance

    def availability(self) -> Availability:
        if importlib.util.find_spec("openvino") is None:
            return Availability(False, self.missing_library_reason())
        try:
            import openvino as ov

            devices = self._core().available_devices
            return Availability(True, f"devices: {', '.join(devices)}", ov.get_version().split("-")[0])
        except Exception as exc:  # a broken install must not break doctor
            return Availability(False, f"openvino failed to start: {runtime_message(exc)}")

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        if not status:
            return [Capability(self.name, "cpu", p, False, status.reason) for p in PRECISIONS]
        rows = []
        for device in self._core().available_devices:
            caps = self._device_caps(device)
            for precision in PRECISIONS:
                ok = _CAPABILITY[precision] in caps
                reason = "" if ok else f"{device} lacks {_CAPABILITY[precision]} (has {', '.join(sorted(caps))})"
                if precision == "fp16" and not ok:
                    reason += "; fp16 artifacts run in f32 here"
                rows.append(Capability(self.name, device.lower(), precision, ok, reason, status.version))
        return rows

    def _device_caps(self, device: str) -> set[str]:
        import openvino.properties.device as device_props

        return set(self._core().get_property(device, device_props.capabilities))

    def _check_device(self, device: str) -> str:
        wanted = device.upper()
        available = list(self._core().available_devices)
        families = {name.split(".")[0] for name in available}  # 'GPU' addresses 'GPU.0' as well
        if wanted == "AUTO" or wanted.startswith("AUTO:") or wanted in available or wanted in families:
            return wanted
        raise InvalidOptionError(
            f"openvino device '{device}': not available here (available: {', '.join(available + ['AUTO'])})"
        )

    def _precision_hint(self, device: str, precision: str) -> tuple[str, str | None]:
        """The inference precision to request for ``precision`` on ``device``, and a note when it differs."""
        if precision in ("fp32", "int8"):  # int8: the quantized parts run int8 whatever the hint
            return "f32", None
        caps = None if device.startswith("AUTO") else self._device_caps(device)
        if precision == "bf16":
            if caps is not None and "BF16" not in caps:
                raise InvalidOptionError(
                    f"precision bf16: openvino device {device} has no BF16 support "
                    f"(OPTIMIZATION_CAPABILITIES: {', '.join(sorted(caps))}); use fp32"
                )
            return "bf16", None
        if caps is not None and "FP16" not in caps:
            # Decision: run f32 rather than refuse. An FP16 IR is OpenVINO's normal artifact and the
            # runtime itself decompresses it on such devices; refusing would make fp16 bundles unusable.
            return "f32", f"openvino {device}: no FP16 support ({', '.join(sorted(caps))}); fp16 computes in f32 here"
        return "f16", None

    def _load(
        self,
        path: Path,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        hint: str = "latency",
        threads: int | None = None,
        cache: bool = True,
        **_: Any,
    ) -> Session:
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        check_choice("--precision", precision, PRECISIONS)
        check_choice("openvino hint", hint, HINTS)
        device = self._check_device(device)
        model = _read_model(path)
        quantized = any(op.get_type_name() in _QUANTIZED_OPS for op in model.get_ops())
        if precision == "int8" and not quantized:
            raise InvalidOptionError(f"precision int8: {path} has no quantized (FakeQuantize / Q-DQ) ops; export it as int8")
        hint_type, note = self._precision_hint(device, precision)
        config: dict[str, Any] = {
            hints.inference_precision: getattr(ov.Type, hint_type),
            hints.performance_mode: getattr(hints.PerformanceMode, hint.upper()),
        }
        notes = [note] if note else []
        if threads:
            if device == "CPU":
                config[props.inference_num_threads] = int(threads)
            else:
                notes.append(f"openvino: threads={threads} ignored, only the CPU device takes a thread count")
        if cache:
            config[props.cache_dir] = str(cache_subdir("openvino"))
        try:
            compiled = self._core().compile_model(model, device, config)
        except RuntimeError as exc:
            raise ModelLoadError(f"{path}: openvino could not compile it for {device}: {runtime_message(exc)}") from exc
        effective = _effective_precision(compiled, hint_type)
        if quantized:
            notes.append(f"openvino: quantized ops run int8, the rest in {effective}")
            effective = "int8"
        try:
            executed = ",".join(compiled.get_property("EXECUTION_DEVICES")).lower()
        except RuntimeError:
            executed = device.lower()
        session = OpenVinoSession(compiled, executed, effective)
        for text in notes:
            log.info(text)
            session.notes.append(text)
        return session


def _read_model(path: Path) -> Any:
    """Read with the frontend the suffix names: clearer errors than Core.read_model's probing of all."""
    from openvino.frontend import FrontEndManager

    is_ir = path.suffix.lower() == ".xml"
    if is_ir and not path.with_suffix(".bin").exists():
        raise ModelLoadError(f"{path}: weights file {path.with_suffix('.bin').name} is missing (an IR is .xml + .bin)")
    kind = "an OpenVINO IR" if is_ir else "ONNX"
    try:
        frontend = FrontEndManager().load_by_framework("ir" if is_ir else "onnx")
        return frontend.convert(frontend.load(str(path)))
    except Exception as exc:  # the frontends raise RuntimeError or their own GeneralFailure
        raise ModelLoadError(f"{path}: openvino could not read it as {kind}: {runtime_message(exc)}") from exc


def _effective_precision(compiled: Any, requested: str) -> str:
    import openvino.properties.hint as hints

    try:
        actual = compiled.get_property(hints.inference_precision).get_type_name()
    except RuntimeError:  # AUTO and some plugins do not report it
        actual = requested
    return _FROM_OV_TYPE.get(actual, actual)

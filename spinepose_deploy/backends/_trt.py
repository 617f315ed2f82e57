"""What every TensorRT user in this package shares: the lazy import, the one logger, the GPU key.

TensorRT keeps one logger per process: a second ``trt.Logger`` / ``ILogger`` handed to a later Builder or
Runtime draws a warning and its messages are dropped, so the backend and the engine builder use the one
made here (as Polygraphy does with its module-level logger).
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

from ..errors import BackendUnavailableError, InvalidOptionError
from . import _cuda

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_LOGGER: Any = None


def tensorrt() -> Any:
    """The tensorrt module, or BackendUnavailableError saying what to install."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError(
            "tensorrt is required for backend 'tensorrt'. Install on a host with an NVIDIA GPU: "
            "pip install 'spinepose-deploy[tensorrt-cu12]' (CUDA 12 driver) or '[tensorrt-cu13]' (CUDA 13); "
            "without a GPU, 'export --backend tensorrt --onnx-only' writes the graphs for the target to build"
        ) from None
    return trt


def major_version(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def logger() -> Any:
    """The process-wide TensorRT logger: forwards to ``logging`` and keeps the last errors for messages."""
    global _LOGGER
    with _LOCK:
        if _LOGGER is None:
            _LOGGER = _make_logger(tensorrt())
        return _LOGGER


def _make_logger(trt: Any) -> Any:
    severity = trt.ILogger.Severity
    errors = (severity.INTERNAL_ERROR, severity.ERROR)

    class _Logger(trt.ILogger):
        """Keeps TensorRT's recent errors so a failed parse/build/load can say why."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: collections.deque[str] = collections.deque(maxlen=32)

        def log(self, level: Any, msg: str) -> None:
            if level in errors:
                self.errors.append(msg)
            warning = level in errors or level == severity.WARNING
            log.log(logging.WARNING if warning else logging.DEBUG, "TensorRT: %s", msg)

        def last_error(self, since: int = 0) -> str:
            """The last error logged after ``since`` errors had been counted, or a placeholder."""
            recent = list(self.errors)[since:]
            return recent[-1].strip()[:200] if recent else "no detail from TensorRT"

    return _Logger()


def device_index(device: str | int | None) -> int:
    """The GPU index of 'cuda', 'cuda:N', 'gpu:N', N or None (0)."""
    text = str(device if device is not None else 0).lower().removeprefix("cuda").removeprefix("gpu").lstrip(":")
    if not (text or "0").isdigit():
        raise InvalidOptionError(f"tensorrt device '{device}': expected a GPU index N, 'cuda' or 'cuda:N'")
    return int(text or "0")


def gpu_key(device: int = 0) -> dict[str, str]:
    """TensorRT version + GPU name and compute capability of ``device``: what an engine is tied to."""
    trt = tensorrt()
    try:
        runtime = _cuda.cudart()
    except ImportError:
        raise BackendUnavailableError(
            "TensorRT needs cuda-python to find the GPU. Install: pip install 'spinepose-deploy[tensorrt-cu12]'"
        ) from None
    props = _cuda.call(runtime.cudaGetDeviceProperties(device), f"cudaGetDeviceProperties({device})")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {
        "tensorrt": str(trt.__version__),
        "gpu": name.strip("\x00 "),
        "compute_capability": f"{props.major}.{props.minor}",
    }

"""What every TensorRT user in this package shares: the flavours, the lazy import, one logger each, the GPU key.

Two NVIDIA builders read the same ONNX the same way (``tensorrt_build``) and run engines through the same
tensor API (``tensorrt.TensorRTSession``); a ``Flavour`` row says where they differ: the Python module, what
to install, whether the builder needs a GPU, whether it has NMS / NonZero kernels and a timing cache, and what
an engine is tied to (``engine_key``). Regular TensorRT tunes kernels on the GPU it builds on, so its engine
is tied to that GPU model; TensorRT-RTX builds ahead of time on any machine (CPU-only included) for a list of
compute capabilities and compiles the kernels on the target GPU on first run.

TensorRT keeps one logger per process: a second ``trt.Logger`` / ``ILogger`` handed to a later Builder or
Runtime draws a warning and its messages are dropped, so every user of a flavour shares the one made here
(as Polygraphy does with its module-level logger). Errors are collected per operation (``collect``), so a
failed build says its own last error however many builds failed before it in the process.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import BackendUnavailableError, InvalidOptionError
from . import _cuda

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_LOGGERS: dict[str, Any] = {}
NO_DETAIL = "no detail from TensorRT"


@dataclass(frozen=True)
class Flavour:
    """One NVIDIA builder/runtime behind the shared TensorRT code."""

    backend: str  # the backend name in the format table
    module: str  # the Python module
    label: str  # in messages
    install: str  # what to install, said when the module is missing
    builds_without_gpu: bool  # ahead-of-time build on any machine (no CUDA call while building)
    has_nms: bool  # NonMaxSuppression / NonZero kernels exist (else: cut before NMS, NMS on the host)
    timing_cache: bool  # the builder times kernels on the GPU and can keep a timing cache


TENSORRT = Flavour(
    "tensorrt",
    "tensorrt",
    "TensorRT",
    "pip install 'spinepose-deploy[tensorrt-cu12]' (CUDA 12 driver) or '[tensorrt-cu13]' (CUDA 13) on a host with an "
    "NVIDIA GPU; without a GPU, 'export --backend tensorrt --onnx-only' writes the graphs for the target to build",
    builds_without_gpu=False,
    has_nms=True,
    timing_cache=True,
)
# TensorRT for RTX (1.x): Ampere+ RTX GPUs by default (Turing with an explicit SM75 target), Windows and Linux;
# no NMS / NonZero kernels for any target (NVIDIA/TensorRT-RTX #5, #32); no timing cache (JIT on the target)
RTX = Flavour(
    "tensorrt-rtx",
    "tensorrt_rtx",
    "TensorRT-RTX",
    "pip install 'spinepose-deploy[tensorrt-rtx]' (builds engines on any machine; running them needs an RTX GPU)",
    builds_without_gpu=True,
    has_nms=False,
    timing_cache=False,
)
FLAVOURS = {flavour.backend: flavour for flavour in (TENSORRT, RTX)}


def tensorrt(flavour: Flavour = TENSORRT) -> Any:
    """The flavour's module (``tensorrt`` / ``tensorrt_rtx``), or BackendUnavailableError saying what to install."""
    try:
        return importlib.import_module(flavour.module)  # runtime library, loaded on first use
    except ImportError:
        raise BackendUnavailableError(
            f"{flavour.module} is required for backend '{flavour.backend}'. Install: {flavour.install}"
        ) from None


def major_version(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def logger(flavour: Flavour = TENSORRT) -> Any:
    """The process-wide logger of ``flavour``: forwards to ``logging``; ``collect`` gathers an operation's errors."""
    with _LOCK:
        if flavour.module not in _LOGGERS:
            _LOGGERS[flavour.module] = _make_logger(tensorrt(flavour), flavour.label)
        return _LOGGERS[flavour.module]


def _make_logger(trt: Any, label: str) -> Any:
    severity = trt.ILogger.Severity
    errors = (severity.INTERNAL_ERROR, severity.ERROR)

    class _Logger(trt.ILogger):
        """Hands each error to every open ``collect`` (concurrent operations in one process see each other's)."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self._open: list[list[str]] = []
            self._lock = threading.Lock()

        def log(self, level: Any, msg: str) -> None:
            if level in errors:
                with self._lock:
                    for collected in self._open:
                        collected.append(msg)
            warning = level in errors or level == severity.WARNING
            log.log(logging.WARNING if warning else logging.DEBUG, "%s: %s", label, msg)

        @contextlib.contextmanager
        def collect(self) -> Iterator[list[str]]:
            """The errors logged while the block runs (unbounded, this operation's own)."""
            collected: list[str] = []
            with self._lock:
                self._open.append(collected)
            try:
                yield collected
            finally:
                with self._lock:
                    self._open.remove(collected)

    return _Logger()


def last_error(errors: list[str]) -> str:
    """The last of an operation's errors, one line, or a placeholder when TensorRT logged none."""
    return " ".join(errors[-1].split())[:300] if errors else NO_DETAIL


def device_index(device: str | int | None) -> int:
    """The GPU index of 'cuda', 'cuda:N', 'gpu:N', N or None (0)."""
    text = str(device if device is not None else 0).lower().removeprefix("cuda").removeprefix("gpu").lstrip(":")
    if not (text or "0").isdigit():
        raise InvalidOptionError(f"tensorrt device '{device}': expected a GPU index N, 'cuda' or 'cuda:N'")
    return int(text or "0")


def gpu_props(device: int = 0) -> tuple[str, str]:
    """(name, compute capability 'M.m') of GPU ``device`` through cuda-python."""
    try:
        runtime = _cuda.cudart()
    except ImportError:
        raise BackendUnavailableError(
            "TensorRT needs cuda-python to find the GPU. Install: pip install 'spinepose-deploy[tensorrt-cu12]'"
        ) from None
    props = _cuda.call(runtime.cudaGetDeviceProperties(device), f"cudaGetDeviceProperties({device})")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.strip("\x00 "), f"{props.major}.{props.minor}"


def gpu_key(device: int = 0) -> dict[str, str]:
    """TensorRT version + GPU name and compute capability of ``device``: what a regular TensorRT engine is tied to."""
    trt = tensorrt()
    name, capability = gpu_props(device)
    return {"tensorrt": str(trt.__version__), "gpu": name, "compute_capability": capability}

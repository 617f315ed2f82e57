"""TensorRT backend: serialized engines (``.engine`` / ``.plan``) through the TensorRT 10/11 tensor API.

Device memory and the stream come from cuda-python's runtime bindings (``cuda.bindings.runtime``;
``cuda.cudart`` in older cuda-python): a thin pip-installable binding with no framework attached,
the one NVIDIA's own TensorRT samples use. Engines are tied to the TensorRT version and GPU model
that built them; one that does not deserialize here is refused with a message to rebuild it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InferenceError, InvalidOptionError, ModelLoadError
from .base import Availability, Backend, Capability, Session, TensorInfo, dim_str

log = logging.getLogger(__name__)


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # cuda-python before the cuda.bindings layout
    return cudart


def _call(result: tuple, what: str) -> Any:
    """cuda-python returns (error, *values): raise on error, else return the value(s)."""
    error, *values = result
    if int(error) != 0:
        raise InferenceError(f"CUDA {what} failed: {getattr(error, 'name', error)}")
    return values[0] if len(values) == 1 else values


def _device_index(device: int | str) -> int:
    text = str(device).lower().removeprefix("cuda").removeprefix("gpu").lstrip(":") or "0"
    if not text.isdigit():
        raise InvalidOptionError(f"tensorrt device '{device}': expected a GPU index like 0, 'cuda' or 'cuda:1'")
    return int(text)


def _make_logger(trt: Any) -> Any:
    class _Logger(trt.ILogger):
        """Keeps TensorRT's errors so a failed load can say why; forwards the rest to logging."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()


class TensorRTSession(Session):
    backend = "tensorrt"

    def __init__(self, engine: Any, keep: tuple, gpu: int, profile: int, precision: str) -> None:
        import tensorrt as trt

        super().__init__()
        self._cudart = _cudart()
        self._engine, self._keep, self._gpu, self._profile = engine, keep, gpu, profile
        self.device, self.precision = f"cuda:{gpu}", precision
        self._stream = _call(self._cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._context = engine.create_execution_context()
        if profile:
            self._context.set_optimization_profile_async(profile, self._stream)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [self._info(trt, n) for n in names if is_input[n]]
        self.outputs = [self._info(trt, n) for n in names if not is_input[n]]
        # (min, opt, max) shapes of every input with a dynamic dim, from the chosen profile
        self._bounds = {
            i.name: [tuple(s) for s in engine.get_tensor_profile_shape(i.name, profile)]
            for i in self.inputs
            if any(isinstance(d, str) for d in i.shape)
        }
        batch_max = [b[2][0] for n, b in self._bounds.items() if isinstance(self._input(n).shape[0], str)]
        self.max_batch = min(batch_max) if batch_max else None
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def _info(self, trt: Any, name: str) -> TensorInfo:
        try:
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))).name
        except TypeError:  # bf16/fp8 have no numpy type
            dtype = str(self._engine.get_tensor_dtype(name)).rsplit(".", 1)[-1].lower()
        return TensorInfo(name, tuple(dim_str(d) for d in self._engine.get_tensor_shape(name)), dtype)

    def _input(self, name: str) -> TensorInfo:
        return next(i for i in self.inputs if i.name == name)

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        if name not in self._bounds:
            return
        low, _, high = self._bounds[name]
        if any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=True)):
            raise InvalidOptionError(
                f"input '{name}': shape {tuple(shape)} is outside optimisation profile {self._profile} of this engine "
                f"(min {low}, max {high}); rebuild the engine with a wider profile"
            )

    def _device_buffer(self, name: str, nbytes: int) -> int:
        pointer, size = self._buffers.get(name, (0, 0))
        if nbytes > size:  # grow only: buffers are reused across calls
            if pointer:
                _call(self._cudart.cudaFree(pointer), "cudaFree")
            pointer = _call(self._cudart.cudaMalloc(nbytes), "cudaMalloc")
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        _call(cudart.cudaSetDevice(self._gpu), "cudaSetDevice")  # the current device is per thread
        to_device, to_host = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, array in feeds.items():
            self._check_profile(name, array.shape)
            self._context.set_input_shape(name, array.shape)
            pointer = self._device_buffer(name, max(array.nbytes, 1))
            _call(cudart.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, to_device, self._stream), "copy in")
            self._context.set_tensor_address(name, pointer)
        results = {}
        for info in self.outputs:
            host = np.empty(tuple(self._context.get_tensor_shape(info.name)), dtype=info.dtype)
            self._context.set_tensor_address(info.name, self._device_buffer(info.name, max(host.nbytes, 1)))
            results[info.name] = host
        if not self._context.execute_async_v3(self._stream):
            raise InferenceError(f"{self.artifact}: TensorRT execute_async_v3 failed (see the TensorRT log)")
        for name, host in results.items():
            _call(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes, to_host, self._stream), "copy out")
        _call(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return results

    def close(self) -> None:
        if self._context is None:
            return
        for pointer, _ in self._buffers.values():
            self._cudart.cudaFree(pointer)
        self._cudart.cudaStreamDestroy(self._stream)
        self._buffers, self._context, self._engine, self._keep = {}, None, None, ()


class TensorRTBackend(Backend):
    name = "tensorrt"
    suffixes = (".engine", ".plan")
    extra = "tensorrt"
    library = "tensorrt"

    def availability(self) -> Availability:
        missing, version = [], None
        if importlib.util.find_spec("tensorrt") is None:
            missing.append("the tensorrt package (pip install 'spinepose-deploy[tensorrt]')")
        else:
            try:
                import tensorrt as trt

                version = trt.__version__
            except Exception as exc:  # a broken install must not break doctor
                missing.append(f"a working tensorrt (import failed: {exc})")
        try:
            count = _call(_cudart().cudaGetDeviceCount(), "cudaGetDeviceCount")
            if not count:
                missing.append("an NVIDIA GPU (CUDA sees none)")
        except ImportError:
            missing.append("cuda-python (pip install cuda-python), and an NVIDIA GPU (not checked without it)")
        except Exception as exc:
            missing.append(f"an NVIDIA GPU with a working driver ({exc})")
        if missing:
            return Availability(False, "needs " + "; ".join(missing), version)
        return Availability(True, f"{count} GPU(s)", version)

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        if not status:
            return [Capability(self.name, "cuda", p, False, status.reason, status.version) for p in ("fp32", "fp16", "int8")]
        cudart, rows = _cudart(), []
        for index in range(_call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")):
            props = _call(cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
            arch = (props.major, props.minor)
            for precision, needed in (("fp32", (0, 0)), ("fp16", (5, 3)), ("int8", (6, 1))):
                ok = arch >= needed
                reason = "" if ok else f"compute capability {arch[0]}.{arch[1]} < {needed[0]}.{needed[1]}"
                rows.append(Capability(self.name, f"cuda:{index}", precision, ok, reason, status.version))
        return rows

    def _load(self, path: Path, *, device: int | str = 0, profile: int = 0, precision: str = "fp32", **_: Any) -> Session:
        import tensorrt as trt

        gpu = _device_index(device)
        cudart = _cudart()
        count = _call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if gpu >= count:
            raise InvalidOptionError(f"tensorrt device 'cuda:{gpu}': this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})")
        _call(cudart.cudaSetDevice(gpu), "cudaSetDevice")
        logger = _make_logger(trt)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            detail = logger.errors[-1] if logger.errors else "no detail from TensorRT"
            raise ModelLoadError(
                f"{path}: TensorRT {trt.__version__} cannot deserialize it ({detail.strip()[:200]}); an engine runs only "
                "on the TensorRT version and GPU model that built it: rebuild it on this machine"
            )
        if not 0 <= profile < engine.num_optimization_profiles:
            raise InvalidOptionError(
                f"tensorrt profile {profile}: {path} has {engine.num_optimization_profiles} optimisation profile(s)"
            )
        return TensorRTSession(engine, (runtime, logger), gpu, profile, precision)

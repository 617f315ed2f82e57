"""TensorRT backend: serialized engines (``.engine`` / ``.plan``) through the TensorRT 10/11 tensor API.

Dynamic shapes come from the engine's optimisation profile: batches larger than its max run in chunks,
smaller than its min are padded (``Session.min_batch``), other shapes outside it are refused. Engines are
tied to the TensorRT version and GPU model that built them; one that does not deserialize here is refused
with a message to rebuild it. An ``.onnx`` (from ``export --onnx-only``) is built into an engine on first
use and cached per GPU and TensorRT version (``tensorrt_build.cached_engine``). ``backends.tensorrt_rtx``
runs TensorRT-RTX engines through the same session, with its own flavour (``_trt.Flavour``).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InferenceError, InvalidOptionError, ModelLoadError
from . import _cuda, _trt, tensorrt_build
from ._trt import TENSORRT, Flavour
from .base import Availability, Backend, Capability, Session, TensorInfo, dim_str

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")


def _make_allocator(trt: Any, buffers: _cuda.DeviceBuffers) -> Any:
    class _OutputAllocator(trt.IOutputAllocator):
        """Memory for outputs whose size depends on the data (e.g. NMS); records their final shapes."""

        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, name: str, memory: Any, size: int, alignment: int) -> int:
            return buffers.get(name, size)

        def reallocate_output_async(self, name: str, memory: Any, size: int, align: int, stream: Any) -> int:
            return buffers.get(name, size)

        def notify_shape(self, name: str, shape: Any) -> None:
            self.shapes[name] = tuple(shape)

    return _OutputAllocator()


def _tensor_info(trt: Any, engine: Any, name: str) -> TensorInfo:
    try:
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
    except TypeError:  # bf16/fp8 have no numpy type
        dtype = str(engine.get_tensor_dtype(name)).rsplit(".", 1)[-1].lower()
    return TensorInfo(name, tuple(dim_str(d) for d in engine.get_tensor_shape(name)), dtype)


class TensorRTSession(Session):
    """One engine's execution context; ``runtime_config`` (TensorRT-RTX) carries its runtime cache and
    ``on_close`` saves what the context compiled."""

    def __init__(
        self,
        engine: Any,
        keep: tuple,
        gpu: int,
        profile: int,
        precision: str,
        flavour: Flavour = TENSORRT,
        runtime_config: Any = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        trt = _trt.tensorrt(flavour)
        super().__init__()
        self.backend = flavour.backend
        self._engine, self._keep, self._profile, self._on_close = engine, keep, profile, on_close
        self.device, self.precision = f"cuda:{gpu}", precision
        self._buffers = _cuda.DeviceBuffers(gpu)
        with _trt.logger(flavour).collect() as errors:  # TensorRT-RTX compiles its kernels (JIT) here
            if runtime_config is None:
                self._context = engine.create_execution_context()
            else:
                self._context = engine.create_execution_context(runtime_config)
        if self._context is None:  # out of GPU memory, most often
            raise ModelLoadError(f"{flavour.label} create_execution_context failed ({_trt.last_error(errors)})")
        if profile and not self._context.set_optimization_profile_async(profile, self._buffers.stream):
            raise ModelLoadError(f"TensorRT could not select optimisation profile {profile}")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [_tensor_info(trt, engine, n) for n in names if is_input[n]]
        self.outputs = [_tensor_info(trt, engine, n) for n in names if not is_input[n]]
        # (min, opt, max) shapes of the chosen profile, for every input with a dynamic dim
        self._bounds = {
            i.name: [tuple(s) for s in engine.get_tensor_profile_shape(i.name, profile)]
            for i in self.inputs
            if any(isinstance(d, str) for d in i.shape)
        }
        dynamic_batch = bool(self.inputs) and isinstance(self.inputs[0].shape[0], str)
        if dynamic_batch and self._bounds:
            self.max_batch = min(bounds[2][0] for bounds in self._bounds.values())
            self.min_batch = max(bounds[0][0] for bounds in self._bounds.values())
        self._allocator = _make_allocator(trt, self._buffers)

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        if name not in self._bounds:
            return
        low, _, high = self._bounds[name]
        if any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=True)):
            raise InvalidOptionError(
                f"input '{name}': shape {tuple(shape)} is outside optimisation profile {self._profile} "
                f"of this engine (min {low}, max {high}); rebuild the engine with a wider profile"
            )

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._buffers.activate()
        for name, array in feeds.items():
            self._check_profile(name, array.shape)
            if not self._context.set_input_shape(name, array.shape):
                raise InferenceError(f"{self.artifact}: TensorRT refused input '{name}' shape {array.shape}")
            self._context.set_tensor_address(name, self._buffers.upload(name, array))
        shapes = {o.name: tuple(self._context.get_tensor_shape(o.name)) for o in self.outputs}
        dtypes = {o.name: np.dtype(o.dtype) for o in self.outputs}
        for name, shape in shapes.items():
            if min(shape, default=0) < 0:  # sized while running: TensorRT asks the allocator
                if not self._context.set_output_allocator(name, self._allocator):
                    raise InferenceError(f"{self.artifact}: TensorRT refused an output allocator for '{name}'")
            else:
                nbytes = int(np.prod(shape)) * dtypes[name].itemsize
                self._context.set_tensor_address(name, self._buffers.get(name, nbytes))
        if not self._context.execute_async_v3(self._buffers.stream):
            raise InferenceError(f"{self.artifact}: TensorRT execute_async_v3 failed (see the TensorRT log)")
        self._buffers.sync()  # data-dependent shapes are final only now
        results = {}
        for name, shape in shapes.items():
            if min(shape, default=0) < 0 and name not in self._allocator.shapes:
                raise InferenceError(f"{self.artifact}: TensorRT reported no shape for output '{name}'")
            host = np.empty(self._allocator.shapes[name] if min(shape, default=0) < 0 else shape, dtypes[name])
            self._buffers.download(name, host)
            results[name] = host
        self._buffers.sync()
        return results

    def close(self) -> None:
        if self._context is not None:
            if self._on_close is not None:
                self._on_close()
            self._context = self._engine = None
            self._buffers.close()
            self._keep = ()


def _safe(probe: Any) -> Any:
    """A probe's answer, or None when it fails (availability never raises)."""
    try:
        return probe()
    except Exception:  # a broken driver or CUDA install must not break doctor: the probe just has no answer
        return None


class TensorRTBackend(Backend):
    name = "tensorrt"
    suffixes = (".engine", ".plan", ".onnx")
    extra = "tensorrt"
    library = "tensorrt"
    flavour: Flavour = TENSORRT

    def availability(self) -> Availability:
        """Say every missing piece: the TensorRT package, cuda-python, an NVIDIA GPU. Never raises."""
        missing, version, count = [], None, 0
        module = self.flavour.module
        if importlib.util.find_spec(module) is None:
            missing.append(f"the {module} package ({self.flavour.install})")
        else:
            try:
                version = _trt.tensorrt(self.flavour).__version__
            except Exception as exc:  # a broken install must not break doctor
                missing.append(f"a working {module} (import failed: {exc})")
        try:
            count = _cuda.device_count()
            if not count:
                missing.append("an NVIDIA GPU (CUDA sees none)")
        except ImportError:
            extra = "tensorrt-cu12" if self.flavour is TENSORRT else self.extra
            missing.append(f"cuda-python (pip install 'spinepose-deploy[{extra}]'), without which no GPU is found")
        except Exception as exc:  # a CUDA error from a broken driver must not break doctor: say it instead
            mismatch = _safe(_cuda.driver_mismatch)
            missing.append(mismatch or f"an NVIDIA GPU with a working driver ({exc})")
        if not missing and (mismatch := _safe(_cuda.driver_mismatch)):
            missing.append(f"CUDA packages that match the driver: {mismatch}")
        if missing:
            return Availability(False, "needs " + "; ".join(missing), version)
        return Availability(True, f"{count} GPU(s)", version)

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        # every GPU TensorRT 10+ / TensorRT-RTX supports (compute capability >= 7.5) has fast fp16 and int8
        devices = [f"cuda:{i}" for i in range(_cuda.device_count())] if status else ["cuda"]
        return [
            Capability(self.name, device, p, status.ok, "" if status else status.reason, status.version)
            for device in devices
            for p in PRECISIONS
        ]

    def _engine_file(self, path: Path, gpu: int) -> Path:
        """The engine to deserialize: an --onnx-only bundle's graph is built once per GPU / TensorRT version."""
        if path.suffix.lower() == ".onnx":
            return tensorrt_build.cached_engine(path, device=gpu)
        return path

    def _session(self, engine: Any, runtime: Any, path: Path, gpu: int, profile: int, precision: str) -> Session:
        return TensorRTSession(engine, (runtime,), gpu, profile, precision, self.flavour)

    def _load(
        self, path: Path, *, device: int | str = 0, profile: int = 0, precision: str = "fp32", **_: Any
    ) -> Session:
        trt = _trt.tensorrt(self.flavour)
        gpu, count = _trt.device_index(device), _cuda.device_count()
        if gpu >= count:
            raise InvalidOptionError(f"{self.name} device '{device}': expected a GPU index 0..{count - 1}")
        _cuda.call(_cuda.cudart().cudaSetDevice(gpu), "cudaSetDevice")
        path = self._engine_file(path, gpu)
        logger = _trt.logger(self.flavour)
        with logger.collect() as errors:
            runtime = trt.Runtime(logger)
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelLoadError(
                f"{path}: {self.flavour.label} {trt.__version__} cannot deserialize it ({_trt.last_error(errors)}); "
                f"{self._rebuild_hint()}"
            )
        if not 0 <= profile < engine.num_optimization_profiles:
            raise InvalidOptionError(
                f"{self.name} profile {profile}: {path} has {engine.num_optimization_profiles} profile(s)"
            )
        return self._session(engine, runtime, path, gpu, profile, precision)

    def _rebuild_hint(self) -> str:
        return "an engine runs only on the TensorRT version and GPU model that built it: rebuild it on this machine"

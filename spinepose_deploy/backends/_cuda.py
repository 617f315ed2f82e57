"""The few CUDA runtime calls the TensorRT backend needs, through cuda-python.

cuda-python (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.8) is a thin pip-installable
binding with no framework attached, the one NVIDIA's own TensorRT samples use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InferenceError


def cudart() -> Any:
    """The CUDA runtime module. Raises ImportError when cuda-python is not installed."""
    try:
        from cuda.bindings import runtime  # runtime library, loaded on first use: listing backends never fails
    except ImportError:
        from cuda import cudart as runtime  # cuda-python before the cuda.bindings layout
    return runtime


def call(result: tuple, what: str) -> Any:
    """cuda-python returns (error, *values): raise on error, else return the value(s)."""
    error, *values = result
    if int(error) != 0:
        raise InferenceError(f"CUDA {what} failed: {getattr(error, 'name', error)}")
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    return call(cudart().cudaGetDeviceCount(), "cudaGetDeviceCount")


# pip distributions that tie the TensorRT stack to one CUDA major (the [tensorrt-cu12] / [tensorrt-cu13] extras)
CUDA_PACKAGES = {"tensorrt-cu12": 12, "tensorrt-cu13": 13}


def driver_mismatch() -> str | None:
    """Why the installed CUDA packages cannot run on this driver, or None when they can (or nothing says).

    The driver reports the newest CUDA it supports (``cudaDriverGetVersion``); a TensorRT wheel or cuda-python
    built for a newer CUDA major fails there with "insufficient driver" deep inside, so name it here.
    """
    from importlib import metadata

    needs: dict[str, tuple[str, int]] = {}
    for package, major in CUDA_PACKAGES.items():
        try:
            needs[package] = (metadata.version(package), major)
        except metadata.PackageNotFoundError:
            continue
    for package in ("cuda-bindings", "cuda-python"):  # cuda-python >= 12.8 is a meta package of cuda-bindings
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        needs[package] = (version, int(version.split(".")[0]))
        break
    try:
        error, driver = cudart().cudaDriverGetVersion()
    except ImportError:
        return None
    if int(error) != 0 or not driver:
        return "no NVIDIA driver answers (cudaDriverGetVersion); install the NVIDIA driver"
    have = (int(driver) // 1000, int(driver) % 1000 // 10)
    for package, (version, major) in needs.items():
        if have[0] < major:
            return (
                f"the NVIDIA driver supports CUDA {have[0]}.{have[1]} but {package} {version} needs CUDA {major}: "
                f"pip install 'spinepose-deploy[tensorrt-cu{have[0]}]' or update the driver"
            )
    return None


class DeviceBuffers:
    """One stream and named device buffers on one GPU, grown when needed and reused across calls."""

    def __init__(self, gpu: int) -> None:
        self._rt = cudart()
        self.gpu = gpu
        self.activate()
        self.stream = call(self._rt.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, bytes)

    def activate(self) -> None:
        call(self._rt.cudaSetDevice(self.gpu), "cudaSetDevice")  # the current device is per thread

    def get(self, name: str, nbytes: int) -> int:
        pointer, size = self._buffers.get(name, (0, 0))
        if nbytes > size or name not in self._buffers:  # a zero-byte output still gets a (1-byte) buffer
            if pointer:
                call(self._rt.cudaFree(pointer), "cudaFree")
            pointer = call(self._rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc")  # 256-byte aligned
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def upload(self, name: str, array: np.ndarray) -> int:
        """Copy a contiguous host array into buffer ``name``; returns its device pointer."""
        pointer = self.get(name, array.nbytes)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        call(self._rt.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, kind, self.stream), "copy in")
        return pointer

    def download(self, name: str, host: np.ndarray) -> None:
        """Fill ``host`` from buffer ``name`` (asynchronously: call sync before reading it)."""
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        pointer = self._buffers[name][0]
        call(self._rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, self.stream), "copy out")

    def sync(self) -> None:
        call(self._rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def close(self) -> None:
        for pointer, _ in self._buffers.values():
            self._rt.cudaFree(pointer)
        if self.stream is not None:
            self._rt.cudaStreamDestroy(self.stream)
        self._buffers, self.stream = {}, None

"""TensorRT-RTX backend: engines built ahead of time (any machine) and JIT-compiled on the RTX GPU that runs them.

The session and the load sequence are the TensorRT backend's (``tensorrt.TensorRTBackend``, same tensor API);
what differs is the flavour (``_trt.RTX``) and the runtime cache: the kernels the GPU compiles on the first
``create_execution_context`` are kept per engine, GPU and TensorRT-RTX version in the user cache dir and handed
back on the next load, so only the first run on a machine pays the JIT compile. An engine is tied to the
TensorRT-RTX version that built it and to the compute capabilities it was built for (``engine_key``), not to
one GPU model.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from filelock import FileLock

from .._atomic import write_bytes
from ..paths import cache_subdir
from . import _trt
from ._trt import RTX
from .base import Availability, Session
from .tensorrt import TensorRTBackend, TensorRTSession

log = logging.getLogger(__name__)


def engine_key(targets: tuple[str, ...]) -> dict:
    """What a TensorRT-RTX engine is tied to: the builder's version and the compute capabilities it targets."""
    return {
        "tensorrt_rtx": str(_trt.tensorrt(RTX).__version__),
        # () = the builder's default set: Ampere and later RTX GPUs (8.0, 8.6, 8.9, 12.0+ per NVIDIA's docs)
        "compute_capabilities": list(targets) or "default",
    }


def runtime_cache_path(engine: Path, gpu: int) -> Path:
    """Where the runtime cache of ``engine`` on GPU ``gpu`` lives: per engine bytes, GPU and version."""
    name, capability = _trt.gpu_props(gpu)
    digest = hashlib.sha256(engine.read_bytes()).hexdigest()[:16]
    gpu_name = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    version = _trt.tensorrt(RTX).__version__
    return (
        cache_subdir("tensorrt-rtx")
        / "runtime"
        / f"{engine.stem}-{digest}-{gpu_name}-sm{capability}-rtx{version}.cache"
    )


class TensorRTRTXBackend(TensorRTBackend):
    name = "tensorrt-rtx"
    suffixes = (".rtx.engine",)
    extra = "tensorrt-rtx"
    library = "tensorrt_rtx"
    flavour = RTX

    def availability(self) -> Availability:
        """Whether engines run here; doctor also says that building them needs no GPU (what runs where)."""
        status = super().availability()
        if status.ok or status.version is None:
            return status
        return Availability(
            False, f"{status.reason} (building engines works here: export --backend tensorrt-rtx)", status.version
        )

    def _engine_file(self, path: Path, gpu: int) -> Path:
        return path

    def _session(self, engine: Any, runtime: Any, path: Path, gpu: int, profile: int, precision: str) -> Session:
        config = engine.create_runtime_config()
        cache_file = runtime_cache_path(path, gpu)
        cache = config.create_runtime_cache()
        if cache_file.is_file():
            with FileLock(str(cache_file) + ".lock"):
                data = cache_file.read_bytes()
            if data and not cache.deserialize(data):  # another driver / a damaged file: compile again
                log.warning("TensorRT-RTX runtime cache %s was not accepted; compiling the kernels again", cache_file)
        if not config.set_runtime_cache(cache):
            log.warning("TensorRT-RTX refused a runtime cache; kernels are compiled on every load")

        def save() -> None:
            memory = cache.serialize()
            if memory is None:
                return
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache_file) + ".lock"):
                write_bytes(cache_file, bytes(memory))

        # the cache must outlive the context that fills it: keep both alive with the session
        return TensorRTSession(engine, (runtime, config, cache), gpu, profile, precision, RTX, config, save)

    def _rebuild_hint(self) -> str:
        return (
            "a TensorRT-RTX engine runs only with the TensorRT-RTX version that built it and on the compute "
            "capabilities it targets: re-export it (spinepose-deploy export --backend tensorrt-rtx, any machine)"
        )

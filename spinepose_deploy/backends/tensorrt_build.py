"""ONNX -> TensorRT engine, the same way on TensorRT 10 and 11, and the engine cache for ONNX-only bundles.

Networks are built **strongly typed** on both versions (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, in
TensorRT since 9.x): every tensor keeps the type the ONNX graph gives it, so FP16 comes from the FP16 ONNX and
INT8 from the Q/DQ graph (ops outside Q/DQ pairs stay FP32). TensorRT 10's weakly typed mode with FP16/INT8
builder flags (deprecated since 10.12; gone in 11) would let the builder pick lower precisions per layer, so
one request would give different engines on 10 and 11. ``TYPING`` is recorded in every manifest.

The batch axis gets one optimisation profile (min, opt, max); every other dim must be static (the rules
check refuses the rest before TensorRT is needed). The timing cache persists per compute capability and
TensorRT version in the user cache; one that does not load (corrupt, other version) is replaced, not fatal.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from filelock import FileLock

from .._atomic import write_bytes
from ..errors import ModelLoadError
from ..paths import cache_subdir
from . import _cuda, _trt

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
TYPING = "strongly typed: each tensor's precision is the ONNX graph's (FP16 ONNX / Q-DQ INT8; the rest FP32)"
PROFILE_KEY = "spinepose_deploy.tensorrt.batch_profile"  # ONNX metadata of --onnx-only graphs: "min:opt:max"

Profile = tuple[int, int, int]


class BuildError(ModelLoadError):
    """TensorRT could not parse or build an engine from an ONNX graph."""


def build_engine(onnx_path: Path, profile: Profile, *, device: int = 0) -> tuple[bytes, dict[str, str]]:
    """Serialized engine for ``onnx_path`` with a batch profile; returns (engine bytes, GPU key)."""
    trt = _trt.tensorrt()
    key = _trt.gpu_key(device)

    _cuda.call(_cuda.cudart().cudaSetDevice(device), "cudaSetDevice")
    logger = _trt.logger()
    builder = _checked(trt.Builder(logger), "trt.Builder", onnx_path)
    network = _checked(
        builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)), "create_network", onnx_path
    )
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"{onnx_path}: TensorRT {trt.__version__} could not parse the ONNX graph: {errors[:400]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    _add_profile(builder, network, config, profile, onnx_path)
    timing_path = cache_subdir("tensorrt") / f"timing-sm{key['compute_capability']}-trt{key['tensorrt']}.cache"
    _load_timing_cache(config, timing_path)

    seen = len(logger.errors)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"{onnx_path}: TensorRT engine build failed ({logger.last_error(seen)})")
    _save_timing_cache(config, timing_path)
    return bytes(serialized), key


def _checked(value: Any, what: str, onnx_path: Path) -> Any:
    if value is None:  # TensorRT's Python API returns None (and logs) instead of raising
        raise BuildError(f"{onnx_path}: TensorRT {what} failed ({_trt.logger().last_error()})")
    return value


def _add_profile(builder: Any, network: Any, config: Any, profile: Profile, onnx_path: Path) -> None:
    low, opt, high = profile
    optimisation = builder.create_optimization_profile()
    dynamic = False
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if not shape or shape[0] != -1:
            continue
        if any(d == -1 for d in shape[1:]):
            raise BuildError(f"{onnx_path}: input '{tensor.name}' has dynamic non-batch dims {shape}")
        rest = shape[1:]
        optimisation.set_shape(tensor.name, (low, *rest), (opt, *rest), (high, *rest))
        dynamic = True
    if dynamic and config.add_optimization_profile(optimisation) < 0:
        raise BuildError(f"{onnx_path}: TensorRT refused optimisation profile {low}:{opt}:{high}")


def _load_timing_cache(config: Any, path: Path) -> None:
    """Start from the saved timing cache; a corrupt or mismatched one is replaced by an empty cache."""
    data = path.read_bytes() if path.is_file() else b""
    cache = None
    try:
        cache = config.create_timing_cache(data)
    except Exception as exc:  # a truncated file raises in some versions, returns None in others
        log.warning("TensorRT timing cache %s is unreadable (%s); starting a new one", path, exc)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return
    if data:
        log.warning("TensorRT timing cache %s does not match this TensorRT/GPU; starting a new one", path)
    fresh = config.create_timing_cache(b"")
    if fresh is None or not config.set_timing_cache(fresh, ignore_mismatch=False):
        log.warning("TensorRT rejected an empty timing cache; building without one")


def _save_timing_cache(config: Any, path: Path) -> None:
    cache = config.get_timing_cache()
    if cache is None:  # the builder did not keep one (e.g. it was rejected above)
        return
    memory = cache.serialize()
    if memory is not None:
        write_bytes(path, bytes(memory))


def onnx_profile(onnx_path: Path) -> Profile | None:
    """The batch profile an ONNX-only bundle recorded in the graph's metadata, or None."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    text = next((p.value for p in model.metadata_props if p.key == PROFILE_KEY), None)
    if text is None:
        return None
    values = [int(v) for v in text.split(":")]
    if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
        raise ModelLoadError(f"{onnx_path}: metadata {PROFILE_KEY}='{text}' is not MIN:OPT:MAX")
    return values[0], values[1], values[2]


def cached_engine(onnx_path: Path, *, device: int = 0) -> Path:
    """The engine for an ONNX-only bundle's graph on this GPU: built on first use, then read from the cache.

    Keyed by the ONNX file's sha256, the batch profile, the GPU name, its compute capability and the TensorRT
    version, so another GPU or TensorRT version builds its own engine rather than loading a foreign one.
    """
    profile = onnx_profile(onnx_path) or (1, 1, 1)
    key = _trt.gpu_key(device)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", key["gpu"]).strip("-")
    name = f"{onnx_path.stem}-{digest}-b{'-'.join(map(str, profile))}-{gpu}-sm{key['compute_capability']}"
    engine = cache_subdir("tensorrt") / "engines" / f"{name}-trt{key['tensorrt']}.engine"
    engine.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(engine) + ".lock"):  # two processes loading one bundle build it once
        if not engine.is_file():
            log.info("building TensorRT engine %s (first use of %s on this GPU)", engine.name, onnx_path)
            data, _ = build_engine(onnx_path, profile, device=device)
            write_bytes(engine, data)
    return engine


def trtexec_command(onnx_name: str, inputs: list[tuple[str, list[int | str]]], profile: Profile) -> str:
    """The ``trtexec`` line that builds the same engine on the target (e.g. on a Jetson, in the bundle dir)."""
    parts = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={Path(onnx_name).stem}.engine", "--stronglyTyped"]
    dynamic = [(name, shape) for name, shape in inputs if shape and not isinstance(shape[0], int)]
    for flag, batch in zip(("--minShapes", "--optShapes", "--maxShapes"), profile, strict=True):
        if dynamic:
            specs = ",".join(f"{name}:{'x'.join(str(d) for d in [batch, *shape[1:]])}" for name, shape in dynamic)
            parts.append(f"{flag}={specs}")
    parts += [f"--memPoolSize=workspace:{WORKSPACE_BYTES >> 20}", "--timingCacheFile=timing.cache", "--skipInference"]
    return " ".join(parts)

"""ONNX -> TensorRT engine, the same way on TensorRT 10/11 and TensorRT-RTX, and the engine cache for ONNX-only bundles.

Networks are built **strongly typed** (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, in TensorRT since 9.x
and in TensorRT-RTX): every tensor keeps the type the ONNX graph gives it, so FP16 comes from the FP16 ONNX and
INT8 from the Q/DQ graph (ops outside Q/DQ pairs stay FP32). TensorRT 10's weakly typed mode with FP16/INT8
builder flags (deprecated since 10.12; gone in 11) would let the builder pick lower precisions per layer, so
one request would give different engines on 10 and 11. ``TYPING`` is recorded in every manifest.

The batch axis gets one optimisation profile (min, opt, max); every other dim must be static (the rules
check refuses the rest before TensorRT is needed). ``build_engine`` makes no CUDA call itself: the caller
picks the GPU (regular TensorRT builds on the current device) and passes the timing cache file, which persists
per compute capability and TensorRT version in the user cache; one that does not load (corrupt, other version)
is replaced, not fatal. TensorRT-RTX builds ahead of time without a GPU for ``targets`` (compute capabilities;
none: its own default set) and has no timing cache (kernels are compiled on the target GPU).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from .._atomic import write_bytes
from ..errors import InvalidOptionError, ModelLoadError
from ..paths import cache_subdir
from . import _cuda, _trt
from ._trt import TENSORRT, Flavour

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
TYPING = "strongly typed: each tensor's precision is the ONNX graph's (FP16 ONNX / Q-DQ INT8; the rest FP32)"
PROFILE_KEY = "spinepose_deploy.tensorrt.batch_profile"  # ONNX metadata of --onnx-only graphs: "min:opt:max"

Profile = tuple[int, int, int]


class BuildError(ModelLoadError):
    """TensorRT could not parse or build an engine from an ONNX graph."""


def build_engine(
    onnx_path: Path,
    profile: Profile,
    *,
    flavour: Flavour = TENSORRT,
    targets: Sequence[str] = (),
    timing_cache: Path | None = None,
) -> bytes:
    """Serialized engine for ``onnx_path`` with a batch profile. No CUDA call here (see the module docstring).

    ``targets``: TensorRT-RTX compute capabilities ('8.6', '12.0', ...); ``timing_cache``: TensorRT's file.
    """
    trt = _trt.tensorrt(flavour)
    logger = _trt.logger(flavour)
    with logger.collect() as errors:
        builder = _checked(trt.Builder(logger), "Builder", onnx_path, flavour, errors)
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = _checked(builder.create_network(flags), "create_network", onnx_path, flavour, errors)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            detail = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BuildError(
                f"{onnx_path}: {flavour.label} {trt.__version__} could not parse the ONNX graph: {detail[:400]}"
            )
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        _add_profile(builder, network, config, profile, onnx_path)
        if targets:
            set_targets(trt, config, targets)
        if timing_cache is not None and flavour.timing_cache:
            _load_timing_cache(config, timing_cache)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BuildError(f"{onnx_path}: {flavour.label} engine build failed ({_trt.last_error(errors)})")
    if timing_cache is not None and flavour.timing_cache:
        _save_timing_cache(config, timing_cache)
    return bytes(serialized)


def target_names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Compute capabilities from '8.6,12.0' / 'sm86' / a list; () for none or 'default'. Checked, not looked up."""
    items = text.split(",") if isinstance(text, str) else list(text or ())
    names = []
    for item in (i.strip().lower().removeprefix("sm").removeprefix("_") for i in items):
        if not item or item == "default":
            continue
        if re.fullmatch(r"\d+\.\d", item):
            names.append(item)
        elif re.fullmatch(r"\d{2,3}", item):
            names.append(f"{item[:-1]}.{item[-1]}")
        else:
            raise InvalidOptionError(
                f"--compute-capability: '{item}' is not a compute capability like 8.6, 12.0 or sm89"
            )
    return tuple(dict.fromkeys(names))


def set_targets(trt: Any, config: Any, targets: Sequence[str]) -> None:
    """Make TensorRT-RTX build for exactly ``targets`` (names from ``target_names``)."""
    members = trt.ComputeCapability.__members__
    known = sorted(f"{int(m[2:-1])}.{m[-1]}" for m in members if m.startswith("SM"))
    config.num_compute_capabilities = len(targets)
    for index, name in enumerate(targets):
        member = members.get("SM" + name.replace(".", ""))
        if member is None:
            raise InvalidOptionError(
                f"--compute-capability: {name} is not a target of TensorRT-RTX {trt.__version__} "
                f"(known: {', '.join(known)})"
            )
        if not config.set_compute_capability(member, index):
            raise InvalidOptionError(f"--compute-capability: TensorRT-RTX refused target {name}")


def _checked(value: Any, what: str, onnx_path: Path, flavour: Flavour, errors: list[str]) -> Any:
    if value is None:  # TensorRT's Python API returns None (and logs) instead of raising
        raise BuildError(f"{onnx_path}: {flavour.label} {what} failed ({_trt.last_error(errors)})")
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


def timing_cache_path(key: dict[str, str]) -> Path:
    """Regular TensorRT's timing cache file for one compute capability and TensorRT version."""
    return cache_subdir("tensorrt") / f"timing-sm{key['compute_capability']}-trt{key['tensorrt']}.cache"


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
            _cuda.call(_cuda.cudart().cudaSetDevice(device), "cudaSetDevice")  # the builder uses the current GPU
            write_bytes(engine, build_engine(onnx_path, profile, timing_cache=timing_cache_path(key)))
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

"""TensorRT artifact writer: ONNX -> serialized engine with an optimisation profile for the batch range.

Written for TensorRT 10 and 11 and not runnable on machines without an NVIDIA GPU (tests skip;
``benchmarks/check_tensorrt.py`` verifies on a GPU host). TensorRT 11 networks are strongly typed, so FP16
and INT8 come from the graph itself (the FP16 / QDQ ONNX the passes made); TensorRT 10 additionally needs
the builder flags. An engine only runs on the GPU architecture and TensorRT version that built it, so the
manifest records both and ``engine_key`` is checked at load.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .._atomic import write_bytes
from ..errors import BackendUnavailableError, ExportError
from ..paths import cache_subdir
from ..zoo.specs import ModelSpec
from .base import BatchRange, WriteResult

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30


def gpu_key() -> dict[str, str]:
    """TensorRT version + GPU name and compute capability of device 0: what an engine is tied to."""
    try:
        # runtime library, loaded on first use: listing backends never fails
        import tensorrt as trt
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT export needs tensorrt and cuda-python ({exc.name} is missing). "
            "Install: pip install 'spinepose-deploy[tensorrt]' on a host with an NVIDIA GPU"
        ) from None
    err, props = cudart.cudaGetDeviceProperties(0)
    if err != cudart.cudaError_t.cudaSuccess:
        raise BackendUnavailableError(f"TensorRT export needs an NVIDIA GPU: cudaGetDeviceProperties failed ({err})")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {
        "tensorrt": trt.__version__,
        "gpu": name.strip("\x00 "),
        "compute_capability": f"{props.major}.{props.minor}",
    }


def write(onnx_path: Path, out_dir: Path, *, spec: ModelSpec, precision: str, batch: BatchRange) -> WriteResult:
    """Build ``<role>.engine`` for the batch range; the timing cache persists across builds in the user cache."""
    key = gpu_key()
    import tensorrt as trt  # runtime library, loaded on first use: listing backends never fails

    major = int(trt.__version__.split(".")[0])
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if major >= 11 else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{onnx_path}: TensorRT could not parse the ONNX graph: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if major < 11:  # TensorRT 10 is weakly typed unless told: allow the lower precisions explicitly
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)

    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if shape and shape[0] == -1:
            rest = shape[1:]
            if any(d == -1 for d in rest):
                raise ExportError(f"{onnx_path}: input '{tensor.name}' has dynamic non-batch dims {shape}")
            profile.set_shape(tensor.name, (batch.min, *rest), (batch.opt, *rest), (batch.max, *rest))
    config.add_optimization_profile(profile)

    timing_path = cache_subdir("tensorrt") / f"timing-{key['compute_capability']}-{key['tensorrt']}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    engine = out_dir / f"{spec.role.value}.engine"
    engine.write_bytes(bytes(serialized))

    write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    return WriteResult(
        primary=engine.name,
        files=[engine.name],
        notes=[f"TensorRT {key['tensorrt']} engine for {key['gpu']} (sm {key['compute_capability']}), batch {batch}"],
        extra={"engine_key": key, "batch_profile": str(batch)},
    )

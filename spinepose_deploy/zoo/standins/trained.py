"""Stand-ins trained on the synthetic world (``spinepose_deploy.synth``), shipped in ``data/trained/``.

They are packed: every float32 initializer is stored as float16 (``NAME.packed.onnx``, half the size, so the
three graphs fit the package's 40 MB budget), and :func:`trained_graph` casts them back once into the cache.
The restored graph is an ordinary FP32 graph whose weights happen to be float16-representable; every number
in the model card was measured on it. A packed file is not runnable as it stands (its initializers no longer
match the graph's types), hence the suffix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from filelock import FileLock
from onnx import TensorProto, numpy_helper

from ..._atomic import atomic_path
from ...errors import ContractError
from ...paths import cache_subdir, package_data_dir
from ..fetch import file_sha256
from ..specs import ModelSpec, get_spec

PACKED_SUFFIX = ".packed.onnx"
PACKED_KEY = "packed_float16_initializers"  # metadata: comma-separated names to cast back


def trained_dir() -> Path:
    return package_data_dir() / "trained"


def packed_path(name_or_spec: str | ModelSpec) -> Path:
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    return trained_dir() / f"{spec.name}{PACKED_SUFFIX}"


def available() -> list[str]:
    """Zoo names that have a trained stand-in in the package."""
    return sorted(p.name[: -len(PACKED_SUFFIX)] for p in trained_dir().glob(f"*{PACKED_SUFFIX}"))


def trained_graph(name_or_spec: str | ModelSpec) -> Path | None:
    """The runnable FP32 graph of a trained stand-in (restored into the cache once), or None if there is none."""
    packed = packed_path(name_or_spec)
    if not packed.is_file():
        return None
    digest = file_sha256(packed)
    dest = cache_subdir("trained") / f"{packed.name[: -len(PACKED_SUFFIX)]}-{digest[:16]}.onnx"
    with FileLock(str(dest) + ".lock"):
        if not dest.is_file():
            data = unpack(onnx.load(str(packed))).SerializeToString(deterministic=True)
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
    return dest


def pack(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store float32 initializers as float16 (those that overflow float16 stay float32)."""
    names = []
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size and np.abs(values).max() >= np.finfo(np.float16).max:
            continue
        init.CopyFrom(numpy_helper.from_array(values.astype(np.float16), init.name))
        names.append(init.name)
    onnx.helper.set_model_props(model, {**_props(model), PACKED_KEY: ",".join(names)})
    return model


def unpack(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inverse of :func:`pack`: the listed float16 initializers back to float32, the packing note removed."""
    props = _props(model)
    if PACKED_KEY not in props:
        raise ContractError(f"trained stand-in '{model.graph.name}': not a packed graph (no {PACKED_KEY} metadata)")
    names = set(filter(None, props.pop(PACKED_KEY).split(",")))
    for init in model.graph.initializer:
        if init.name in names:
            values = numpy_helper.to_array(init).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(values, init.name))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model


def _props(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}

"""Check that an ONNX graph is what its ModelSpec promises: names, ranks, static sizes, dtypes.

Loaded with ``onnx`` (not a runtime) so the check runs anywhere the base install does. A graph dim
that is symbolic or unknown is accepted where the spec has an int: it cannot contradict the spec,
and some exporters leave batch or detection counts symbolic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContractError, ModelLoadError
from .specs import ModelSpec, TensorSpec

if TYPE_CHECKING:  # onnx costs ~0.2 s to import; fetch.sha256_file users should not pay it
    import onnx

_ONNX_FIRST_BYTE = 0x08  # ModelProto field 1 (ir_version, varint) is always serialised first


def load_graph(path: str | os.PathLike, label: str | None = None) -> onnx.ModelProto:
    """Load an ONNX file (without external data); raise ModelLoadError naming ``label`` when it is not one."""
    path = Path(path)
    label = label or str(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ModelLoadError(f"{label} is not an ONNX model (the file is empty)")
    if head[0] != _ONNX_FIRST_BYTE:
        # An HTML error page or a zip saved under an .onnx name ends up here.
        raise ModelLoadError(f"{label} is not an ONNX model (starts with '{show_head(head)}'...)")
    import onnx  # onnx takes seconds to import: only when a graph is checked

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: any failure means "not loadable"
        raise ModelLoadError(f"{label} is not a valid ONNX model (truncated or corrupt: {exc})") from exc


def show_head(data: bytes) -> str:
    """The first bytes of a file as printable text, for "not an ONNX model (starts with ...)" messages."""
    return repr(data[:14])[2:-1]


def check_contract(path: str | os.PathLike, spec: ModelSpec) -> None:
    """Raise ContractError unless the graph at ``path`` matches ``spec``'s inputs and outputs."""
    check_model_contract(load_graph(path), spec, label=str(path))


def check_model_contract(model: onnx.ModelProto, spec: ModelSpec, label: str) -> None:
    """Same as check_contract for an already loaded model; ``label`` names it in messages."""
    initializers = {init.name for init in model.graph.initializer}
    # Old exporters list weights as graph inputs too; they are not feeds.
    inputs = [vi for vi in model.graph.input if vi.name not in initializers]
    _check_side(label, spec.name, "input", inputs, spec.inputs)
    _check_side(label, spec.name, "output", list(model.graph.output), spec.outputs)


def _check_side(
    label: str, model: str, side: str, got: list[onnx.ValueInfoProto], want: tuple[TensorSpec, ...]
) -> None:
    got_names = [vi.name for vi in got]
    if len(got) != len(want):
        expected = [t.name or "?" for t in want]
        raise ContractError(
            f"{label}: has {len(got)} {side}s {got_names}, expected {len(want)} {expected} for '{model}'"
        )
    by_name = {vi.name: vi for vi in got}
    for index, tensor in enumerate(want):
        if tensor.name is None:
            value, where = got[index], f"{side} {index} ('{got[index].name}')"
        elif tensor.name in by_name:
            value, where = by_name[tensor.name], f"{side} '{tensor.name}'"
        else:
            raise ContractError(
                f"{label}: {side} '{tensor.name}' is missing (graph has {got_names}) for '{model}'"
            )
        _check_tensor(label, model, where, value, tensor)


def _check_tensor(label: str, model: str, where: str, value: onnx.ValueInfoProto, want: TensorSpec) -> None:
    import onnx  # onnx takes seconds to import: only when a graph is checked

    tensor_type = value.type.tensor_type
    if tensor_type.elem_type:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        if dtype != want.dtype:
            raise ContractError(f"{label}: {where} has dtype {dtype}, expected {want.dtype} for '{model}'")
    if not tensor_type.HasField("shape"):
        return  # no shape recorded: nothing to contradict the spec
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim]
    shown = f"({', '.join(str(d) for d in dims)})"
    expected = f"({', '.join(str(d) for d in want.shape)})"
    if len(dims) != len(want.shape):
        raise ContractError(
            f"{label}: {where} has rank {len(dims)} {shown}, expected rank {len(want.shape)} {expected}"
            f" for '{model}'"
        )
    for axis, (have, need) in enumerate(zip(dims, want.shape, strict=True)):
        if isinstance(need, int) and isinstance(have, int) and have != need:
            raise ContractError(
                f"{label}: {where} has shape {shown}, expected {expected} (dim {axis}: {have} != {need})"
                f" for '{model}'"
            )

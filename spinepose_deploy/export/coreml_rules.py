"""Core ML's rules, checked where the conversion runs (Linux included): before onnx2torch and after coremltools.

Core ML has no ONNX frontend; the path is ONNX -> torch (onnx2torch) -> coremltools (ML Program). Two static
checks stop a conversion that could only fail later, or on the user's Mac, with one line naming the node:

- ``check_onnx``: every node of the sanitised ONNX has an onnx2torch converter for its op at the graph's
  opset (onnx2torch's own registry, looked up the way its converter does).
- ``check_program``: every operation of the converted MIL program exists in the MIL opset of the deployment
  target (coremltools' op registry: an op first defined for iOS17 cannot run on an iOS16 / macOS13 device).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from ..errors import ExportError


def check_onnx(model: onnx.ModelProto, path: Path) -> None:
    """ExportError naming the first node onnx2torch cannot convert (and how many more there are)."""
    from onnx2torch.node_converters import get_converter  # imported by the caller's guarded onnx2torch import

    opsets = {o.domain or "": o.version for o in model.opset_import}
    missing: list[str] = []
    for node in model.graph.node:
        domain = node.domain or ""
        version = opsets.get(domain, opsets.get("", 0))
        try:
            get_converter(node.op_type, version, domain)
        except NotImplementedError:
            missing.append(f"node '{node.name or node.output[0]}' ({node.op_type}, opset {version})")
    if missing:
        more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ExportError(
            f"{path}: {missing[0]}: Core ML rule onnx2torch-op: onnx2torch has no converter for it{more}"
        )


def _operations(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in getattr(op, "blocks", ()):  # cond / while_loop bodies
            yield from _operations(inner)


def program_ops(mlmodel: Any) -> list[str]:
    """Op types of a converted ML Program's functions (empty when coremltools kept no MIL program)."""
    program = getattr(mlmodel, "_mil_program", None)
    if program is None:
        return []
    return sorted({op.op_type for function in program.functions.values() for op in _operations(function)})


def check_program(mlmodel: Any, target: str, path: Path) -> list[str]:
    """The program's op types; ExportError naming an op the deployment target's MIL opset lacks."""
    import coremltools as ct
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    wanted = getattr(ct.target, target)
    ops = program_ops(mlmodel)
    for op_type in ops:
        versions = SSAOpRegistry.core_ops.get(op_type)
        if not versions:  # not a core op (a custom or dialect op): no Core ML runtime has it
            raise ExportError(f"{path}: MIL op '{op_type}': Core ML rule mil-op: not a core MIL op")
        first = min(versions)
        if first > wanted:
            raise ExportError(
                f"{path}: MIL op '{op_type}': Core ML rule mil-op: needs {first.name}, the bundle targets {target}"
            )
    return ops

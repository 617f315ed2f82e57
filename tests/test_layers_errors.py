"""The package's layers point one way (function-local imports counted), and runtime errors surface as one line.

The allowed imports below are the layer diagram: a folder imports only the folders listed for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from spinepose_deploy import backends
from spinepose_deploy.errors import InferenceError, first_line, one_line

PACKAGE = Path(__file__).resolve().parents[1] / "spinepose_deploy"
BASE = {"errors", "paths", "_version", "_atomic", "_console", "_video", "_charts", "_progress"}
ALLOWED = {
    "errors": set(),
    "paths": {"errors"},
    "_version": set(),
    "_atomic": {"errors"},
    "_console": set(),
    "_video": set(),
    "_charts": {"errors", "_atomic"},
    "_progress": set(),
    "ops": BASE,
    "spine": BASE | {"ops"},  # spine kinematics: pure numpy on ops' skeleton, plus its file writers
    "zoo": BASE,
    "backends": BASE,
    "bundle": BASE | {"zoo", "backends"},  # the on-disk contract: typed manifest, load/verify, text rendering
    "stages": BASE | {"ops", "zoo", "backends", "bundle"},
    "synth": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages"},
    "select": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth"},  # measure, rank, store, probe
    "export": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth", "select"},
    "pipeline": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth", "select", "export"},
    "bench": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth", "select", "export", "pipeline"},
    "scale": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth", "select", "export", "pipeline"},
    "cli": BASE | {"ops", "spine", "zoo", "backends", "bundle", "stages", "synth", "select", "export", "pipeline"}
    | {"bench", "scale"},
    "__init__": BASE | {"pipeline", "spine"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every package-internal import in ``path``, function-local ones included."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] == "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            names = [f"{module}.{a.name}" for a in node.names] if not node.module else [module]
            found += [(node.lineno, name) for name in names if name.startswith("spinepose_deploy")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("spinepose_deploy")]
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_points_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _layer(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if source == "__init__" and path.parent != PACKAGE:
            continue
        for line, module in _imports(path):
            target = _layer(module)
            if target not in ALLOWED and target != "__init__":  # a name re-exported by the package face
                target = "__init__"
            if target != source and target not in ALLOWED[source]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({source}) imports {module} ({target})")
    assert not wrong, "\n".join(wrong)


def test_the_per_graph_maths_is_defined_once():
    names = {"decode_simcc": "decode_simcc", "simcc_decode": "decode_simcc", "box_iou": "box_iou"}
    defined: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in names:
                defined.setdefault(names[node.name.lstrip("_")], []).append(path.name)
    assert defined == {"decode_simcc": ["pose.py"], "box_iou": ["detector.py"]}


def _reshape_graph(path: Path) -> Path:
    """x (N,) -> Reshape to (2, 2): any N but 4 fails inside ONNX Runtime, not in our feed checks."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 2])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [shape],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_runtime_failure_is_one_line_inference_error_with_the_cause(tmp_path):
    with backends.load(_reshape_graph(tmp_path / "reshape.onnx"), backend="onnxruntime") as session:
        assert session.run({"x": np.ones(4, np.float32)})["y"].shape == (2, 2)
        with pytest.raises(InferenceError, match=r"^onnxruntime reshape\.onnx: inference failed: ") as info:
            session.run({"x": np.ones(3, np.float32)})
    assert "\n" not in str(info.value) and info.value.__cause__ is not None
    assert not isinstance(info.value.__cause__, InferenceError)


def test_first_line_and_one_line():
    assert first_line(RuntimeError("\n  \n  the reason  \nstack\nmore")) == "the reason"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line("x" * 500, limit=10) == "x" * 10
    assert one_line(KeyError("k")) == "KeyError: 'k'"
    assert one_line(InferenceError("ours\nsecond")) == "ours"

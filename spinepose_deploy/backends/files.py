"""Which files a backend reads when it loads an artifact: the bytes a bundle must have verified.

An artifact is rarely one file: OpenVINO IR reads ``model.bin`` next to ``model.xml``, an ONNX graph may keep its
weights in external-data files named inside the graph, and a Core ML ``.mlpackage`` is a directory. A bundle
that hashed only the named artifact would load unverified bytes, so the bundle check asks this module for the
full list.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import uses_external_data


def _onnx_external_data(path: Path) -> list[Path]:
    """The external-data files an ONNX graph names (read without loading the tensors themselves)."""
    model = onnx.load(str(path), load_external_data=False)
    tensors = list(model.graph.initializer)
    for node in model.graph.node:  # Constant nodes may hold external tensors too
        tensors.extend(attr.t for attr in node.attribute if attr.HasField("t"))
    found: list[Path] = []
    for tensor in tensors:
        if uses_external_data(tensor):
            location = next(entry.value for entry in tensor.external_data if entry.key == "location")
            if (path.parent / location) not in found:
                found.append(path.parent / location)
    return found


def files_read(artifact: Path) -> list[Path]:
    """Every file a backend reads to load ``artifact`` (the artifact itself first), unresolved."""
    name = artifact.name.lower()
    if name.endswith(".xml"):
        return [artifact, artifact.with_suffix(".bin")]
    if name.endswith(".onnx"):
        return [artifact, *_onnx_external_data(artifact)]
    if name.endswith(".mlpackage") and artifact.is_dir():
        return sorted(p for p in artifact.rglob("*") if p.is_file() or p.is_symlink())
    return [artifact]

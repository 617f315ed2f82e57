"""Backend registry. Backends import their runtime library lazily, so listing them never fails."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionError, suggest
from .base import Availability, Backend, Capability, Precision, Session, TensorInfo

# name -> (module, class); modules are imported on first use
_REGISTRY: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "OnnxRuntimeBackend"),
    "openvino": ("openvino", "OpenVinoBackend"),
    "coreml": ("coreml", "CoreMLBackend"),
    "tensorrt": ("tensorrt", "TensorRTBackend"),
    "tensorrt-rtx": ("tensorrt_rtx", "TensorRTRTXBackend"),
}
BACKEND_NAMES: tuple[str, ...] = tuple(_REGISTRY)
_instances: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """Return the backend called ``name`` (one of BACKEND_NAMES)."""
    if name not in _REGISTRY:
        raise InvalidOptionError(
            f"--backend: '{name}' is unknown.{suggest(name, _REGISTRY)} Known: {', '.join(_REGISTRY)}"
        )
    if name not in _instances:
        module_name, class_name = _REGISTRY[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        _instances[name] = getattr(module, class_name)()
    return _instances[name]


def all_backends() -> list[Backend]:
    return [get_backend(name) for name in BACKEND_NAMES]


def backend_for(artifact: str | Path) -> Backend:
    """Pick the backend that reads this file by its suffix (the longest match: '.rtx.engine' before '.engine')."""
    text = str(artifact).lower()
    matches = [(len(s), b) for b in all_backends() for s in b.suffixes if text.endswith(s)]
    if matches:
        return max(matches, key=lambda match: match[0])[1]
    known = sorted({s for b in all_backends() for s in b.suffixes})
    raise InvalidOptionError(f"{artifact}: no backend reads this file type (known: {', '.join(known)})")


def capabilities() -> list[Capability]:
    """Every backend x device x precision, with whether it runs here and why not. Never raises."""
    rows: list[Capability] = []
    for name in BACKEND_NAMES:
        try:
            rows.extend(get_backend(name).capabilities())
        except Exception as exc:  # a broken optional install must not break doctor
            rows.append(Capability(name, "-", "-", False, f"probing failed: {type(exc).__name__}: {exc}"))
    return rows


def load(artifact: str | Path, backend: str | None = None, **options: Any) -> Session:
    """Load an artifact with the named backend, or the one its suffix implies."""
    chosen = get_backend(backend) if backend else backend_for(artifact)
    return chosen.load(artifact, **options)


__all__ = [
    "Availability",
    "Backend",
    "BACKEND_NAMES",
    "Capability",
    "Precision",
    "Session",
    "TensorInfo",
    "all_backends",
    "backend_for",
    "capabilities",
    "get_backend",
    "load",
]

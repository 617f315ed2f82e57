"""spinepose-deploy: run SpinePose fast and identically on ONNX Runtime, OpenVINO, Core ML and TensorRT."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import SpinePoseDeployError

if TYPE_CHECKING:
    from .pipeline.pipeline import Pipeline, PipelineOptions
    from .pipeline.result import PoseResult

__all__ = ["Pipeline", "PipelineOptions", "PoseResult", "SpinePoseDeployError", "__version__"]

# re-exported lazily: `import spinepose_deploy` (and every CLI start) stays free of OpenCV and numpy work
_LAZY = {
    "Pipeline": ".pipeline.pipeline",
    "PipelineOptions": ".pipeline.pipeline",
    "PoseResult": ".pipeline.result",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinepose_deploy' has no attribute {name!r}")

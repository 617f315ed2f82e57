"""spinepose-deploy: run SpinePose fast and identically on ONNX Runtime, OpenVINO, Core ML and TensorRT."""

from .errors import SpinePoseDeployError

__version__ = "0.1.0"
__all__ = ["SpinePoseDeployError", "__version__"]

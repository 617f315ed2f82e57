"""The writer table (STYLE 10): which function writes a backend's artifact from the ONNX.

A backend missing from ``WRITERS`` loads the ONNX (FP32, FP16 or QDQ) itself: that ONNX is its artifact.
The table lives in ``export/`` because writing artifacts is export's job; ``backends.formats`` says what a
backend is, not how to produce its files.
"""

from __future__ import annotations

from collections.abc import Callable

from . import coreml, openvino, tensorrt, tensorrt_rtx
from .base import WriteResult

Writer = Callable[..., WriteResult]  # (onnx_path, out_dir, *, spec, precision, batch) -> WriteResult

WRITERS: dict[str, Writer] = {
    "openvino": openvino.write, "coreml": coreml.write, "tensorrt": tensorrt.write, "tensorrt-rtx": tensorrt_rtx.write,
}
# --onnx-only: the exact ONNX the target builds its engine from (no runtime needed here)
ONNX_ONLY_WRITERS: dict[str, Writer] = {"tensorrt": tensorrt.write_onnx}


def writer_for(backend: str, onnx_only: bool = False) -> Writer | None:
    """The writer of ``backend``'s artifact (its ``--onnx-only`` one when asked), or None: the ONNX itself."""
    if onnx_only and backend in ONNX_ONLY_WRITERS:
        return ONNX_ONLY_WRITERS[backend]
    return WRITERS.get(backend)

"""Core ML backend: ``.mlpackage`` (a directory) / ``.mlmodel`` through coremltools.

Prediction needs macOS. Elsewhere ``load`` still reads and validates the spec, so a broken package
is reported on the Linux machine that exported it, then raises BackendUnavailableError; with
``validate_only=True`` it returns a Session that describes the model and refuses to run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, check_choice
from .base import Availability, Backend, Capability, Dim, Session, TensorInfo

log = logging.getLogger(__name__)

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
_ARRAY_DTYPES = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "DOUBLE": "float64",
    "INT32": "int32",
    "INT8": "int8",
}
_INT8_OPS = {"constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"}  # coremltools.optimize weights


class CoreMLSession(Session):
    backend = "coreml"

    def __init__(self, model: Any, spec: Any, device: str, unavailable: str = "") -> None:
        super().__init__()
        self._model = model
        self._unavailable = unavailable
        self.device = device
        self.precision = spec_precision(spec)
        self.inputs = [_feature_info(f) for f in spec.description.input]
        self.outputs = [_feature_info(f) for f in spec.description.output]
        self.max_batch = _max_batch(spec.description.input[0]) if spec.description.input else None
        self.batch_sizes = _batch_ladder(spec.description.input[0]) if spec.description.input else None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._model is None:
            raise BackendUnavailableError(
                f"{self.artifact}: this Core ML session was loaded to validate only: {self._unavailable}"
            )
        result = self._model.predict(feeds)
        return {name: np.asarray(value) for name, value in result.items()}

    def close(self) -> None:
        self._model = None


class CoreMLBackend(Backend):
    name = "coreml"
    suffixes = (".mlpackage", ".mlmodel")
    extra = "coreml"
    library = "coremltools"
    validates_without_runtime = True  # spec validation works on Linux/Windows too

    def availability(self) -> Availability:
        spec = importlib.util.find_spec("coremltools")
        if spec is None:
            return Availability(False, self.missing_library_reason())
        try:
            version = importlib.metadata.version("coremltools")
        except importlib.metadata.PackageNotFoundError:
            version = None
        if sys.platform != "darwin":
            return Availability(
                False,
                f"Core ML prediction needs macOS (this is {platform.system()}); "
                "conversion and spec validation still work",
                version,
            )
        # only the macOS wheels ship the native predictor; look for it without importing coremltools (slow)
        package_dir = Path(spec.origin or "").parent
        if not any(package_dir.glob("libcoremlpython*")):
            return Availability(
                False,
                "this coremltools has no native Core ML library (libcoremlpython); reinstall it",
                version,
            )
        return Availability(True, "", version)

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        units = COMPUTE_UNITS if status.ok else COMPUTE_UNITS[:1]  # one row says why none runs
        return [
            Capability(self.name, unit.lower(), precision, status.ok, status.reason, status.version)
            for unit in units
            for precision in ("fp32", "fp16", "int8")
        ]

    def _load(
        self, path: Path, *, compute_units: str = "ALL", validate_only: bool = False, **_: Any
    ) -> Session:
        if importlib.util.find_spec("coremltools") is None:
            raise BackendUnavailableError(self.missing_library_reason())
        import coremltools as ct  # runtime library, loaded on first use: listing backends never fails

        units = check_choice("coreml compute_units", str(compute_units).upper(), COMPUTE_UNITS)
        status = self.availability()
        runnable = status.ok and not validate_only
        # skip_model_load: read and check the spec (and an ML Program's weights) without compiling it
        model = ct.models.MLModel(
            str(path), compute_units=ct.ComputeUnit[units], skip_model_load=not runnable
        )
        spec = model.get_spec()
        if not status.ok and not validate_only:
            names = ", ".join(f.name for f in spec.description.input)
            raise BackendUnavailableError(
                f"backend 'coreml' is not available: {status.reason} ({path.name} is valid, inputs: {names}; "
                "pass validate_only=True to load it without running)"
            )
        reason = "" if runnable else (status.reason or "loaded with validate_only=True")
        return CoreMLSession(model if runnable else None, spec, units.lower(), reason)


def _flexible(values: list[list[int]], axis: int) -> Dim:
    column = {shape[axis] for shape in values}
    if len(column) == 1:
        return column.pop()
    return "batch" if axis == 0 else f"dim{axis}"


def _feature_info(feature: Any) -> TensorInfo:
    """One spec input/output as TensorInfo; a flexible first dim is reported as 'batch'."""
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        image = feature.type.imageType
        channels = 1 if image.colorSpace == image.GRAYSCALE else 3
        return TensorInfo(feature.name, (1, channels, image.height, image.width), "image")
    if kind != "multiArrayType":
        return TensorInfo(feature.name, (), kind or "unknown")
    array = feature.type.multiArrayType
    from coremltools.proto import FeatureTypes_pb2  # runtime library, loaded on first use: listing backends never fails

    dtype = _ARRAY_DTYPES.get(FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType), "float32")
    flexibility = array.WhichOneof("ShapeFlexibility")
    shape: tuple[Dim, ...] = tuple(int(d) for d in array.shape)  # empty when the spec does not declare it
    if flexibility == "shapeRange":
        bounds = [[r.lowerBound, r.upperBound] for r in array.shapeRange.sizeRanges]
        shape = tuple(
            _flexible([[b[0] for b in bounds], [b[1] for b in bounds]], i) for i in range(len(bounds))
        )
    elif flexibility == "enumeratedShapes":
        shapes = [list(s.shape) for s in array.enumeratedShapes.shapes]
        shape = tuple(_flexible(shapes, i) for i in range(len(shapes[0]))) if shapes else shape
    return TensorInfo(feature.name, shape, dtype)


def _max_batch(feature: Any) -> int | None:
    """The upper bound of a range-flexible batch, so larger batches are run in chunks."""
    if feature.type.WhichOneof("Type") != "multiArrayType":
        return None
    array = feature.type.multiArrayType
    if array.WhichOneof("ShapeFlexibility") != "shapeRange" or not array.shapeRange.sizeRanges:
        return None
    upper = int(array.shapeRange.sizeRanges[0].upperBound)
    return upper if upper > 0 else None  # -1: unbounded


def _batch_ladder(feature: Any) -> tuple[int, ...] | None:
    """The batch sizes of an enumerated-shapes input (the session pads/chunks to them), else None."""
    if feature.type.WhichOneof("Type") != "multiArrayType":
        return None
    array = feature.type.multiArrayType
    if array.WhichOneof("ShapeFlexibility") != "enumeratedShapes":
        return None
    return tuple(sorted({int(s.shape[0]) for s in array.enumeratedShapes.shapes})) or None


def spec_precision(spec: Any) -> str:
    """What an ML Program computes in: int8 (compressed weights), fp16 or fp32. NeuralNetworks: fp32."""
    if spec.WhichOneof("Type") != "mlProgram":
        return "fp32"
    from coremltools.proto import MIL_pb2  # runtime library, loaded on first use: listing backends never fails

    fp16 = MIL_pb2.DataType.Value("FLOAT16")
    precision = "fp32"
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type in _INT8_OPS:
                    return "int8"
                if any(out.type.tensorType.dataType == fp16 for out in op.outputs):
                    precision = "fp16"
    return precision

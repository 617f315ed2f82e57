"""Core ML artifact writer: ONNX -> sanitise -> onnx2torch -> TorchScript -> coremltools ML Program.

Core ML has no ONNX frontend, so the graph goes through torch. Conversion, saving and a read-back of
the saved spec run anywhere; a Core ML prediction only runs on macOS, so on other hosts the torch
module is checked against ONNX Runtime instead (at several batch sizes, which is what catches a
batch baked in by tracing) and the manifest says prediction was not verified here.

Detectors are fixed at (1, 3, S, S) with NMS moved to the host (``sanitize.strip_nms``): one static shape,
which the Neural Engine runs. Pose and lifter graphs take a ladder of batch sizes (``ct.EnumeratedShapes``:
1, 2, 4, 8, 16 for the default 1:4:16, plus MIN/OPT/MAX), the default because Core ML runs only the default
shape of a ``RangeDim`` input on the Neural Engine and keeps every enumerated shape there; the session pads a
batch up to the next size of the ladder and chunks larger ones (``Session.batch_sizes``). ``shapes="range"``
asks for a ``ct.RangeDim`` instead (GPU/CPU for all but its default; enumerated again if a range fails).
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import sys
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from .._atomic import atomic_dir
from ..errors import (
    BackendUnavailableError,
    ExportError,
    InputFileError,
    InvalidOptionError,
    ModelLoadError,
    check_choice,
    first_line,
)
from ..zoo.specs import ModelSpec, Role
from . import coreml_rules
from .base import BatchRange, WriteResult
from .passes import run_onnx
from .sanitize import NMS_METADATA_KEY, sanitize_for_torch

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": "FLOAT32", "fp16": "FLOAT16"}  # -> ct.precision member
DEPLOYMENT_TARGET = "iOS16"  # ML Program with flexible shapes and fp16 compute; also macOS13
INSTALL = "pip install 'spinepose-deploy[coreml]'"
SHAPES = ("enumerated", "range")  # how a batch range is expressed (see the module docstring)
_TOLERANCE = 1e-3  # torch vs ONNX Runtime, relative to max(1, |reference|): both run in fp32


def write(
    onnx_path: Path,
    out_dir: Path,
    *,
    spec: ModelSpec,
    precision: str,
    batch: BatchRange,
    shapes: str = "enumerated",
) -> WriteResult:
    """Convert ``onnx_path`` to ``<out_dir>/<role>.mlpackage`` and describe it for the bundle manifest.

    ``shapes``: 'enumerated' (the batch ladder, Neural Engine friendly) or 'range' (``ct.RangeDim``)."""
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    _check_precision(precision)
    check_choice("--coreml-shapes", shapes, SHAPES)
    ct, torch, onnx2torch = _import_backend()
    model = _load_onnx(onnx_path)
    detector = spec.role is Role.DETECTOR
    static_batch = 1 if detector else (batch.min if batch.static else None)
    notes: list[str] = []
    if detector and batch.max > 1:
        notes.append("detector converted with a fixed batch of 1 (the pipeline feeds one frame at a time)")
    start = time.perf_counter()
    sanitized = _step(onnx_path, "sanitising the graph", sanitize_for_torch, model, static_batch=static_batch)
    nms = next((p.value for p in sanitized.metadata_props if p.key == NMS_METADATA_KEY), None)
    if nms:
        notes.append("NonMaxSuppression removed: outputs are raw 'boxes' and 'scores'; NMS runs on the host")
    reference = model if _output_names(model) == _output_names(sanitized) else sanitized
    inputs, outputs = _io(sanitized, onnx_path)
    flexible = static_batch is None
    coreml_rules.check_onnx(sanitized, onnx_path)  # one line naming the node, not onnx2torch's traceback
    module = _step(onnx_path, "onnx2torch conversion", onnx2torch.convert, sanitized)
    wrapped = _tuple_outputs(torch, module).eval()
    captured, capture, max_diff = _capture(torch, wrapped, reference, inputs, batch, static_batch, onnx_path)
    mlmodel, shape_kind = _convert(
        ct, captured, capture, inputs, outputs, batch, flexible and shapes == "range", flexible, precision, onnx_path
    )
    mil_ops = coreml_rules.check_program(mlmodel, DEPLOYMENT_TARGET, onnx_path)
    if shape_kind == "enumerated" and shapes == "range":
        notes.append(
            "a batch range failed to convert; the model accepts the enumerated batch sizes "
            f"{_enumerated_batches(batch)}"
        )
    seconds = time.perf_counter() - start

    name = f"{spec.role.value}.mlpackage"
    dest = out_dir / name
    with atomic_dir(dest, replace=True) as tmp:
        # coremltools insists on a '.mlpackage' suffix; save inside the temp dir and lift the contents up.
        staged = tmp / name
        _step(onnx_path, "saving the ML Program", mlmodel.save, str(staged))
        for child in staged.iterdir():
            child.rename(tmp / child.name)
        staged.rmdir()
        described = _verify_saved(ct, tmp, inputs, outputs, batch, shape_kind, onnx_path)
        notes.append(_predict_note(ct, tmp, reference, inputs, static_batch or batch.opt, precision, onnx_path))

    files = sorted(p.relative_to(out_dir).as_posix() for p in dest.rglob("*") if p.is_file())
    extra = {
        "compute_precision": PRECISIONS[precision],
        "minimum_deployment_target": DEPLOYMENT_TARGET,
        "mil_ops_checked": f"{len(mil_ops)} MIL op types, all in the {DEPLOYMENT_TARGET} opset",
        "prediction": f"macOS only; converted and spec-validated on {platform.system()} {platform.machine()}",
        "host_nms": nms is not None,
        "coremltools": ct.__version__,
        "torch_capture": capture,
        "torch_vs_onnxruntime_max_abs_diff": max_diff,
        "batch": {"kind": shape_kind, "min": batch.min, "opt": batch.opt, "max": batch.max}
        | ({"sizes": _enumerated_batches(batch)} if shape_kind == "enumerated" else {})
        if flexible
        else {"kind": "static", "size": static_batch},
        "conversion_s": round(seconds, 2),
        **described,
    }
    if nms:
        extra["nms"] = json.loads(nms)
    log.info("core ml: %s -> %s (%s, %.1f s)", onnx_path.name, dest, precision, seconds)
    return WriteResult(primary=name, files=files, notes=notes, extra=extra)


def _check_precision(precision: str) -> None:
    if precision == "int8":
        raise InvalidOptionError("--precision: 'int8' is not available for backend 'coreml' yet; use fp16 or fp32")
    if precision not in PRECISIONS:
        raise InvalidOptionError(
            f"--precision: '{precision}' is not one of {', '.join(PRECISIONS)} for backend 'coreml'"
        )


@contextlib.contextmanager
def _quiet_coremltools() -> Iterator[None]:
    # coremltools warns at import about untested torch/scikit-learn versions and, off macOS, about its
    # missing native runtime (expected: prediction is macOS only). Keep real errors visible.
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _import_backend() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """Import coremltools, torch and onnx2torch, or say how to install them."""
    try:
        with _quiet_coremltools():
            # runtime library, loaded on first use: listing backends never fails
            import coremltools as ct
        import torch  # optional extra, loaded only when this feature runs

        onnx2torch = _import_onnx2torch()
    except ImportError as exc:
        raise BackendUnavailableError(
            f"coremltools, torch and onnx2torch are required to export for backend 'coreml' "
            f"({exc.name or exc} is missing). Install: {INSTALL}"
        ) from None
    return ct, torch, onnx2torch


def _import_onnx2torch() -> types.ModuleType:
    """Import onnx2torch even where torchvision cannot be imported.

    onnx2torch imports torchvision at module level only for its NonMaxSuppression and RoiAlign
    converters. A torchvision built for another torch (e.g. PyPI torchvision beside a CPU torch
    wheel) raises RuntimeError('operator torchvision::nms does not exist') on import, which would
    make every conversion impossible. The graphs converted here have NMS stripped and no RoiAlign,
    so for the duration of the import only a stub stands in; its functions raise if ever called.
    """
    if "onnx2torch" in sys.modules:
        _add_grid_sample(sys.modules["onnx2torch"])
        return sys.modules["onnx2torch"]
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError, AttributeError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        import onnx2torch  # optional extra, loaded only when this feature runs

        _add_grid_sample(onnx2torch)
        return onnx2torch
    names = ("torchvision", "torchvision.ops")
    saved = {name: sys.modules.get(name) for name in names}
    stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

    def unavailable(*_args: object, **_kwargs: object) -> None:
        raise ExportError(
            f"this graph needs torchvision (NMS/RoiAlign), which cannot be imported here ({reason}); "
            "strip NonMaxSuppression from the graph (sanitize.strip_nms) or install a torchvision that "
            "matches torch"
        )

    ops.nms = ops.roi_align = ops.box_convert = unavailable
    stub.ops = ops
    sys.modules.update({"torchvision": stub, "torchvision.ops": ops})
    try:
        import onnx2torch  # optional extra, loaded only when this feature runs
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    log.debug("onnx2torch imported with a torchvision stub (%s)", reason)
    _add_grid_sample(onnx2torch)
    return onnx2torch


def _add_grid_sample(onnx2torch: types.ModuleType) -> None:
    """Register an ONNX ``GridSample`` converter if this onnx2torch has none (1.5 has none).

    RF-DETR's deformable attention samples with GridSample; torch's ``grid_sample`` maps to Core ML's
    ``resample``. Registered once per process; a converter shipped by onnx2torch itself wins.
    """
    # optional extra, loaded only when this feature runs
    import torch
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node

    class OnnxGridSample(torch.nn.Module, OnnxToTorchModule):
        def __init__(self, mode: str, padding_mode: str, align_corners: bool) -> None:
            super().__init__()
            self.mode, self.padding_mode, self.align_corners = mode, padding_mode, align_corners

        def forward(self, x, grid):
            return torch.nn.functional.grid_sample(
                x, grid, mode=self.mode, padding_mode=self.padding_mode, align_corners=self.align_corners
            )

    def convert(node, graph):  # noqa: ARG001 - onnx2torch's converter signature
        attrs = node.attributes
        mode = {"linear": "bilinear", "cubic": "bicubic"}.get(
            attrs.get("mode", "bilinear"), attrs.get("mode", "bilinear")
        )
        module = OnnxGridSample(mode, attrs.get("padding_mode", "zeros"), bool(attrs.get("align_corners", 0)))
        return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))

    for version in (16, 20, 22):
        try:
            get_converter(operation_type="GridSample", version=version)
        except NotImplementedError:
            add_converter(operation_type="GridSample", version=version)(convert)


def _load_onnx(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise InputFileError(f"ONNX model {path} does not exist")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, onnx ValidationError, external-data OSError
        reason = first_line(exc) or type(exc).__name__
        raise ModelLoadError(f"{path} is not a valid ONNX model: {reason}") from exc
    if not model.graph.node or not model.graph.output:
        raise ModelLoadError(f"{path} is not a valid ONNX model: the graph has no nodes or no outputs")
    return model


def _step(path: Path, what: str, func, *args, **kwargs):
    """Run one conversion step; translate a library failure into one line naming the file and step."""
    try:
        return func(*args, **kwargs)
    except (ExportError, BackendUnavailableError):
        raise
    except Exception as exc:  # third-party converters raise anything (NotImplementedError, KeyError, ...)
        raise ExportError(
            f"core ml export of {path.name}: {what} failed: {type(exc).__name__}: {first_line(exc)}"
        ) from exc


def _output_names(model: onnx.ModelProto) -> list[str]:
    return [o.name for o in model.graph.output]


def _io(model: onnx.ModelProto, path: Path) -> tuple[list[dict], list[dict]]:
    """Inputs (name, dims, dtype) and outputs (name, dtype) of the sanitised graph."""
    inits = {t.name for t in model.graph.initializer}
    inputs = []
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tensor = inp.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if not dims or any(d is None for d in dims[1:]):
            raise ExportError(
                f"core ml export of {path.name}: input '{inp.name}' has shape {dims}; only "
                "the batch dimension may be symbolic"
            )
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        inputs.append({"name": inp.name, "dims": dims, "dtype": dtype})
    outputs = [
        {
            "name": o.name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type),
            "dims": [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in o.type.tensor_type.shape.dim
            ],
        }
        for o in model.graph.output
    ]
    return inputs, outputs


def _tuple_outputs(torch, module):
    """Wrap a module so it always returns a tuple (the tracer and coremltools want a fixed structure)."""

    class TupleOutputs(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(*args)
            return tuple(out) if isinstance(out, list | tuple) else (out,)

    return TupleOutputs(module)


def _feeds(inputs: list[dict], batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in inputs:
        shape = [batch, *inp["dims"][1:]]
        value = rng.standard_normal(shape) if inp["dtype"].kind == "f" else np.zeros(shape)
        feeds[inp["name"]] = value.astype(inp["dtype"])
    return feeds


def _check_batches(batch: BatchRange, static_batch: int | None) -> tuple[int, list[int]]:
    """The batch to trace at and the batches to check the captured module at."""
    if static_batch is not None:
        return static_batch, [static_batch]
    # Trace above 1 so no size-1 broadcast is baked in; check the ends and one more size.
    trace = batch.opt if batch.opt > 1 else min(2, batch.max)
    return trace, sorted({trace, batch.min, min(trace + 1, batch.max)})


def _capture(
    torch,
    module,
    reference: onnx.ModelProto,
    inputs: list[dict],
    batch: BatchRange,
    static_batch: int | None,
    path: Path,
):
    """TorchScript by tracing (torch.export if tracing fails), checked against ONNX Runtime."""
    trace_batch, check_batches = _check_batches(batch, static_batch)
    example = tuple(torch.from_numpy(v) for v in _feeds(inputs, trace_batch, seed=0).values())
    errors = []
    for capture in ("jit.trace", "torch.export"):
        try:
            captured = _capture_with(torch, capture, module, example, static_batch is None, batch)
            diff = _compare_torch(torch, captured, capture, reference, inputs, check_batches)
        except ExportError as exc:
            errors.append(f"{capture}: {exc}")
            continue
        except Exception as exc:  # tracer/export failures come in many types
            errors.append(f"{capture}: {type(exc).__name__}: {first_line(exc)}")
            continue
        return captured, capture, diff
    hint = "" if static_batch is not None else " (a graph that cannot take a batch range needs --batch N)"
    raise ExportError(
        f"core ml export of {path.name}: no torch capture matches ONNX Runtime: {'; '.join(errors)}{hint}"
    )


def _capture_with(torch, capture: str, module, example: tuple, flexible: bool, batch: BatchRange):
    with torch.no_grad(), warnings.catch_warnings():
        # TracerWarnings about values baked into the trace are expected; the batch check below decides.
        warnings.simplefilter("ignore")
        if capture == "jit.trace":
            return torch.jit.trace(module, example, check_trace=False)
        dynamic = None
        if flexible:
            dim = torch.export.Dim("batch", min=batch.min, max=batch.max)
            dynamic = (tuple({0: dim} for _ in example),)  # forward(*args): one entry holding all
        program = torch.export.export(module, example, dynamic_shapes=dynamic)
        return program.run_decompositions({})


def _compare_torch(
    torch, captured, capture: str, reference: onnx.ModelProto, inputs: list[dict], batches: list[int]
) -> float:
    """Max |torch - ORT| over ``batches``; raise ExportError when over tolerance or shapes differ."""
    run = captured.module() if capture == "torch.export" else captured
    names = _output_names(reference)
    worst = 0.0
    for b in batches:
        feeds = _feeds(inputs, b, seed=b)
        reference_out = run_onnx(reference, feeds)
        expected = [reference_out[n] for n in names]
        with torch.no_grad():
            got = run(*(torch.from_numpy(v) for v in feeds.values()))
        if len(got) != len(expected):
            raise ExportError(f"batch {b}: {len(got)} outputs, ONNX Runtime gives {len(expected)}")
        for name, g, e in zip(names, got, expected, strict=True):
            g = g.detach().numpy()
            if g.shape != e.shape:
                raise ExportError(f"batch {b}: output '{name}' has shape {list(g.shape)}, ONNX Runtime {list(e.shape)}")
            if e.size == 0:
                continue
            diff = float(np.max(np.abs(g.astype(np.float64) - e)))
            scale = max(1.0, float(np.max(np.abs(e))))
            if not diff <= _TOLERANCE * scale:
                raise ExportError(f"batch {b}: output '{name}' differs from ONNX Runtime by {diff:.3g}")
            worst = max(worst, diff)
    return worst


def _enumerated_batches(batch: BatchRange) -> list[int]:
    sizes = {batch.min, batch.opt, batch.max}
    sizes |= {2**i for i in range(8) if batch.min <= 2**i <= batch.max}
    return sorted(sizes)


def _convert(
    ct,
    captured,
    capture: str,
    inputs: list[dict],
    outputs: list[dict],
    batch: BatchRange,
    ranged: bool,
    flexible: bool,
    precision: str,
    path: Path,
):
    """coremltools.convert to an ML Program; returns (model, 'range' | 'enumerated' | 'static').

    ``flexible``: the batch varies; ``ranged``: as a RangeDim (else the enumerated ladder)."""
    options = dict(
        convert_to="mlprogram",
        compute_precision=getattr(ct.precision, PRECISIONS[precision]),
        minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
    )
    if capture == "torch.export":  # inputs/outputs come from the program; names are fixed afterwards
        mlmodel = _step(path, "coremltools conversion", ct.convert, captured, **options)
        return _rename(ct, mlmodel, inputs, outputs), "range" if flexible else "static"
    out_types = [ct.TensorType(name=o["name"], dtype=_ct_dtype(o["dtype"])) for o in outputs]

    def in_types(first):
        return [ct.TensorType(name=i["name"], shape=first(i["dims"]), dtype=_ct_dtype(i["dtype"])) for i in inputs]

    if not flexible:
        types_ = in_types(lambda dims: tuple(dims))
        return _step(
            path, "coremltools conversion", ct.convert, captured, inputs=types_, outputs=out_types, **options
        ), "static"
    if ranged:
        try:
            types_ = in_types(lambda dims: (ct.RangeDim(batch.min, batch.max, default=batch.opt), *dims[1:]))
            return ct.convert(captured, inputs=types_, outputs=out_types, **options), "range"
        except Exception as exc:  # a range can fail on some ops; enumerated sizes are the documented fallback
            log.warning(
                "core ml: batch range failed for %s (%s: %s); trying enumerated batch sizes",
                path.name,
                type(exc).__name__,
                str(exc).strip()[:200],
            )
    sizes = _enumerated_batches(batch)
    enumerated = in_types(
        lambda dims: ct.EnumeratedShapes(shapes=[(b, *dims[1:]) for b in sizes], default=(batch.opt, *dims[1:]))
    )
    return _step(
        path,
        "coremltools conversion (enumerated batch sizes)",
        ct.convert,
        captured,
        inputs=enumerated,
        outputs=out_types,
        **options,
    ), "enumerated"


def _ct_dtype(dtype: np.dtype):
    # Core ML multiarrays have no 64-bit types: int64 outputs become int32, float64 float32.
    if dtype.kind == "f":
        return np.float32 if dtype.itemsize >= 4 else np.float16
    return np.int32


def _rename(ct, mlmodel, inputs: list[dict], outputs: list[dict]):
    """Give the converted model the ONNX input/output names (by position)."""
    spec = mlmodel.get_spec()
    wanted = [i["name"] for i in inputs], [o["name"] for o in outputs]
    actual = [f.name for f in spec.description.input], [f.name for f in spec.description.output]
    if actual == list(wanted):
        return mlmodel
    for old_names, new_names, is_input in ((actual[0], wanted[0], True), (actual[1], wanted[1], False)):
        for old, new in zip(old_names, new_names, strict=False):
            if old != new:
                ct.utils.rename_feature(spec, old, new, rename_inputs=is_input, rename_outputs=not is_input)
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)


_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64"}


def _verify_saved(
    ct, package: Path, inputs: list[dict], outputs: list[dict], batch: BatchRange, shape_kind: str, path: Path
) -> dict:
    """Read the saved spec back; check names and the batch dimension; describe I/O for the manifest."""
    spec = _step(path, "reading the saved package back", ct.utils.load_spec, str(package))
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportError(
            f"core ml export of {path.name}: saved model is '{spec.WhichOneof('Type')}', not an ML Program"
        )
    described = {}
    for kind, features, expected in (
        ("inputs", spec.description.input, inputs),
        ("outputs", spec.description.output, outputs),
    ):
        names = [f.name for f in features]
        if names != [e["name"] for e in expected]:
            raise ExportError(
                f"core ml export of {path.name}: saved {kind} are {names}, "
                f"expected {[e['name'] for e in expected]} (the ONNX names)"
            )
        described[kind] = [_describe(f, e, shape_kind) for f, e in zip(features, expected, strict=True)]
    if shape_kind in ("range", "enumerated"):
        for feature, expected in zip(spec.description.input, inputs, strict=True):
            got = _batch_sizes(feature.type.multiArrayType)
            want = (batch.min, batch.max) if shape_kind == "range" else tuple(_enumerated_batches(batch))
            if got != want:
                raise ExportError(
                    f"core ml export of {path.name}: input '{feature.name}' accepts batch "
                    f"{got}, expected {want} ({shape_kind})"
                )
            if shape_kind == "enumerated":  # every shape of the ladder: the batch varies, nothing else
                shapes = sorted(tuple(s.shape) for s in feature.type.multiArrayType.enumeratedShapes.shapes)
                if shapes != [(b, *expected["dims"][1:]) for b in want]:
                    raise ExportError(
                        f"core ml export of {path.name}: input '{feature.name}' enumerates shapes {shapes}, "
                        f"expected the batch ladder {list(want)} over {expected['dims'][1:]}"
                    )
    return described


def _batch_sizes(array) -> tuple[int, ...]:
    flex = array.WhichOneof("ShapeFlexibility")
    if flex == "shapeRange":
        first = array.shapeRange.sizeRanges[0]
        return (int(first.lowerBound), int(first.upperBound))
    if flex == "enumeratedShapes":
        return tuple(sorted(int(s.shape[0]) for s in array.enumeratedShapes.shapes))
    return (int(array.shape[0]),) * 2 if array.shape else ()


def _describe(feature, onnx_io: dict, shape_kind: str) -> dict:
    """Name, shape and dtype of a saved feature; ML Program outputs carry no shape, so ONNX's is used."""
    array = feature.type.multiArrayType
    shape: list = [int(d) for d in array.shape] or list(onnx_io["dims"])
    if shape and shape_kind in ("range", "enumerated"):
        shape[0] = "batch"
    dtype = _DTYPES.get(array.dataType, str(array.dataType))
    return {"name": feature.name, "shape": shape or None, "dtype": dtype}


def _predict_note(
    ct, package: Path, reference: onnx.ModelProto, inputs: list[dict], size: int, precision: str, path: Path
) -> str:
    """On macOS compare one Core ML prediction with ONNX Runtime; elsewhere say it was not run."""
    if sys.platform != "darwin":
        return (
            f"Core ML prediction not run: it needs macOS (this is {platform.system()}); the torch graph "
            "was checked against ONNX Runtime and the saved spec was read back"
        )
    feeds = _feeds(inputs, size, seed=123)
    names = _output_names(reference)
    expected = run_onnx(reference, feeds)
    model = _step(path, "loading the package with Core ML", ct.models.MLModel, str(package))
    got = _step(path, "Core ML prediction", model.predict, feeds)
    tol = 5e-2 if precision == "fp16" else 1e-3
    worst = 0.0
    for name in names:
        e = expected[name]
        if e.size:
            g = np.asarray(got[name], dtype=np.float64).reshape(e.shape)
            worst = max(worst, float(np.max(np.abs(g - e))) / max(1.0, float(np.max(np.abs(e)))))
    if worst > tol:
        raise ExportError(
            f"core ml export of {path.name}: Core ML prediction differs from ONNX Runtime by "
            f"{worst:.3g} (relative to the output scale), over {tol}"
        )
    return f"Core ML prediction at batch {size} matches ONNX Runtime (max relative difference {worst:.3g})"

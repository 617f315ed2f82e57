"""Build, check and cache a stand-in ONNX graph for any model in the zoo.

A stand-in is the model's architecture in torch with seeded weights, BatchNorm statistics set
from real images, exported with the released I/O contract. Its keypoints mean nothing; its speed,
memory and code paths are real. Files are cached as ``<name>-<key12>.onnx`` where the key covers
everything that changes the bytes: this builder, the family module, the calibration images, the
torch version, the seed and the spec's contract.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import time
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx

from ... import paths
from ..._atomic import atomic_path
from ...errors import BackendUnavailableError, ContractError, ExportError
from ..specs import ModelSpec, TensorSpec, get_spec

log = logging.getLogger(__name__)

BUILDER_VERSION = "1"
OPSET = 17
NOTE = "stand-in: architecture-faithful, weights are seeded/random - keypoints mean nothing"
_HERE = Path(__file__).resolve().parent
_MODULES = {"rtmpose": "pose"}  # family value -> module name where they differ
_CALIB_SAMPLES = 8
_ORT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)",
              "int32": "tensor(int32)"}


def _spec(name_or_spec: str | ModelSpec) -> ModelSpec:
    return name_or_spec if isinstance(name_or_spec, ModelSpec) else get_spec(name_or_spec)


def _module_name(spec: ModelSpec) -> str:
    return _MODULES.get(spec.family.value, spec.family.value)


def _family_module(spec: ModelSpec) -> ModuleType:
    return importlib.import_module(f"{__package__}.{_module_name(spec)}")


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        raise BackendUnavailableError(
            "torch is required to build stand-in graphs. Install: pip install 'spinepose-deploy[standins]'"
        ) from None


def model_seed(name: str) -> int:
    """Deterministic 31-bit seed from the model name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _calib_images() -> list[Path]:
    # The packaged images, not the checkout's calib_data/: users may add files there, and the cache
    # key must not depend on where the package runs from.
    return sorted(paths.package_data_dir().glob("*.jpg"))


def _io_names(tensors: tuple[TensorSpec, ...], default: str) -> list[str]:
    return [t.name or (default if i == 0 else f"{default}_{i}") for i, t in enumerate(tensors)]


def standin_key(spec: ModelSpec) -> str:
    """sha256 (hex) over everything that determines a stand-in's bytes."""
    source = _HERE / f"{_module_name(spec)}.py"
    if not source.is_file():
        raise ExportError(f"stand-in for model '{spec.name}': no builder module {source.name} in {_HERE}")
    digest = hashlib.sha256()
    for path in [_HERE / "build.py", source, _HERE / "common.py", *_calib_images()]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
    contract = {
        "name": spec.name, "variant": spec.variant, "input_size": list(spec.input_size),
        "inputs": [[t.name, list(t.shape), t.dtype] for t in spec.inputs],
        "outputs": [[t.name, list(t.shape), t.dtype] for t in spec.outputs],
        "mean": spec.mean, "std": spec.std, "color": spec.color, "resize": spec.resize,
    }
    extra = {"torch": _torch_version(), "seed": model_seed(spec.name), "builder": BUILDER_VERSION,
             "opset": OPSET, "contract": contract}
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()


def _cache_file(spec: ModelSpec, key: str) -> Path:
    return paths.cache_subdir("standins") / f"{spec.name}-{key[:12]}.onnx"


def standin_path(name_or_spec: str | ModelSpec) -> Path:
    """Where the stand-in for a model is (or would be) cached; builds nothing."""
    spec = _spec(name_or_spec)
    return _cache_file(spec, standin_key(spec))


def is_standin(path: str | Path) -> bool:
    """True if the ONNX file at ``path`` was made by this builder (reads its metadata)."""
    model = onnx.load(str(path), load_external_data=False)
    return any(p.key == "standin" and p.value == "true" for p in model.metadata_props)


def _affine_crop(img: np.ndarray, box: tuple[float, ...], out_hw: tuple[int, int]) -> np.ndarray:
    """Crop ``box`` (x0, y0, x1, y1) padded x1.25, widened to the output aspect, as the pose pipeline does."""
    import cv2

    height, width = out_hw
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
    if bw / bh > width / height:
        bh = bw * height / width
    else:
        bw = bh * width / height
    scale = width / bw
    matrix = np.array([[scale, 0, width / 2 - cx * scale], [0, scale, height / 2 - cy * scale]], np.float32)
    return cv2.warpAffine(img, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def _letterbox(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Resize keeping aspect, pasted top-left on a 114-grey canvas (mmdeploy YOLOX)."""
    import cv2

    height, width = out_hw
    ratio = min(height / img.shape[0], width / img.shape[1])
    size = (round(img.shape[1] * ratio), round(img.shape[0] * ratio))
    canvas = np.full((height, width, 3), 114, np.uint8)
    canvas[: size[1], : size[0]] = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    return canvas


def _calibration_batch(spec: ModelSpec) -> np.ndarray | None:
    """About eight real images preprocessed as the pipeline would for this model, or None."""
    import cv2

    if spec.resize == "none":
        return None
    out_hw = tuple(spec.input_size)
    images = []
    for path in _calib_images():
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ExportError(f"stand-in calibration image {path} could not be read")
        if spec.resize == "affine":
            # the whole image and its upper part as "person boxes", each also mirrored: 4 per image
            h, w = img.shape[:2]
            for view in (img, np.ascontiguousarray(img[:, ::-1])):
                for box in ((0, 0, w, h), (w * 0.2, 0, w * 0.8, h * 0.6)):
                    images.append(_affine_crop(view, box, out_hw))
            continue
        h, w = img.shape[:2]
        views = [img, img[h // 10 : h - h // 10, w // 10 : w - w // 10]]
        for view in views + [v[:, ::-1] for v in views]:
            view = np.ascontiguousarray(view)
            if spec.resize == "letterbox":
                images.append(_letterbox(view, out_hw))
            elif spec.resize == "stretch":
                images.append(cv2.resize(view, out_hw[::-1], interpolation=cv2.INTER_LINEAR))
            else:
                raise ExportError(
                    f"stand-in for '{spec.name}': resize '{spec.resize}' has no calibration preprocessing"
                )
    batch = np.stack(images).astype(np.float32)
    if spec.color == "rgb":
        batch = batch[..., ::-1]
    if spec.mean is not None:
        batch = (batch - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def _calibrate_bn(model, batch: np.ndarray | None, spec: ModelSpec) -> None:
    """Set BatchNorm running statistics to the cumulative average over ``batch`` (the rest stays in eval)."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    if batch is None:
        shape = [2 if isinstance(d, str) else d for d in spec.inputs[0].shape]
        batch = torch.randn(_CALIB_SAMPLES, *shape[1:]).numpy()
    model.eval()
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all chunks
        bn.train()
    # big inputs in chunks of two to bound memory; two keeps train-mode BN defined on 1x1 maps
    chunk = len(batch) if batch.shape[-1] * batch.shape[-2] <= 320 * 320 else 2
    with torch.no_grad():
        for start in range(0, len(batch), chunk):
            model(torch.from_numpy(batch[start : start + chunk]))
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    model.eval()


def _export(model, dummy, spec: ModelSpec) -> onnx.ModelProto:
    import torch

    in_names, out_names = _io_names(spec.inputs, "input"), _io_names(spec.outputs, "output")
    dynamic = {}
    for name, tensor in zip(in_names + out_names, spec.inputs + spec.outputs, strict=True):
        axes = {i: d for i, d in enumerate(tensor.shape) if isinstance(d, str)}
        if axes:
            dynamic[name] = axes
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
        torch.onnx.export(
            model, (dummy,), buffer, dynamo=False, opset_version=OPSET, input_names=in_names,
            output_names=out_names, dynamic_axes=dynamic or None, do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def _declare_shapes(proto: onnx.ModelProto, spec: ModelSpec) -> None:
    """Write the spec's dims into the graph's declared I/O shapes, where the exporter lost them.

    The legacy exporter names dims it could not infer (e.g. ``MatMulsimcc_x_dim_1``); the released
    graphs declare them static. A dim the exporter fixed where the spec is symbolic is left alone so
    the contract check reports it; strict shape inference then proves the declarations consistent.
    """
    graph = {v.name: v for v in [*proto.graph.input, *proto.graph.output]}
    names = _io_names(spec.inputs, "input") + _io_names(spec.outputs, "output")
    for name, tensor in zip(names, spec.inputs + spec.outputs, strict=True):
        if name not in graph or len(graph[name].type.tensor_type.shape.dim) != len(tensor.shape):
            continue  # the contract check reports it
        for dim, want in zip(graph[name].type.tensor_type.shape.dim, tensor.shape, strict=True):
            if isinstance(want, int) and not (dim.HasField("dim_value") and dim.dim_value != want):
                dim.dim_value = want
            elif isinstance(want, str) and not dim.HasField("dim_value"):
                dim.dim_param = want
    try:
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ContractError(f"stand-in '{spec.name}': declared I/O shapes contradict the graph: {exc}") \
            from exc


def _check_contract(data: bytes, spec: ModelSpec, feed: np.ndarray) -> None:
    """Load with ONNX Runtime, compare names/dtypes/ranks/static dims with the spec, run once."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    where = f"stand-in '{spec.name}'"

    def compare(kind: str, actual: list, expected: tuple[TensorSpec, ...], default: str) -> None:
        names = _io_names(expected, default)
        if [a.name for a in actual] != names:
            raise ContractError(f"{where}: {kind} names {[a.name for a in actual]}, expected {names}")
        for arg, want in zip(actual, expected, strict=True):
            if arg.type != _ORT_TYPES.get(want.dtype, want.dtype):
                raise ContractError(f"{where}: {kind} '{arg.name}' is {arg.type}, expected {want.dtype}")
            _compare_shape(where, f"{kind} '{arg.name}'", arg.shape, want.shape)

    compare("input", session.get_inputs(), spec.inputs, "input")
    compare("output", session.get_outputs(), spec.outputs, "output")
    results = session.run(None, {session.get_inputs()[0].name: feed})
    for value, arg, want in zip(results, session.get_outputs(), spec.outputs, strict=True):
        _compare_shape(where, f"output '{arg.name}' (run)", list(value.shape), want.shape, static_run=True)


def _compare_shape(where: str, what: str, actual: list, expected: tuple, static_run: bool = False) -> None:
    if len(actual) != len(expected):
        raise ContractError(f"{where}: {what} has shape {actual}, expected {list(expected)}")
    for axis, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if isinstance(want, int) and got != want:
            raise ContractError(f"{where}: {what} axis {axis} is {got}, expected {want} in {list(expected)}")
        if isinstance(want, str) and isinstance(got, int) and not static_run:
            raise ContractError(f"{where}: {what} axis {axis} is fixed at {got}, expected symbolic '{want}'")


def _build(spec: ModelSpec, key: str) -> bytes:
    """Seed, create, calibrate BatchNorm, export, finalize, tag and check; the file's bytes."""
    import torch

    family = _family_module(spec)
    seed = model_seed(spec.name)
    export_batch = int(getattr(family, "EXPORT_BATCH", 1))
    batch = _calibration_batch(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = family.create(spec)
        _calibrate_bn(model, batch, spec)
        declared = spec.inputs[0].shape
        shape = [export_batch if i == 0 and isinstance(d, str) else d for i, d in enumerate(declared)]
        if any(isinstance(d, str) for d in shape):
            raise ExportError(
                f"stand-in '{spec.name}': input shape {list(declared)} is symbolic beyond the batch axis"
            )
        if batch is not None and shape[0] <= len(batch):
            dummy = torch.from_numpy(batch[: shape[0]].copy())
        else:
            dummy = torch.randn(*shape)
        proto = _export(model.eval(), dummy, spec)
    if hasattr(family, "finalize"):
        proto = family.finalize(proto, spec)
    props = {p.key: p.value for p in proto.metadata_props}
    props.update(standin="true", model=spec.name, seed=str(seed), builder_version=BUILDER_VERSION,
                 standin_key=key, note=NOTE)
    onnx.helper.set_model_props(proto, props)
    _declare_shapes(proto, spec)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString(deterministic=True)
    feed = dummy.numpy()
    if isinstance(spec.inputs[0].shape[0], str):
        feed = np.concatenate([feed, feed[:1]])  # one more than exported: proves the batch is dynamic
    _check_contract(data, spec, feed)
    return data


def build_standin(name_or_spec: str | ModelSpec, *, force: bool = False, progress: bool = False) -> Path:
    """Return the cached stand-in ONNX for a model, building it first if needed (or if ``force``)."""
    from filelock import FileLock

    spec = _spec(name_or_spec)
    key = standin_key(spec)
    dest = _cache_file(spec, key)
    level = logging.INFO if progress else logging.DEBUG
    with FileLock(str(dest) + ".lock"):
        if dest.is_file() and not force:
            log.debug("stand-in %s: cache hit %s", spec.name, dest)
            return dest
        log.log(level, "building stand-in %s (seed %d) -> %s", spec.name, model_seed(spec.name), dest)
        start = time.perf_counter()
        data = _build(spec, key)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
        log.log(level, "stand-in %s built in %.1f s, %.1f MB", spec.name, time.perf_counter() - start,
                len(data) / 1e6)
    return dest

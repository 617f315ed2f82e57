"""Turn the three ONNX graphs of a mode into a verified bundle for one backend and precision.

Steps per graph (detector, pose, lifter): pick the source graph (real weights or stand-in) -> passes
(simplify, dynamic batch for pose/lifter, FP16 where the backend consumes an FP16 ONNX), each verified in
ONNX Runtime -> the backend's artifact writer -> fidelity against the FP32 ONNX on real frames, measured
through the backend's own Session when it runs here. Everything is written into a temporary directory
that is renamed into place only when complete (Ctrl-C or an error leaves nothing behind).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .. import __version__
from .._atomic import atomic_dir
from ..errors import InvalidOptionError, UserError, check_choice
from ..zoo.source import SourceGraph, resolve_graph
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, ModelSpec, Role, resolve_mode
from . import frames, passes
from .base import BatchRange, WriteResult
from .bundle import FORMAT, FORMAT_VERSION, MANIFEST, Bundle, hash_files
from .fidelity import Thresholds, check, measure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Format:
    """One export target (STYLE: formats as a data table drive choices and validation)."""

    backend: str
    writer: str | None  # module in spinepose_deploy.export; None: the ONNX itself is the artifact
    precisions: tuple[str, ...]
    fp16_onnx: bool  # consumes an FP16 ONNX (ORT, TensorRT 11) rather than converting FP32 itself


FORMATS: dict[str, Format] = {
    "onnxruntime": Format("onnxruntime", None, ("fp32", "fp16"), True),
    "openvino": Format("openvino", "openvino", ("fp32", "fp16"), False),
    "coreml": Format("coreml", "coreml", ("fp32", "fp16"), False),
    "tensorrt": Format("tensorrt", "tensorrt", ("fp32", "fp16"), True),
}

PASS_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2}


@dataclass(frozen=True)
class ExportRequest:
    """Everything ``spinepose-deploy export`` takes; checked once, up front (``validate``)."""

    backend: str
    out: Path
    precision: str = "fp32"
    mode: str = DEFAULT_MODE
    detector: str = DEFAULT_DETECTOR
    model_version: str = "v2"
    batch: BatchRange = field(default_factory=BatchRange)
    weights: str = "auto"
    models_dir: Path | None = None
    force: bool = False
    roles: tuple[str, ...] = ("detector", "pose", "lifter")
    thresholds: Thresholds = field(default_factory=Thresholds)

    def validate(self) -> None:
        check_choice("--backend", self.backend, FORMATS)
        fmt = FORMATS[self.backend]
        if self.precision not in fmt.precisions:
            raise InvalidOptionError(
                f"--precision: '{self.precision}' is not available for --backend {self.backend} "
                f"(available: {', '.join(fmt.precisions)})"
            )
        for role in self.roles:
            check_choice("--roles", role, ("detector", "pose", "lifter"))
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise InvalidOptionError(f"--out: {out} exists and is a file; give a directory")
        if out.is_dir() and any(out.iterdir()) and not self.force:
            raise InvalidOptionError(f"--out: {out} exists and is not empty; use --force to replace it")


Progress = Callable[[str], None]


def _prepare(
    source: SourceGraph, precision: str, fmt: Format, feeds: dict[str, np.ndarray], notes: list[str]
) -> tuple[onnx.ModelProto, onnx.ModelProto, dict]:
    """Passes on the source graph. Returns (fp32 graph, graph for the writer, pass report)."""
    original = onnx.load(str(source.path))
    report: dict = {}
    model = passes.simplify(original)
    report["simplify"] = passes.verify("simplify", original, model, feeds, PASS_TOLERANCE["fp32"]).to_dict()
    if source.spec.role in (Role.POSE, Role.LIFTER) and not passes.has_dynamic_batch(model):
        candidate = passes.make_batch_dynamic(model)
        try:
            report["dynamic_batch"] = passes.verify(
                "dynamic_batch", model, candidate, passes.batched(feeds, 2), PASS_TOLERANCE["fp32"]
            ).to_dict()
            model = candidate
        except Exception as exc:  # a graph with a hard-coded batch stays static; Session chunks it
            notes.append(f"batch stays static: {str(exc).splitlines()[0][:200]}")
    target = model
    if precision == "fp16" and fmt.fp16_onnx:
        target = passes.to_fp16(model)
        tolerance = None if source.spec.role is Role.DETECTOR else PASS_TOLERANCE["fp16"]
        report["fp16"] = passes.verify("fp16", model, target, feeds, tolerance).to_dict()
        notes.append(f"FP16 ONNX (inputs/outputs FP32; ops kept FP32: {', '.join(passes.FP16_BLOCKED_OPS)})")
    return model, target, report


def _write_artifact(
    fmt: Format,
    target: onnx.ModelProto,
    reference: onnx.ModelProto,
    tmp: Path,
    work: Path,
    spec: ModelSpec,
    precision: str,
    batch: BatchRange,
) -> WriteResult:
    if fmt.writer is None:
        name = f"{spec.role.value}.onnx"
        onnx.save(target, str(tmp / name))
        return WriteResult(primary=name, files=[name])
    src = work / f"{spec.role.value}.src.onnx"
    onnx.save(target if fmt.fp16_onnx else reference, str(src))
    writer = importlib.import_module(f"{__package__}.{fmt.writer}")
    return writer.write(src, tmp, spec=spec, precision=precision, batch=batch)


def _fidelity(
    fmt: Format,
    request: ExportRequest,
    artifact: Path,
    spec: ModelSpec,
    reference: onnx.ModelProto,
    role_frames: frames.RoleFrames,
) -> dict:
    """Run the artifact through its backend (when it runs here) and compare with the FP32 ONNX."""
    from ..backends import get_backend

    backend = get_backend(fmt.backend)
    status = backend.availability()
    if not status.ok:
        return {"measured": False, "reason": status.reason}
    session = backend.load(artifact, precision=request.precision)
    try:
        ref_out, got_out = role_frames.run(lambda feeds: passes.run_onnx(reference, feeds), session.run)
    finally:
        session.close()
    metrics = measure(spec.role.value, ref_out, got_out, role_frames.decode_boxes(ref_out, got_out))
    metrics["frames"] = role_frames.count
    metrics["measured_on"] = f"{fmt.backend} {session.device} {session.precision}"
    failures = check(spec.role.value, metrics, request.thresholds)
    metrics["gate"] = {"passed": not failures, "failures": failures, "thresholds": request.thresholds.to_dict()}
    return metrics


def export_bundle(request: ExportRequest, progress: Progress | None = None) -> Bundle:
    """Export a bundle; returns it loaded and verified."""
    request.validate()
    say = progress or (lambda message: log.info(message))
    fmt = FORMATS[request.backend]
    selection = resolve_mode(request.mode, request.detector, request.model_version)
    specs = {role: spec for role, spec in selection.graphs().items() if role in request.roles}
    from ..backends import get_backend

    backend_version = get_backend(fmt.backend).availability().version
    images = frames.load_images()
    out = Path(request.out)
    replace = out.exists()
    graphs: dict[str, dict] = {}
    with atomic_dir(out, replace=replace) as tmp:
        work = tmp / ".work"
        work.mkdir()
        references: dict[str, onnx.ModelProto] = {}
        for role, spec in specs.items():
            say(f"{role}: source graph {spec.name}")
            source = resolve_graph(spec, weights=request.weights, models_dir=request.models_dir)
            name = frames.input_name(onnx.load(str(source.path), load_external_data=False))
            role_frames = frames.role_frames(spec, images, selection, references, name)
            notes: list[str] = []
            say(f"{role}: passes")
            fp32, target, pass_report = _prepare(source, request.precision, fmt, role_frames.first_feeds(), notes)
            references[role] = fp32
            say(f"{role}: writing {fmt.backend} {request.precision} artifact")
            written = _write_artifact(fmt, target, fp32, tmp, work, spec, request.precision, request.batch)
            say(f"{role}: fidelity vs FP32")
            fidelity = _fidelity(fmt, request, tmp / written.primary, spec, fp32, role_frames)
            graphs[role] = {
                "model": spec.name,
                "source_sha256": source.sha256,
                "standin": source.standin,
                "artifact": written.primary,
                "files": hash_files(tmp, written.files),
                "io": {"inputs": [t.__dict__ for t in spec.inputs], "outputs": [t.__dict__ for t in spec.outputs]},
                "preprocess": {
                    "input_size": list(spec.input_size),
                    "mean": spec.mean,
                    "std": spec.std,
                    "color": spec.color,
                    "resize": spec.resize,
                },
                "passes": pass_report,
                "calibration": None,
                "fidelity": fidelity,
                "notes": notes + written.notes,
                "extra": written.extra,
            }
        import shutil

        shutil.rmtree(work)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "backend": fmt.backend,
            "backend_version": backend_version,
            "precision": request.precision,
            "mode": request.mode,
            "detector": request.detector,
            "model_version": request.model_version,
            "batch": str(request.batch),
            "standin": any(g["standin"] for g in graphs.values()),
            "host": {"os": platform.system(), "machine": platform.machine(), "python": platform.python_version()},
            "graphs": graphs,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
    return Bundle.load(out)


def _json_default(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


__all__ = ["ExportRequest", "FORMATS", "UserError", "export_bundle"]

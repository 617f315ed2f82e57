"""Turn the three ONNX graphs of a mode into a verified bundle for one backend and precision.

Steps per graph (detector, pose, lifter): pick the source graph (real weights or stand-in) -> passes
(simplify, dynamic batch for pose/lifter, FP16 where the backend consumes an FP16 ONNX), each verified in
ONNX Runtime -> the backend's artifact writer -> fidelity against the FP32 ONNX on the gate's frames, measured
through the backend's own Session when it runs here. Every precision is gated on the same frames and crops
(``_reference_frames``: ``calibration.gate_frames`` on the held-out frames of the calibration source, by
default the packaged images, or synthetic scenes with ``weights="trained"``), against one ONNX Runtime
session of the FP32 graph per graph and export. Everything is written into a temporary directory
that is renamed into place only when complete (Ctrl-C or an error leaves nothing behind).

INT8 (``_export_int8``): the calibration source is checked before anything else (``validate``); the FP32
detector and pose graphs make the pipeline-aware calibration feeds of every requested graph in one pass over
the frames, and the gate's feeds from the held-out frames; after the passes, ``int8.build`` quantizes, gates
and retries with exclusions. Each graph's manifest entry records ``precision``, ``calibration`` (source,
method, samples, hold-out, data_sha256, scheme) and ``int8`` (rounds, excluded, kept, sensitivity). A graph
that still fails stops the export (``GateFailedError``) or, with ``fallback="fp16"``, is exported in FP16
with the INT8 report kept in its manifest entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import platform
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .._atomic import atomic_dir
from .._progress import Progress, ProgressEvent, Steps
from .._version import __version__
from ..backends import get_backend, tensorrt_rules
from ..backends.formats import FORMATS, BackendFormat
from ..bundle.bundle import MANIFEST, Bundle, hash_files
from ..bundle.manifest import Calibration, Fidelity, GraphEntry, GraphIO, Int8Report, Manifest, Preprocess
from ..errors import BackendUnavailableError, GateFailedError, InvalidOptionError, UserError, check_choice, first_line
from ..stages import GraphInfo
from ..stages.graph import Runner
from ..zoo.source import SourceGraph, resolve_graph
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, ModelSpec, ModeSelection, Role, resolve_mode
from . import calibration, frames, int8, passes, quantize, sanitize
from .base import BatchRange, WriteResult
from .fidelity import Thresholds, check, measure
from .writers import writer_for

log = logging.getLogger(__name__)


FALLBACKS = ("none", "fp16")
INT8_ROUNDS = 3  # exclusion rounds after the first INT8 attempt

PASS_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2}


@dataclass(frozen=True)
class ExportRequest:
    """Everything ``spinepose-deploy export`` takes; checked once, up front (``validate``)."""

    backend: str
    out: Path
    precision: str = "fp32"
    mode: str = DEFAULT_MODE
    detector: str = DEFAULT_DETECTOR
    model_version: str = DEFAULT_VERSION
    batch: BatchRange = field(default_factory=BatchRange)
    weights: str = "auto"
    models_dir: Path | None = None
    force: bool = False
    roles: tuple[str, ...] = ("detector", "pose", "lifter")
    thresholds: Thresholds = field(default_factory=Thresholds)
    # INT8 only (None: the default; set with another precision it is an error, never silently ignored)
    calib: Path | str | None = None  # images folder, video, or "synth[:N]"; None: frames.default_image_dir()
    calib_method: str | None = None  # minmax | entropy | percentile; None: the backend's (BackendFormat.calib_method)
    calib_samples: int | None = None  # default calibration.DEFAULT_SAMPLES
    fallback: str = "none"  # "fp16": a graph failing the INT8 gate is exported in FP16 instead
    int8_rounds: int = INT8_ROUNDS
    # TensorRT only: write the exact ONNX graphs the engine builder would parse (no TensorRT needed here);
    # engines are built on the target (first use, or the trtexec lines in the manifest)
    onnx_only: bool = False
    # TensorRT-RTX only: compute capabilities the engine is built for ('8.6', '12.0'); () = the builder's default
    compute_capabilities: tuple[str, ...] = ()
    # Core ML only: the pose/lifter batch as enumerated shapes (the ladder; Neural Engine) or a RangeDim
    coreml_shapes: str = "enumerated"

    @property
    def method(self) -> str:
        fmt = FORMATS.get(self.backend)
        return self.calib_method or (fmt.calib_method if fmt else "minmax")

    def writer_options(self) -> dict:
        """Options only some artifact writers take: TensorRT-RTX's compute capability targets, Core ML's shapes."""
        fmt, options = FORMATS[self.backend], {}
        if fmt.compute_targets:
            options["targets"] = self.compute_capabilities
        if fmt.batch_shapes:
            options["shapes"] = self.coreml_shapes
        return options

    @property
    def samples(self) -> int:
        return calibration.DEFAULT_SAMPLES if self.calib_samples is None else self.calib_samples

    @property
    def calibration_input(self) -> Path | str | None:
        """``calib``, else the default: rendered scenes for the synthetic-trained stand-ins (their world; the
        gate can then judge against ground truth), the packaged photos otherwise."""
        if self.calib is None and self.weights == "trained":
            return calibration.SYNTH
        return self.calib

    def validate(self) -> calibration.Source | None:
        """Check every option once, up front; returns the INT8 calibration source, opened and split (else None).

        Pass that source to ``export_bundle`` so the data is checked and opened once per export."""
        self.check_options()
        source = None
        if self.precision == "int8":  # bad calibration data is an option error: refused before any work
            source = calibration.open_source(self.calibration_input, self.samples, warn=False)
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise InvalidOptionError(f"--out: {out} exists and is a file; give a directory")
        if out.is_dir() and any(out.iterdir()) and not self.force:
            raise InvalidOptionError(f"--out: {out} exists and is not empty; use --force to replace it")
        return source

    def check_options(self) -> None:
        """The option checks of ``validate``, without touching ``out`` or the calibration data."""
        check_choice("--backend", self.backend, FORMATS)
        fmt = FORMATS[self.backend]
        if self.precision not in fmt.precisions:
            raise InvalidOptionError(
                f"--precision: '{self.precision}' is not available for --backend {self.backend} "
                f"(available: {', '.join(fmt.precisions)})"
            )
        for role in self.roles:
            check_choice("--roles", role, ("detector", "pose", "lifter"))
        check_choice("--fallback", self.fallback, FALLBACKS)
        if self.onnx_only and not fmt.builds_engine_on_target:
            builders = ", ".join(name for name, row in FORMATS.items() if row.builds_engine_on_target)
            raise InvalidOptionError(
                f"--onnx-only: only for --backend {builders} (engines are built on the GPU); "
                f"got --backend {self.backend}"
            )
        if self.compute_capabilities and not fmt.compute_targets:
            builders = ", ".join(name for name, row in FORMATS.items() if row.compute_targets)
            raise InvalidOptionError(
                f"--compute-capability: only for --backend {builders} (ahead-of-time engines); "
                f"got --backend {self.backend}"
            )
        check_choice("--coreml-shapes", self.coreml_shapes, ("enumerated", "range"))
        if self.coreml_shapes != "enumerated" and not fmt.batch_shapes:
            raise InvalidOptionError(f"--coreml-shapes: only for --backend coreml; got --backend {self.backend}")
        int8_options = {
            "--calib": self.calib is not None,
            "--calib-method": self.calib_method is not None,
            "--calib-samples": self.calib_samples is not None,
            "--fallback": self.fallback != "none",
        }
        if self.precision != "int8" and any(int8_options.values()):
            given = ", ".join(name for name, used in int8_options.items() if used)
            raise InvalidOptionError(f"{given}: only used with --precision int8 (got --precision {self.precision})")
        check_choice("--calib-method", self.method, quantize.METHODS)
        if self.samples < 1:
            raise InvalidOptionError(f"--calib-samples: {self.samples}; expected a positive number of samples")
        if self.int8_rounds < 0:
            raise InvalidOptionError(f"int8_rounds: {self.int8_rounds}; expected 0 or more retry rounds")


def _needed_roles(specs: Mapping[str, ModelSpec]) -> list[str]:
    """The graphs an export runs: those asked for, plus the detector (and pose) that make their feeds."""
    wanted = set(specs)
    return [
        r
        for r in ("detector", "pose", "lifter")
        if r in wanted or (r == "detector" and wanted - {"detector"}) or (r == "pose" and "lifter" in wanted)
    ]


def _prepare(
    source: SourceGraph, precision: str, fmt: BackendFormat, feeds: dict[str, np.ndarray], notes: list[str]
) -> tuple[onnx.ModelProto, onnx.ModelProto, dict]:
    """Passes on the source graph. Returns (fp32 graph, graph for the writer, pass report)."""
    original = onnx.load(str(source.path))
    report: dict = {}
    model = passes.simplify(original)
    report["simplify"] = passes.verify("simplify", original, model, feeds, PASS_TOLERANCE["fp32"]).to_dict()
    if fmt.host_nms and source.spec.role is Role.DETECTOR:  # no NMS kernel: the body, NMS on the host
        body = sanitize.strip_nms(model)
        if body is not model and any(p.key == sanitize.NMS_METADATA_KEY for p in body.metadata_props):
            notes.append("NonMaxSuppression cut off for the host (this backend has no NMS kernel)")
            report["strip_nms"] = {"passed": True, "outputs": [o.name for o in body.graph.output]}
            model = body
    if fmt.engine_rules:  # before FP16 / QDQ, so every TensorRT-bound graph keeps the cap
        capped, changes = tensorrt_rules.cap_topk(model)
        if changes:
            report["topk_cap"] = passes.verify("topk_cap", model, capped, feeds, PASS_TOLERANCE["fp32"]).to_dict()
            notes.extend(changes)
            model = capped
    if source.spec.role in (Role.POSE, Role.LIFTER) and not passes.has_dynamic_batch(model):
        candidate = passes.make_batch_dynamic(model)
        try:
            report["dynamic_batch"] = passes.verify(
                "dynamic_batch", model, candidate, passes.batched(feeds, 2), PASS_TOLERANCE["fp32"]
            ).to_dict()
            model = candidate
        except Exception as exc:  # a graph with a hard-coded batch stays static; Session chunks it
            notes.append(f"batch stays static: {first_line(exc, 200)}")
    target = model
    if precision == "fp16" and fmt.fp16_onnx:
        target = _lower_fp16(model, source.spec, feeds, notes, report)
    return model, target, report


def _lower_fp16(
    model: onnx.ModelProto, spec: ModelSpec, feeds: dict[str, np.ndarray], notes: list[str], report: dict
) -> onnx.ModelProto:
    target = passes.to_fp16(model)
    tolerance = None if spec.role is Role.DETECTOR else PASS_TOLERANCE["fp16"]
    report["fp16"] = passes.verify("fp16", model, target, feeds, tolerance).to_dict()
    notes.append(f"FP16 ONNX (inputs/outputs FP32; ops kept FP32: {', '.join(passes.FP16_BLOCKED_OPS)})")
    return target


def _write_artifact(
    fmt: BackendFormat,
    target: onnx.ModelProto,
    reference: onnx.ModelProto,
    tmp: Path,
    work: Path,
    spec: ModelSpec,
    precision: str,
    request: ExportRequest,
) -> WriteResult:
    write = writer_for(fmt.backend, request.onnx_only)
    if write is None:
        name = f"{spec.role.value}.onnx"
        onnx.save(target, str(tmp / name))
        return WriteResult(primary=name, files=[name])
    src = work / f"{spec.role.value}.src.onnx"
    onnx.save(target if fmt.fp16_onnx else reference, str(src))
    return write(src, tmp, spec=spec, precision=precision, batch=request.batch, **request.writer_options())


def _fidelity(
    fmt: BackendFormat,
    request: ExportRequest,
    artifact: Path,
    spec: ModelSpec,
    reference: Runner,
    role_frames: frames.RoleFrames,
    precision: str | None = None,
) -> dict:
    """Run the artifact through its backend (when it runs here) and compare with the FP32 ONNX (``reference``:
    its one ONNX Runtime session for this export)."""
    backend = get_backend(fmt.backend)
    status = backend.availability()
    options: dict = {}
    # the graph the engine builder gets (--onnx-only, or kept beside an ahead-of-time engine), run where the
    # engine cannot run
    source_graph = artifact if request.onnx_only else _source_onnx(artifact)
    proxy = not status.ok and source_graph is not None
    if proxy:
        backend, options, artifact = get_backend("onnxruntime"), {"optimize": False}, source_graph
    elif not status.ok:
        return {"measured": False, "reason": status.reason}
    session = backend.load(artifact, precision=precision or request.precision, **options)
    try:
        ref_out, got_out = role_frames.run(reference, session.run)
    finally:
        session.close()
    metrics = measure(spec.role.value, ref_out, got_out, role_frames.decode_boxes(ref_out, got_out))
    metrics.update(role_frames.accuracy())  # vs ground truth, when the frames have it (synthetic scenes)
    metrics["frames"] = role_frames.count
    metrics["frames_sha256"] = role_frames.sha256()  # the exact feeds: equal for every precision of a graph
    metrics["measured_on"] = f"{session.backend} {session.device} {session.precision}"
    if proxy:
        metrics["measured_on"] += (
            f" (the {fmt.backend}-bound ONNX run node by node, Q/DQ unfused: its numerics, not TensorRT's kernels; "
            f"{fmt.backend} does not run here: {status.reason})"
        )
    failures = check(spec.role.value, metrics, request.thresholds)
    metrics["gate"] = {"passed": not failures, "failures": failures, "thresholds": request.thresholds.to_dict()}
    return metrics


def _source_onnx(artifact: Path) -> Path | None:
    """The ONNX an ahead-of-time engine was built from, kept beside it (``<role>.onnx``), or None."""
    if artifact.suffix == ".onnx" or not artifact.name.endswith(".engine"):
        return None
    source = artifact.parent / f"{artifact.name.split('.')[0]}.onnx"
    return source if source.is_file() else None


def _host_nms(frames_: frames.RoleFrames, model: onnx.ModelProto) -> None:
    """Decode a detector cut before NMS with the NMS settings it carried (as the runtime will)."""
    settings = next((p.value for p in model.metadata_props if p.key == sanitize.NMS_METADATA_KEY), None)
    if settings is not None:
        frames_.graph = dataclasses.replace(frames_.graph, nms=json.loads(settings))


def export_bundle(
    request: ExportRequest, progress: Progress | None = None, source: calibration.Source | None = None
) -> Bundle:
    """Export a bundle; returns it loaded and verified. ``source``: what ``request.validate()`` returned (the
    calibration data, opened once); None validates here."""
    if source is None:
        source = request.validate()
    fmt = FORMATS[request.backend]
    mode_graphs = resolve_mode(request.mode, request.detector, request.model_version)
    specs = {role: spec for role, spec in mode_graphs.graphs().items() if role in request.roles}
    # source graphs; then per graph passes, artifact, fidelity (INT8: one calibration pass, then passes, INT8)
    per_graph = 3 if source is None else 2
    say = Steps(progress, len(_needed_roles(specs)) + (source is not None) + per_graph * len(specs), log)
    # INT8: the calibration data is checked before any work, so bad data leaves no bundle directory behind
    if source is not None:
        for warning in source.warnings:
            log.warning(warning)
        say(source.summary(), kind="data")

    status = get_backend(fmt.backend).availability()
    if fmt.builds_engine_on_target and not request.onnx_only and not status.ok:  # before any work, not after
        raise BackendUnavailableError(
            f"--backend {fmt.backend}: engines are built on the GPU that runs them, and this host {status.reason}; "
            "add --onnx-only to write the exact graphs (and trtexec lines) for the GPU host to build"
        )
    backend_version = status.version
    out = Path(request.out)
    replace = out.exists()
    with atomic_dir(out, replace=replace) as tmp:
        work = tmp / ".work"
        work.mkdir()
        # FP32/FP16: the calibration source only gives the gate its held-out frames (no calibration warnings)
        data = source or calibration.open_source(request.calibration_input, request.samples, warn=False)
        refs = _reference_frames(request, mode_graphs, specs, data, work, say, calibrate=source is not None)
        if source is None:
            graphs = _export_graphs(request, fmt, specs, refs, tmp, work, say)
        else:
            graphs = _export_int8(request, fmt, specs, refs, tmp, work, say)

        shutil.rmtree(work)
        manifest = Manifest.new(
            header={"tool_version": __version__,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
            backend=fmt.backend, backend_version=backend_version, precision=request.precision, mode=request.mode,
            detector=request.detector, model_version=request.model_version, batch=str(request.batch),
            onnx_only=request.onnx_only,
            host={"os": platform.system(), "machine": platform.machine(), "python": platform.python_version()},
            calibration=None if source is None else Calibration.from_dict(
                _plain({**source.describe(), "method": request.method})),
            graphs=graphs,
            compute_capabilities=(list(request.compute_capabilities) or "default") if fmt.compute_targets else None,
        )  # fmt: skip
        (tmp / MANIFEST).write_text(json.dumps(_plain(manifest.to_dict()), indent=2))
    return Bundle.load(out)


def _entry(
    spec: ModelSpec,
    source: SourceGraph,
    written: WriteResult,
    tmp: Path,
    precision: str,
    pass_report: dict,
    fidelity: dict,
    notes: list[str],
    calibration: Calibration | None = None,
    int8_report: Int8Report | None = None,
) -> GraphEntry:
    """One graph's manifest entry (``calibration`` and ``int8_report`` from the INT8 path)."""
    return GraphEntry.new(
        model=spec.name, source_sha256=source.sha256, standin=source.standin, precision=precision,
        artifact=written.primary, files=hash_files(tmp, written.files), io=GraphIO.from_spec(spec),
        preprocess=Preprocess.from_spec(spec), passes=_plain(pass_report),
        fidelity=Fidelity.from_dict(_plain(fidelity)), notes=notes + written.notes, extra=_plain(written.extra),
        calibration=calibration, int8=int8_report,
    )  # fmt: skip


@dataclass
class _References:
    """What every precision's export starts from: the source graphs, the gate's frames (one builder for every
    precision: ``calibration.gate_frames`` on the held-out frames) and, for INT8, the calibration feeds."""

    data: calibration.Source  # where the frames come from (the calibration source, held-out frames gated)
    sources: dict[str, SourceGraph]
    gate: dict[str, frames.RoleFrames]
    feeds: dict[str, calibration.FeedFiles] = field(default_factory=dict)


def _reference_frames(
    request: ExportRequest,
    mode_graphs: ModeSelection,
    specs: dict[str, ModelSpec],
    data: calibration.Source,
    work: Path | None,
    say: Steps,
    calibrate: bool,
) -> _References:
    """Resolve the source graphs and make the gate's feeds (and, when ``calibrate``, the calibration feeds)
    the way the pipeline makes them, through the source graphs' FP32 detector and pose (the passes keep
    them equal): the same frames and crops whatever the precision."""
    needed = _needed_roles(specs)
    sources, inputs = {}, {}
    for role in needed:
        spec = mode_graphs.graphs()[role]
        say(f"{role}: source graph {spec.name}")
        sources[role] = resolve_graph(spec, weights=request.weights, models_dir=request.models_dir)
        name = frames.input_name(onnx.load(str(sources[role].path), load_external_data=False))
        inputs[role] = GraphInfo.from_spec(spec, input_name=name)
    if calibrate:
        say(f"calibration: {data.samples} samples through the FP32 graphs ({', '.join(specs)})")
    ort = get_backend("onnxruntime")
    sessions = {role: ort.load(sources[role].path) for role in ("detector", "pose") if role in needed}
    refs = _References(data, sources, {})
    try:
        runners = {role: session.run for role, session in sessions.items()}
        for role in specs:  # images, with given boxes / ground truth where the source has them
            refs.gate[role] = calibration.gate_frames(data.gate_shots(role), inputs, runners, role)
        if calibrate and work is not None:
            stream = calibration.pipeline_feeds(data, inputs, runners, tuple(specs))
            refs.feeds = calibration.spool(stream, {role: work / "calibration" / role for role in specs})
    finally:
        for session in sessions.values():
            session.close()
    return refs


def gate_frames(request: ExportRequest) -> dict[str, frames.RoleFrames]:
    """The frames and crops ``request``'s fidelity gate runs each graph on (``frames_sha256`` in the manifest)."""
    request.check_options()  # ``out`` is not written
    source = calibration.open_source(request.calibration_input, request.samples, warn=False)
    mode_graphs = resolve_mode(request.mode, request.detector, request.model_version)
    specs = {role: spec for role, spec in mode_graphs.graphs().items() if role in request.roles}
    return _reference_frames(request, mode_graphs, specs, source, None, Steps(None), calibrate=False).gate


def _export_graphs(
    request: ExportRequest,
    fmt: BackendFormat,
    specs: dict[str, ModelSpec],
    refs: _References,
    tmp: Path,
    work: Path,
    say: Steps,
) -> dict[str, GraphEntry]:
    """FP32 / FP16: passes, artifact, fidelity on the gate's frames, per graph."""
    graphs: dict[str, GraphEntry] = {}
    for role, spec in specs.items():
        role_frames = refs.gate[role]
        notes: list[str] = []
        say(f"{role}: passes")
        fp32, target, pass_report = _prepare(refs.sources[role], request.precision, fmt, role_frames.first_feeds(),
                                             notes)  # fmt: skip
        _host_nms(role_frames, fp32)
        say(f"{role}: writing {fmt.backend} {request.precision} artifact")
        written = _write_artifact(fmt, target, fp32, tmp, work, spec, request.precision, request)
        say(f"{role}: fidelity vs FP32")
        fidelity = _fidelity(fmt, request, tmp / written.primary, spec, passes.onnx_runner(fp32), role_frames)
        graphs[role] = _entry(spec, refs.sources[role], written, tmp, request.precision, pass_report, fidelity, notes)
    return graphs


def _export_int8(
    request: ExportRequest,
    fmt: BackendFormat,
    specs: dict[str, ModelSpec],
    refs: _References,
    tmp: Path,
    work: Path,
    say: Steps,
) -> dict[str, GraphEntry]:
    """INT8: FP32 graphs, pipeline-aware calibration feeds, then quantize + gate + retry per graph."""
    sources, role_frames, feeds, calib = refs.sources, refs.gate, refs.feeds, refs.data
    pass_reports: dict[str, dict] = {}
    notes: dict[str, list[str]] = {}
    references: dict[str, onnx.ModelProto] = {}
    runners: dict[str, Runner] = {}
    paths: dict[str, Path] = {}
    for role in specs:
        say(f"{role}: passes")
        notes[role] = []
        references[role], _, pass_reports[role] = _prepare(
            sources[role], "fp32", fmt, role_frames[role].first_feeds(), notes[role]
        )
        _host_nms(role_frames[role], references[role])
        paths[role] = work / f"{role}.fp32.onnx"
        onnx.save(references[role], str(paths[role]))
        runners[role] = passes.onnx_runner(references[role])  # one reference session per graph per export

    graphs: dict[str, GraphEntry] = {}
    for role, spec in specs.items():
        say(f"{role}: INT8 ({fmt.backend}, {request.method} calibration, gate on held-out frames)")
        (work / role).mkdir()
        first = role_frames[role].first_feeds()
        job = int8.Int8Job(
            backend=fmt.backend,
            spec=spec,
            fp32=paths[role],
            feeds=feeds[role],
            method=request.method,
            rounds=request.int8_rounds,
            work=work / role,
            batch=request.batch,
            timing_feed=first if role == "detector" else passes.batched(first, 6),
            onnx_only=request.onnx_only,
            writer_options=request.writer_options(),
        )

        def gate(artifact: Path, spec: ModelSpec = spec, role: str = role) -> dict:
            return _fidelity(fmt, request, artifact, spec, runners[role], role_frames[role], "int8")

        calibration_entry = {
            **calib.describe(),
            "method": request.method,
            "data_sha256": feeds[role].sha256,
            "feeds": len(feeds[role]),
        }
        try:
            result = int8.build(job, gate)
        except GateFailedError as exc:
            if request.fallback != "fp16":
                raise
            say(f"{role}: INT8 failed the gate; falling back to FP16", kind="note")
            report = exc.report
            report.kept = "fp16 (fallback: INT8 failed the gate)"
            target = references[role]
            if fmt.fp16_onnx:
                target = _lower_fp16(
                    references[role], spec, role_frames[role].first_feeds(), notes[role], pass_reports[role]
                )
            written = _write_artifact(fmt, target, references[role], tmp, work, spec, "fp16", request)
            fidelity = _fidelity(fmt, request, tmp / written.primary, spec, runners[role], role_frames[role], "fp16")
            made = (written, "fp16", fidelity, notes[role])
        else:
            report = result.report
            result.move_into(tmp)
            calibration_entry["scheme"] = result.scheme.to_dict()
            made = (result.written, "int8", report.final.fidelity, notes[role] + result.notes)
        written, precision, fidelity, graph_notes = made
        typed = Calibration.from_dict(_plain(calibration_entry)), report.to_report()
        graphs[role] = _entry(spec, sources[role], written, tmp, precision, pass_reports[role], fidelity, graph_notes,
                              *typed)  # fmt: skip
    return graphs


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and tuples as lists: the JSON types the manifest holds, so
    the typed entry compares equal to the one read back from disk."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


__all__ = ["ExportRequest", "Progress", "ProgressEvent", "UserError", "export_bundle", "gate_frames"]

"""INT8 export of one graph: quantize, write each candidate artifact, gate it, retry with exclusions.

Round 1 quantizes every node. The candidates per backend are the QDQ ONNX run directly (onnxruntime), built
into an engine (tensorrt) or read by OpenVINO, plus NNCF's own quantization for OpenVINO; Core ML gets int8
weights on its ML Program. Each candidate goes through the fidelity gate via the backend's Session; of the
ones that pass, the fastest (median latency through the same Session API, interleaved) is kept. If none
passes, ``quantize.sensitivity`` ranks nodes and later rounds keep the most sensitive ones in float
(``fidelity.gate_with_retry``). The caller turns a final failure into an error or an FP16 fallback.
"""

from __future__ import annotations

import functools
import itertools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends import get_backend
from ..backends.formats import FORMATS
from ..bundle.manifest import Candidate, Fidelity
from ..errors import GateFailedError
from ..select import measure
from ..zoo.specs import ModelSpec
from . import coreml, quantize
from .base import BatchRange, WriteResult
from .calibration import FeedFiles
from .fidelity import Attempt, GateReport
from .writers import writer_for

log = logging.getLogger(__name__)

Gate = Callable[[Path], dict]  # artifact -> fidelity dict with "gate"
TIMING_RUNS = 15
SUMMARY_KEYS = ("argmax_agreement", "kpt_px_median", "kpt_px_p95", "box_recall", "box_iou", "mpjpe_mm", "relative")


@dataclass
class Int8Job:
    """One graph to quantize for one backend."""

    backend: str
    spec: ModelSpec
    fp32: Path  # FP32 ONNX after the export passes
    feeds: FeedFiles  # calibration feeds
    method: str
    rounds: int
    work: Path
    batch: BatchRange
    timing_feed: dict[str, np.ndarray] = field(default_factory=dict)
    onnx_only: bool = False  # TensorRT: write the QDQ ONNX for the target's builder, not an engine
    writer_options: dict = field(default_factory=dict)  # e.g. TensorRT-RTX's compute capability targets


@dataclass
class Int8Result:
    written: WriteResult
    folder: Path  # where ``written.files`` are
    report: GateReport
    scheme: quantize.Scheme
    notes: list[str]

    def move_into(self, bundle_dir: Path) -> None:
        for name in self.written.files:
            dest = bundle_dir / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.folder / name), str(dest))


def build(job: Int8Job, gate: Gate) -> Int8Result:
    """Quantize ``job``'s graph until a candidate passes the gate; raise GateFailedError if none does."""
    fmt = FORMATS[job.backend]
    scheme = quantize.SCHEMES[fmt.int8_scheme]
    pre, notes, cache, tail = job.fp32, [], None, []
    if fmt.int8_qdq:  # else (Core ML) it quantizes the weights of its own ML Program: no QDQ graph
        pre = job.work / "pre.onnx"
        notes = quantize.prepare(job.fp32, pre)
        cache = quantize.calibrate(pre, job.feeds, job.method, scheme, job.work / "calibration.json")
        tail = quantize.float_tail(pre)
    if tail:
        notes.append(f"{len(tail)} output post-processing node(s) kept float (never feed a Conv/MatMul/Gemm)")
    rounds = itertools.count(1)

    def attempt(excluded: list[str]) -> Attempt:
        folder = job.work / f"round{next(rounds)}"
        folder.mkdir()
        qdq = None
        if fmt.int8_qdq:
            qdq = quantize.quantize_qdq(
                pre,
                folder / "qdq.onnx",
                feeds=job.feeds,
                method=job.method,
                scheme=scheme,
                exclude=[*tail, *excluded],
                cache=cache,
            )
        if qdq is not None and not quantize.count_quantized(qdq)["quantize_linear"]:
            failure = "nothing left to quantize: every quantizable node is kept float"
            fidelity = {"gate": {"passed": False, "failures": [failure]}}
            return Attempt(excluded, fidelity, {"qdq": Candidate(False, (failure,))}, None, None)
        results = {}
        for name in fmt.int8_candidates:
            target = folder / name
            target.mkdir()
            written = _write(name, job, pre, qdq, target, [*tail, *excluded])
            results[name] = (written, target, gate(target / written.primary))
        return _choose(job, excluded, results, qdq)

    def plan(first: Attempt) -> tuple[list[list[str]], list[dict]]:
        qdq = first.payload[2] if first.payload else None
        if qdq is None:  # Core ML: no QDQ graph to rank nodes on
            return [], []
        drops = quantize.sensitivity(pre, qdq, job.feeds, job.work)
        drops = {name: drop for name, drop in drops.items() if name not in tail}
        exclusions, units = quantize.exclusion_rounds(pre, job.spec.role.value, drops, job.rounds)
        log.info("%s: most sensitive to INT8: %s", job.spec.role.value, [u.label for u in units[:5]])
        return exclusions, [u.to_dict() for u in units[:10]]

    # round 1 quantizes everything; when it fails, each retry keeps more of the most sensitive nodes float
    report = GateReport([attempt([])])
    if not report.passed and job.rounds > 0:
        exclusions, report.ranking = plan(report.rounds[0])
        for excluded in exclusions[: job.rounds]:
            report.rounds.append(attempt(excluded))
            if report.passed:
                break
    if not report.passed:
        raise GateFailedError(job.spec.role.value, report)
    written, folder, _ = report.final.payload
    report.kept = f"int8 ({report.final.chosen})"
    return Int8Result(written, folder, report, scheme, notes)


def _write(name: str, job: Int8Job, pre: Path, qdq: Path | None, target: Path, excluded: list[str]) -> WriteResult:
    stem = job.spec.role.value
    if name == "nncf":
        return quantize.nncf_openvino(pre, job.feeds, target, stem, excluded)
    if name == "coreml-weights":
        written = coreml.write(job.fp32, target, spec=job.spec, precision="fp16", batch=job.batch, **job.writer_options)
        notes = quantize.coreml_weights(target / written.primary, job.feeds)
        files = sorted(p.relative_to(target).as_posix() for p in (target / written.primary).rglob("*") if p.is_file())
        return WriteResult(written.primary, files, written.notes + notes, {**written.extra, "weights": "int8"})
    counts = quantize.count_quantized(qdq)
    note = f"QDQ ONNX ({counts['quantize_linear']} QuantizeLinear, {len(excluded)} node(s) kept float)"
    write = writer_for(job.backend, job.onnx_only)
    if write is None:  # the QDQ ONNX itself is the artifact
        artifact = f"{stem}.onnx"
        shutil.copyfile(qdq, target / artifact)
        return WriteResult(artifact, [artifact], [note], {"qdq": counts})
    written = write(qdq, target, spec=job.spec, precision="int8", batch=job.batch, **job.writer_options)
    written.notes.insert(0, note)
    return written


def _summary(fidelity: dict) -> Candidate:
    return Candidate.from_fidelity(Fidelity.from_dict(fidelity), SUMMARY_KEYS)


def _choose(job: Int8Job, excluded: list[str], results: dict, qdq: Path | None) -> Attempt:
    """The fastest passing candidate (latency only measured when several pass); else the first."""
    summaries = {name: _summary(fidelity) for name, (_, _, fidelity) in results.items()}
    passing = [name for name, summary in summaries.items() if summary.passed]
    if len(passing) > 1 and job.timing_feed:
        latency = median_latency(
            job.backend, {n: results[n][1] / results[n][0].primary for n in passing}, job.timing_feed
        )
        summaries.update({name: summaries[name].with_latency(ms) for name, ms in latency.items()})
        chosen = min(passing, key=latency.__getitem__)
    else:
        chosen = passing[0] if passing else next(iter(results))
    written, folder, fidelity = results[chosen]
    return Attempt(excluded, fidelity, summaries, chosen, (written, folder, qdq))


def median_latency(backend: str, artifacts: dict[str, Path], feed: dict[str, np.ndarray]) -> dict[str, float]:
    """Median ms per artifact through the backend's Session; runs interleaved so load spikes hit all alike."""
    sessions = {name: get_backend(backend).load(path, precision="int8") for name, path in artifacts.items()}
    try:
        for session in sessions.values():
            session.run(feed)  # warm-up
        calls = {name: functools.partial(session.run, feed) for name, session in sessions.items()}
        times = measure.run_window(calls, runs=TIMING_RUNS)
    finally:
        for session in sessions.values():
            session.close()
    return {name: float(np.median(values)) * 1000.0 for name, values in times.items()}

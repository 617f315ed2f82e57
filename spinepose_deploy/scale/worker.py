"""One input file at a time, as ``spinepose-deploy infer`` does it, plus a completion marker.

Free of Ray: the Ray actor (``ray_infer``) is a thin shell around ``PipelineSpec.build`` and ``run_unit``.
Each input runs through ``pipeline.infer.run_infer`` with a one-source ``OutputPlan`` of the same kind as
the whole run's plan, so every JSON and overlay byte and name is what the single-machine command writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError, one_line
from ..pipeline.infer import OutputPlan, run_infer
from ..pipeline.io import InputSource, InputSpec
from ..pipeline.pipeline import Pipeline
from . import resume
from .spine_rows import Rows, to_bytes

log = logging.getLogger(__name__)

@dataclass
class Unit:
    """One input to process, with its resume fingerprint and marker path; ``attempts`` so far."""

    source: InputSource
    fingerprint: str
    marker: Path  # local marker; a run whose outputs go to an object store keeps its markers there (``remote``)
    attempts: int = 0
    key: str | None = None  # the input's key in the object store it is read from (``source.path`` is that key)
    size: int | None = None  # bytes, when known without a stat (an object's listing)


@dataclass
class FileOutcome:
    """What happened to one input: status done | skipped | failed."""

    source: str
    name: str
    kind: str
    status: str
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    outputs: int = 0
    error: str | None = None
    attempts: int = 1
    worker: str | None = None
    previous: bool = False  # failed in an earlier run; not tried again (the file is unchanged)
    decode: dict | None = None  # a damaged video: DecodeReport.to_dict() plus its one-line "warning"
    spine: bytes | None = None  # the input's spine rows for the driver (``spine_rows.to_bytes``), when asked

    def to_dict(self) -> dict[str, Any]:
        keep = {"done": ("frames", "people", "seconds", "outputs", "attempts", "worker"),
                "skipped": ("frames", "outputs"), "failed": ("error", "attempts", "worker")}[self.status]  # fmt: skip
        data = {"source": self.source, "name": self.name, "kind": self.kind}
        data.update({key: getattr(self, key) for key in keep})
        if self.previous:
            data["previous"] = True
        if self.decode is not None and self.status in ("done", "skipped"):
            data["decode"] = self.decode
        return data


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def skipped(unit: Unit, record: Mapping[str, Any]) -> FileOutcome:
    source = unit.source
    return FileOutcome(str(source.path), source.name, source.kind, "skipped", frames=int(record.get("frames", 0)),
                       outputs=len(record.get("outputs") or []), attempts=0, decode=record.get("decode"))  # fmt: skip


def run_unit(
    pipeline: Pipeline,
    plan: OutputPlan,
    unit: Unit,
    *,
    spine_only: bool = False,
    on_frame: Callable[[], None] | None = None,
    spine: bool = False,
) -> FileOutcome:
    """Process one input like ``infer`` would, then write its marker (``spine``: keep its results as spine
    rows for the driver, ``FileOutcome.spine``); any error becomes a failed outcome
    (and a failed marker, so an unchanged bad file is not retried by the next run).

    An input whose marker already says complete (a retried batch that got this far before its worker
    died) is not processed again.
    """
    source = unit.source
    outcome = FileOutcome(str(source.path), source.name, source.kind, "done", attempts=unit.attempts + 1,
                          worker=worker_label())  # fmt: skip
    record = resume.completed(unit.marker, unit.fingerprint)
    if record is not None:
        outcome.frames, outcome.outputs = int(record.get("frames", 0)), len(record.get("outputs") or [])
        return outcome
    one = OutputPlan(InputSpec(plan.spec.kind, (source,), plan.spec.root), plan.json_out, plan.vis_out)
    base = {"source": str(source.path), "name": source.name, "kind": source.kind, "fingerprint": unit.fingerprint,
            "worker": outcome.worker}  # fmt: skip
    if source.kind != "image" or unit.attempts > 0:
        _remove_temporaries(one, source)
    began = time.perf_counter()
    try:
        rows = Rows() if spine else None
        summary = run_infer(pipeline, one, spine_only=spine_only, progress=(_ignore, on_frame or _nothing), spine=rows)
        if summary.stopped:  # run_infer turns KeyboardInterrupt (a cancelled task) into stopped
            outcome.status, outcome.error = "failed", f"{source.path}: interrupted"
            return outcome
        if summary.frames == 0:
            raise InputFileError(f"{source.path}: no frame could be read (empty or truncated video)")
        record = {**base, "frames": summary.frames, "people": summary.people}
        report = summary.damaged.get(str(source.path))
        if report is not None:
            outcome.decode = {**report.to_dict(), "warning": report.warning(str(source.path))}
            record["decode"] = outcome.decode
        resume.write_marker(unit.marker, record, summary.files)
        resume.failed_path(unit.marker).unlink(missing_ok=True)
    except Exception as exc:  # a bad file never stops the run: it is reported with its one-line reason
        outcome.status, outcome.error = "failed", one_line(exc)
        log.warning("%s", outcome.error)
        resume.write_failure(unit.marker, {**base, "error": outcome.error})
        return outcome
    outcome.frames, outcome.people, outcome.outputs = summary.frames, summary.people, len(summary.files)
    if rows is not None:
        outcome.spine = to_bytes(rows.rows, rows.fps)
    outcome.seconds = round(time.perf_counter() - began, 3)
    return outcome


def _remove_temporaries(plan: OutputPlan, source: InputSource) -> None:
    """Delete the temporaries a killed worker left for this input's outputs (atomic writes and the overlay
    video's ``.<stem>.XXXXXXXX<suffix>``). Images only on a retry: listing a huge folder per image costs."""
    patterns: list[tuple[Path, re.Pattern]] = []
    json_path = plan.json_path(source, 0 if source.is_stream else None)
    if json_path is not None:
        base = r"[^/]*" if source.is_stream else re.escape(json_path.name)
        patterns.append((json_path.parent, re.compile(rf"\.{base}\..+\.partial")))
    vis_path = plan.vis_path(source)
    if vis_path is not None:
        if source.is_stream:
            name = rf"\.{re.escape(vis_path.stem)}\.[a-z0-9_]{{8}}{re.escape(vis_path.suffix)}"
        else:
            name = rf"\.{re.escape(vis_path.name)}\..+\.partial"
        patterns.append((vis_path.parent, re.compile(name)))
    for folder, pattern in patterns:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.is_file() and pattern.fullmatch(entry.name):
                    log.info("removing %s left by an interrupted worker", entry.path)
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _ignore(name: str, total: int | None) -> None:
    pass


def _nothing() -> None:
    pass

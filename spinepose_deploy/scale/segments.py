"""Long videos on Ray in segments: split, run on different workers, verify each boundary, stitch.

A video longer than ``--segment-seconds`` is cut into segments whose first frames are multiples of the
detection interval (``--det-every``), so each segment start is a frame where the whole-video run detects
anyway ("due"): the schedule is the same by construction. Each worker:

1. (segments after the first, when lifting) runs the chain from frame 0 to the first frame with people, for
   the metric scale the whole-video run fixes there (usually frame 0: one frame);
2. seeks to ``overlap`` frames before its start (a multiple of the interval: a due detection) and runs the
   detect -> pose -> lift chain (``Pipeline.chain``) over that warm-up, writing nothing;
3. runs its own frames and returns their raw results (unsmoothed keypoints, camera-space 3D).

The driver checks every boundary: the chain state digest after segment k's warm-up must equal segment
k-1's at its last frame (same carried boxes, tracks up to their names, thumbnail, counters, scale) and the
warm-up frames decoded after the seek must equal the ones the previous segment decoded in sequence. Equal
state and equal frames give equal results from there on: the stitched raw results are then exactly the
whole-video run's. A boundary that fails the check (a warm-up too short for some track) makes the video run
again as one segment. Then the driver replays the cheap sequential part over the stitched frames: IoU
track ids (so ids are continuous across boundaries, by construction), One-Euro smoothing and the world
frame (``StreamFinish``), and writes through the single-machine writers (``pipeline.infer.write_frame``).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidOptionError, SpinePoseDeployError, one_line
from ..ops.image import as_bgr
from ..ops.tracking import pose_to_bbox
from ..pipeline.infer import InferSummary, OutputPlan, write_frame
from ..pipeline.io import InputSource, VideoReader
from ..pipeline.pipeline import Pipeline, PipelineOptions, StreamFinish, make_tracker
from ..pipeline.result import PoseResult
from ..pipeline.spine_outputs import SpineRecorder
from . import resume
from .remote import Stores, publish
from .spine_rows import Rows, to_bytes
from .worker import FileOutcome, Unit, worker_label

# benchmarks/ray_scaling.py: a segment costs a seek, OVERLAP_INTERVALS detection intervals of warm-up and a
# task round trip; at 60 s of video per segment that is under 1 % of the segment's work, while a 2-hour video
# still spreads over up to 120 workers
DEFAULT_SEGMENT_SECONDS = 60.0
OVERLAP_INTERVALS = 2  # warm-up before each segment start, in detection intervals


def check_segment_seconds(value: float | None, option: str = "--segment-seconds") -> float | None:
    """``value`` as seconds of video per segment (None or 0: never split); else a one-line error."""
    if value is None or value == 0:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InvalidOptionError(f"{option}: {value!r}, expected seconds > 0 (0: never split a video)")
    return float(value)


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` .. ``stop - 1`` (``stop`` None: to the end), run after ``warmup`` frames before them."""

    index: int
    start: int
    stop: int | None
    warmup: int = 0


def plan_segments(frame_count: int | None, fps: float, seconds: float | None, every: int) -> list[Segment]:
    """The segments of a video of ``frame_count`` frames; one when it is short, unknown or ``seconds`` is None.

    Segment starts are multiples of ``every`` (the detection interval); a short tail joins the last segment.
    """
    if seconds is None or not frame_count or fps <= 0:
        return [Segment(0, 0, None)]
    length = max(every, round(seconds * fps / every) * every)
    starts = list(range(0, frame_count, length))
    if len(starts) > 1 and frame_count - starts[-1] < length / 2:
        starts.pop()  # a short tail: part of the previous segment
    overlap = OVERLAP_INTERVALS * every
    stops = [*starts[1:], None]
    return [Segment(i, a, b, min(overlap, a)) for i, (a, b) in enumerate(zip(starts, stops, strict=True))]


@dataclass
class SegmentResult:
    """What a worker returns for one segment (raw results of its own frames, plus what the driver checks)."""

    segment: Segment
    results: list[PoseResult]
    fps: float
    options: PipelineOptions
    head: str | None = None  # chain digest after the warm-up (segments after the first)
    tail: str = ""  # chain digest after the last frame
    head_frames: list[str] = field(default_factory=list)  # md5 of the warm-up frames, decoded after the seek
    tail_frames: list[str] = field(default_factory=list)  # md5 of the last frames (as many as the next warm-up)
    damaged: list[int] = field(default_factory=list)
    decode: dict | None = None
    image_hw: tuple[int, int] | None = None  # the frames' size (the spine recorder re-lifts with it)
    seconds: float = 0.0  # worker time, warm-up and scale probe included
    overhead_seconds: float = 0.0  # of which: the scale probe, the seek and the warm-up (what splitting costs)


def run_segment(
    pipeline: Pipeline, source: InputSource, segment: Segment, tail: int, on_frame: Callable[[], None] | None = None
) -> SegmentResult:
    """Run ``segment`` of ``source`` (a local video); ``tail``: how many last frames to fingerprint."""
    began = time.perf_counter()
    opts = pipeline.options
    scale = _first_scale(pipeline, source, segment.start - segment.warmup) if segment.start > 0 else None
    first = segment.start - segment.warmup
    chain = pipeline.chain(scale)
    out = SegmentResult(segment, [], 0.0, opts)
    hashes: list[str] = []
    with VideoReader(source) as reader:
        out.fps = reader.fps
        reader.seek(first)
        for index, frame in enumerate(reader, first):
            if segment.stop is not None and index >= segment.stop:
                break
            image = as_bgr(frame)
            result, _ = chain.step(pipeline, index, image)
            if index < segment.start:
                out.head_frames.append(_md5(image))
                if index == segment.start - 1:
                    out.head = chain.digest()
                    out.overhead_seconds = time.perf_counter() - began
                continue
            out.results.append(result)
            out.image_hw = (int(image.shape[0]), int(image.shape[1]))
            hashes.append(_md5(image))
            if on_frame is not None:
                on_frame()
        out.tail = chain.digest()
        out.tail_frames = hashes[-tail:] if tail else []
        out.damaged = sorted(i for i in reader.decode.damaged if i >= segment.start)
        if not reader.decode.ok:
            out.decode = reader.decode.to_dict()
    out.seconds = time.perf_counter() - began
    return out


def _first_scale(pipeline: Pipeline, source: InputSource, before: int) -> float | None:
    """The metric scale a whole-video run fixes at its first frame with people (scanning frames < ``before``)."""
    if not (pipeline.options.lift and pipeline.options.metric_scale):
        return None
    chain = pipeline.chain()
    with VideoReader(source) as reader:
        for index, frame in enumerate(reader):
            if index >= before:
                break
            chain.step(pipeline, index, as_bgr(frame))
            if chain.state.scale is not None:
                return chain.state.scale
    return None


def _md5(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes(), usedforsecurity=False).hexdigest()


def mismatch(parts: list[SegmentResult]) -> str | None:
    """Why the segments do not join exactly (the first boundary that fails), or None."""
    for before, after in zip(parts, parts[1:], strict=False):
        k = after.segment.index
        if len(before.results) != (after.segment.start - before.segment.start):
            return f"segment {k - 1} ended after {len(before.results)} frames, before frame {after.segment.start}"
        if after.head_frames != before.tail_frames[len(before.tail_frames) - len(after.head_frames):]:
            return f"segment {k}: frames decoded after seeking to {after.segment.start - after.segment.warmup} differ"
        if after.head != before.tail:
            return f"segment {k}: the warm-up did not reach the state segment {k - 1} ended in"
    return None


def stitch(
    parts: list[SegmentResult],
    plan: OutputPlan,
    source: InputSource,
    *,
    spine_only: bool = False,
    spine: SpineRecorder | None = None,
) -> InferSummary:
    """Write the joined segments as ``infer`` writes the whole video: ids, smoothing and world frame replayed."""
    opts, fps = parts[0].options, parts[0].fps
    tracker, finish = make_tracker(opts), StreamFinish(opts, fps)
    damaged = {i for part in parts for i in part.damaged}
    image_hw = next((part.image_hw for part in parts if part.image_hw is not None), None)
    summary = InferSummary(sources=1, standin=any(r.standin for p in parts for r in p.results[:1]))
    index = 0
    for part in parts:
        for result in part.results:
            ids = tracker.update(pose_to_bbox(result.keypoints))  # what TrackChain.step gives a whole-video run
            write_frame(plan, source, index, fps, finish(result, ids), summary, spine_only, spine, index in damaged,
                        image_hw)  # fmt: skip
            index += 1
    if spine is not None:
        summary.files.extend(spine.finish_source(source.name, fps))
    return summary


def write_video(
    parts: list[SegmentResult], unit: Unit, plan: OutputPlan, stores: Stores, *, spine_only: bool, spine: bool
) -> FileOutcome:
    """On the driver: stitch a video's segments into its outputs and marker (into the store when the outputs
    are there); any error becomes a failed outcome naming the file, as on a worker."""
    source = unit.source
    label = f"{stores.input.scheme}://{unit.key}" if stores.input and unit.key else str(source.path)
    outcome = FileOutcome(label, source.name, source.kind, "done", attempts=unit.attempts + 1,
                          worker=f"{worker_label()} (stitched {len(parts)} segments)")  # fmt: skip
    base = {"source": label, "name": source.name, "kind": source.kind, "fingerprint": unit.fingerprint,
            "worker": outcome.worker, "segments": len(parts)}  # fmt: skip
    state = stores.state
    with tempfile.TemporaryDirectory(prefix="spinepose-stitch-") as tmp:
        root = Path(tmp)
        local = plan if state is None else OutputPlan(plan.spec, root / "json" if stores.json else None,
                                                      root / "vis" if stores.vis else None)  # fmt: skip
        marker = unit.marker if state is None else root / "state" / "markers" / unit.marker.name
        rows = Rows() if spine else None
        try:
            summary = stitch(parts, local, source, spine_only=spine_only, spine=rows)
            record = {**base, "frames": summary.frames, "people": summary.people}
            decode = [p.decode for p in parts if p.decode]
            if decode:
                outcome.decode = record["decode"] = decode[0]
            resume.write_marker(marker, record, summary.files)
            if state is not None:
                publish(root, marker, stores, state, label)
            else:
                resume.failed_path(marker).unlink(missing_ok=True)
        except (SpinePoseDeployError, OSError) as exc:
            outcome.status, outcome.error = "failed", one_line(exc)
            return outcome
    outcome.frames, outcome.people, outcome.outputs = summary.frames, summary.people, len(summary.files)
    if rows is not None:
        outcome.spine = to_bytes(rows.rows, rows.fps)
    return outcome

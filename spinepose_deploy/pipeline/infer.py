"""``spinepose-deploy infer``'s work: run a Pipeline over an input and write JSON / overlays.

Output names follow upstream SpinePose: ``--json x.json`` for one image; a folder gets ``<name>.json``
per image and ``frame_00000.json`` per video frame (in ``<name>/`` when the input is a folder). Overlays:
a file for one image or video (by suffix), otherwise a folder with ``<name>.<ext>`` / ``<name>.mp4``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .._video import DecodeReport
from ..errors import InvalidOptionError
from ..ops.image import IMAGE_SUFFIXES, read_image
from .draw import draw_result
from .io import (
    VIDEO_SUFFIXES,
    InputSource,
    InputSpec,
    VideoReader,
    VideoWriter,
    gui_available,
    write_image,
    write_openpose,
)
from .overlap import ahead
from .pipeline import Pipeline
from .result import PoseResult
from .spine_outputs import SpineRecorder, angle_labels

log = logging.getLogger(__name__)

WINDOW = "spinepose-deploy"


@dataclass
class InferSummary:
    """What a run did: frames, people summed over frames, wall time, files written."""

    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    sources: int = 0
    files: list[Path] = field(default_factory=list)
    standin: bool = False
    stopped: bool = False  # the user pressed q in the --show window
    damaged: dict[str, DecodeReport] = field(default_factory=dict)  # video path -> what went wrong decoding it

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# start(name, total frames or None) once per source, then step() once per frame
Progress = tuple[Callable[[str, int | None], None], Callable[[], None]]


@dataclass(frozen=True)
class OutputPlan:
    """Where each source's JSON and overlay go; built (and checked) before anything runs."""

    spec: InputSpec
    json_out: Path | None = None
    vis_out: Path | None = None

    def __post_init__(self) -> None:
        single = len(self.spec.sources) == 1 and self.spec.kind != "folder"
        if self.json_out is not None and self.json_out.suffix.lower() == ".json" and self.spec.kind != "image":
            raise InvalidOptionError(
                f"--json: '{self.json_out}' is a file, but a {self.spec.kind} input writes one JSON per "
                "image/frame; give a folder"
            )
        if self.vis_out is not None:
            suffix = self.vis_out.suffix.lower()
            if not single and suffix in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                raise InvalidOptionError(f"--vis: '{self.vis_out}' is a file, but a folder input needs a folder")
            if single and self.spec.kind == "image" and suffix in VIDEO_SUFFIXES:
                raise InvalidOptionError(f"--vis: '{self.vis_out}' is a video file for an image input")
            if single and self.spec.kind != "image" and suffix in IMAGE_SUFFIXES:
                raise InvalidOptionError(f"--vis: '{self.vis_out}' is an image file for a {self.spec.kind} input")

    def json_path(self, source: InputSource, frame: int | None = None) -> Path | None:
        out = self.json_out
        if out is None:
            return None
        if frame is None:
            return out if out.suffix.lower() == ".json" else out / f"{source.name}.json"
        folder = out / source.name if self.spec.kind == "folder" else out
        return folder / f"frame_{frame:05d}.json"  # upstream's per-frame name

    def vis_path(self, source: InputSource) -> Path | None:
        out = self.vis_out
        if out is None:
            return None
        if out.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            return out
        if source.kind == "image":
            return out / f"{source.name}{source.path.suffix.lower() if source.path else '.jpg'}"
        return out / f"{source.name}.mp4"


def check_show() -> None:
    """Refuse ``--show`` up front where OpenCV has no GUI (headless builds, servers)."""
    if not gui_available():
        raise InvalidOptionError(
            "--show: this OpenCV build has no GUI (opencv-python-headless, the default); for windows: "
            "pip uninstall -y opencv-python-headless && pip install opencv-python, or drop --show"
        )


def run_infer(
    pipeline: Pipeline,
    plan: OutputPlan,
    *,
    spine_only: bool = False,
    show: bool = False,
    progress: Progress | None = None,
    spine: SpineRecorder | None = None,
) -> InferSummary:
    """Run ``pipeline`` over every source of ``plan.spec``; write what ``plan`` asks for (and ``spine``, its
    angle CSV / plot / TRC / C3D files, at the end even when stopped early)."""
    start, step = progress or (lambda name, total: None, lambda: None)
    summary = InferSummary(standin=pipeline.standin)
    began = time.perf_counter()
    # images are read and detected one ahead on a worker thread (overlap.ahead) while this one runs pose and writes
    images = ahead(lambda s: _read_and_detect(pipeline, s), [s for s in plan.spec.sources if s.kind == "image"])
    try:
        for source in plan.spec.sources:
            summary.sources += 1
            if source.kind == "image":
                start(source.name, 1)
                loaded = next(images)
                single = len(plan.spec.sources) == 1
                _run_image(pipeline, plan, loaded, summary, spine_only, show, single, spine)
                step()
            else:
                _run_stream(pipeline, plan, source, summary, spine_only, show, start, step, spine)
            if summary.stopped:
                break
    except KeyboardInterrupt:  # Ctrl-C ends a webcam session: keep what was written, report it
        summary.stopped = True
    else:
        _finish_spine(spine, summary, pipeline)
    finally:
        images.close()
        summary.seconds = time.perf_counter() - began
        if show:
            _close_windows()
    return summary


@dataclass(frozen=True)
class _LoadedImage:
    source: InputSource
    image: np.ndarray
    detections: tuple[np.ndarray, np.ndarray] | None


def _read_and_detect(pipeline: Pipeline, source: InputSource) -> _LoadedImage:
    image = read_image(source.path)
    detections = pipeline.detect(image) if pipeline.sessions.get("detector") is not None else None
    return _LoadedImage(source, image, detections)


def _run_image(
    pipeline: Pipeline,
    plan: OutputPlan,
    loaded: _LoadedImage,
    summary: InferSummary,
    spine_only: bool,
    show: bool,
    single: bool,
    spine: SpineRecorder | None = None,
) -> None:
    source, image = loaded.source, loaded.image
    result = pipeline(image, detections=loaded.detections)
    if pipeline.options.lift:
        result = pipeline.to_world(result)  # upstream writes world-space 3D for images too
    _account(summary, result)
    labels = _spine_frame(spine, source.name, 0, None, result, image.shape[:2])
    if spine is not None:
        summary.files.extend(spine.finish_source(source.name, 1.0))  # a still image: one frame per "track"
    json_path = plan.json_path(source)
    if json_path is not None:
        summary.files.append(write_openpose(json_path, result.to_openpose(spine_only=spine_only)))
    vis_path = plan.vis_path(source)
    if vis_path is not None or show:
        overlay = draw_result(image, result, spine_only=spine_only, labels=labels)
        if vis_path is not None:
            summary.files.append(write_image(vis_path, overlay))
        if show:
            summary.stopped = _show(overlay, wait_ms=0 if single else 1)


def _run_stream(
    pipeline: Pipeline,
    plan: OutputPlan,
    source: InputSource,
    summary: InferSummary,
    spine_only: bool,
    show: bool,
    start: Callable[[str, int | None], None],
    step: Callable[[], None],
    spine: SpineRecorder | None = None,
) -> None:
    vis_path = plan.vis_path(source)
    with VideoReader(source) as reader:
        start(source.name, reader.frame_count)
        writer = VideoWriter(vis_path, reader.fps) if vis_path is not None else None
        # closed explicitly (not at garbage collection): the look-ahead thread stops before the reader closes
        pairs = _paired(reader, pipeline, reader.fps)
        try:
            for index, (frame, result) in enumerate(pairs):
                labels = write_frame(plan, source, index, reader.fps, result, summary, spine_only, spine,
                                     reader.damaged(index), frame.shape[:2])  # fmt: skip
                if writer is not None or show:
                    overlay = draw_result(frame, result, spine_only=spine_only, labels=labels)
                    if writer is not None:
                        writer.write(overlay)
                    if show and _show(overlay, wait_ms=1):
                        summary.stopped = True
                        break
                step()
        except KeyboardInterrupt:  # stop: the overlay video so far is finished below, like the JSONs
            summary.stopped = True
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            pairs.close()
        if writer is not None:
            written = writer.close()
            if written is not None:
                summary.files.append(written)
        if spine is not None:
            summary.files.extend(spine.finish_source(source.name, reader.fps))
    if not reader.decode.ok:
        summary.damaged[str(source.path)] = reader.decode


def write_frame(
    plan: OutputPlan,
    source: InputSource,
    index: int,
    fps: float,
    result: PoseResult,
    summary: InferSummary,
    spine_only: bool,
    spine: SpineRecorder | None,
    damaged: bool = False,
    image_hw: tuple[int, int] | None = None,
) -> list[str] | None:
    """One video frame's outputs (counted, spine row, per-frame JSON); the ``--vis-angles`` labels. Also how a
    video run in segments on Ray (``scale.segments``) writes its stitched frames."""
    _account(summary, result)
    labels = _spine_frame(spine, source.name, index, index / fps, result, image_hw)
    json_path = plan.json_path(source, index)
    if json_path is not None:
        data = result.to_openpose(spine_only=spine_only)
        if damaged:
            data["decode_damaged"] = True  # FFmpeg concealed errors: keypoints may be off
        summary.files.append(write_openpose(json_path, data))
    return labels


def _spine_frame(
    spine: SpineRecorder | None, source: str, frame: int, time_s: float | None, result: PoseResult,
    image_hw: tuple[int, int] | None = None,
) -> list[str] | None:
    """Record one frame's spine angles; the overlay labels when ``--vis-angles`` asked for them."""
    if spine is None:
        return None
    angles = spine.add(source, frame, time_s, result, image_hw)
    return angle_labels(angles) if spine.request.vis_angles else None


def _finish_spine(spine: SpineRecorder | None, summary: InferSummary, pipeline: Pipeline) -> None:
    if spine is not None:
        summary.files.extend(spine.finish(spine_title(pipeline.standin)))


def spine_title(standin: bool) -> str:
    """The spine plot's title (a Ray run's driver writes the same)."""
    return "spine angles" + (" (STAND-IN weights: the angles mean nothing)" if standin else "")


def _paired(reader: VideoReader, pipeline: Pipeline, fps: float):
    """(frame, result) pairs. ``track`` reads frames ahead of its results (``overlap``), so each frame waits
    in a FIFO until its result comes out; at most the look-ahead's few frames are held."""
    waiting: collections.deque[np.ndarray] = collections.deque()

    def frames():
        for frame in reader:
            waiting.append(frame)
            yield frame

    with contextlib.closing(pipeline.track(frames(), fps=fps)) as results:
        for result in results:
            yield waiting.popleft(), result


def _account(summary: InferSummary, result: PoseResult) -> None:
    summary.frames += 1
    summary.people += len(result)


def _show(image: np.ndarray, wait_ms: int) -> bool:
    """Show ``image`` in a window; True when the user pressed q or Esc."""
    try:
        cv2.imshow(WINDOW, image)
        key = cv2.waitKey(wait_ms) & 0xFF
    except cv2.error as exc:
        reason = str(exc).strip()[:120]
        raise InvalidOptionError(f"--show: OpenCV cannot open a window here ({reason}); drop --show") from exc
    return key in (ord("q"), 27)


def _close_windows() -> None:

    with contextlib.suppress(cv2.error):  # headless build: no window was opened
        cv2.destroyAllWindows()

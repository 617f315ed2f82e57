"""Pipeline-aware INT8 calibration sets: frames -> the feeds each graph sees in the pipeline.

A calibration source is a folder of images or a video file (default: ``frames.default_image_dir()``). It is
checked up front (``open_source``): a missing path, an empty folder, unreadable images, a video with no
frames raise ``InputFileError`` naming them; fewer frames than ``samples`` gives a warning and the set is
filled with deterministic augmentations (scale, crop, flip, brightness). Frames are split once: the
held-out ones feed the fidelity gate and are never calibrated on (every 5th frame, or the mirrored frames
when there are fewer than 10; augmentations never mirror then).

Feeds are made the way the pipeline makes them (``frame_feeds``): detector = letterboxed / stretched
frame; pose = all crops around the boxes the FP32 detector finds on that frame, one batch per frame (fixed
boxes from ``frames.person_boxes`` when it finds none, e.g. on stand-ins); lifter = the FP32 pose graph's
keypoints on those crops, normalised with intrinsics from the frame size. The gate's feeds
(``gate_frames``) are made the same way from the held-out frames, so both see the same distribution.
Feeds are streamed: one frame in memory at a time, spooled to ``.npz`` files (``spool``) that ``FeedFiles``
reads back lazily and that ONNX Runtime (``get_next``/``rewind``) and NNCF (iteration) both consume. The
spool hashes the feed bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputFileError, InvalidOptionError
from ..pipeline import detector as det
from ..pipeline import lifter as lift
from ..pipeline import pose as pose_ops
from ..zoo.specs import Family, ModelSpec
from . import frames

log = logging.getLogger(__name__)

Feed = dict[str, np.ndarray]
Runner = Callable[[Feed], dict[str, np.ndarray]]
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SAMPLES = 64
HOLDOUT_EVERY = 5  # every 5th frame goes to the fidelity gate ...
HOLDOUT_MIN_FRAMES = 10  # ... when there are at least this many; else the mirrored frames do
MAX_GATE_FRAMES = 8
MAX_CROPS = 8  # person crops per calibration frame (the largest-score boxes)
ROLES = ("detector", "pose", "lifter")
GATE_SEED = 10_000


@dataclass(frozen=True)
class Frame:
    """One frame of the source: an image file, or a frame index of the video."""

    label: str
    path: Path
    index: int = -1  # video frame index; -1 for an image file


@dataclass
class CalibrationSource:
    """A checked source split into calibration and held-out (gate) frames."""

    path: Path
    kind: str  # "images" | "video"
    calib: list[Frame]
    holdout: list[Frame]
    holdout_rule: str
    samples: int
    warnings: list[str] = field(default_factory=list)

    @property
    def mirrored_holdout(self) -> bool:
        return self.holdout_rule.startswith("mirrored")

    @property
    def augmented(self) -> int:
        return max(0, self.samples - len(self.calib))

    def describe(self) -> dict:
        """What the manifest records about the data (per graph it adds method and data hash)."""
        return {
            "source": str(self.path),
            "kind": self.kind,
            "frames": len(self.calib),
            "samples": self.samples,
            "augmented": self.augmented,
            "holdout": {"rule": self.holdout_rule, "frames": [f.label for f in self.holdout]},
        }

    def summary(self) -> str:
        """One line for the CLI: which data, how many frames, how many augmented."""
        text = f"calibration data: {self.path} ({self.kind}, {len(self.calib)} frames -> {self.samples} samples"
        text += f", {self.augmented} augmented)" if self.augmented else ")"
        return text + f"; gate frames held out: {self.holdout_rule}"

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """Calibration frames (BGR), augmented deterministically to ``samples``; one in memory at a time."""
        count = len(self.calib)
        for j in range(self.samples):
            frame = self.calib[j % count]
            image = _read(frame)
            if j < count:
                yield frame.label, image
            else:
                rng = np.random.default_rng(j)
                yield f"{frame.label}+aug{j}", augment(image, rng, mirror=not self.mirrored_holdout)

    def gate_images(self) -> list[np.ndarray]:
        """Held-out frames for the fidelity gate (mirrored copies when the mirrored frames are held out)."""
        images = [_read(f) for f in self.holdout]
        return [cv2.flip(img, 1) for img in images] if self.mirrored_holdout else images


def open_source(path: Path | None, samples: int = DEFAULT_SAMPLES, warn: bool = True) -> CalibrationSource:
    """Check a calibration source and split it; raises before any model work when it is unusable.

    ``warn=False`` only checks (``ExportRequest.validate``); the warning comes when the export opens it."""
    if samples < 1:
        raise InvalidOptionError(f"--calib-samples: {samples}; expected a positive number of samples")
    source = Path(path) if path is not None else frames.default_image_dir()
    if not source.exists():
        raise InputFileError(f"--calib: {source} does not exist; give a folder of images or a video file")
    if source.is_dir():
        kind, available = "images", _folder_frames(source)
    elif source.suffix.lower() in frames.IMAGE_SUFFIXES:
        kind, available = "images", [Frame(source.name, source)]
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        kind, available = "video", _video_frames(source, samples)
    else:
        raise InputFileError(
            f"--calib: {source} is neither a folder nor a video ({', '.join(VIDEO_SUFFIXES)}) "
            f"nor an image ({', '.join(frames.IMAGE_SUFFIXES)})"
        )
    calib, holdout, rule = _split(available)
    calib, holdout = _spread(calib, samples), _spread(holdout, MAX_GATE_FRAMES)
    if kind == "images":
        _check_readable(source, calib + holdout)
    result = CalibrationSource(source, kind, calib, holdout, rule, samples)
    if len(calib) < samples:
        message = (
            f"--calib: {source} has {len(calib)} calibration frame(s) (after holding out the gate frames), "
            f"fewer than --calib-samples {samples}; adding {samples - len(calib)} augmented copies "
            "(scale, crop, brightness" + (")" if result.mirrored_holdout else ", flip)")
        )
        if warn:
            log.warning(message)
        result.warnings.append(message)
    return result


def _folder_frames(folder: Path) -> list[Frame]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in frames.IMAGE_SUFFIXES)
    if not files:
        videos = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        hint = f" (found videos {', '.join(videos[:3])}: pass a video file itself)" if videos else ""
        raise InputFileError(f"--calib: folder {folder} has no images ({', '.join(frames.IMAGE_SUFFIXES)}){hint}")
    return [Frame(p.name, p) for p in files]


def _check_readable(source: Path, chosen: list[Frame]) -> None:
    """Decode every chosen image at 1/8 size (cheap for JPEG) and name those that fail."""
    unique = dict.fromkeys(chosen)  # the mirrored hold-out repeats the calibration frames
    bad = [f.label for f in unique if cv2.imread(str(f.path), cv2.IMREAD_REDUCED_COLOR_8) is None]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise InputFileError(f"--calib: {source}: {len(bad)} image(s) cannot be read: {shown}")


def _video_frames(video: Path, samples: int) -> list[Frame]:
    """Evenly spaced frame indices, enough for ``samples`` calibration frames plus the held-out ones."""
    capture = cv2.VideoCapture(str(video))
    try:
        ok = capture.isOpened() and capture.read()[0]
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
    finally:
        capture.release()
    if not ok:
        raise InputFileError(f"--calib: video {video} has no readable frames")
    if total <= 0:  # some containers do not store a count: count by grabbing
        total = _count_frames(video)
    wanted = min(total, max(HOLDOUT_MIN_FRAMES, samples + samples // (HOLDOUT_EVERY - 1) + 1))
    indices = sorted({int(i) for i in np.linspace(0, total - 1, wanted)})
    return [Frame(f"{video.name}#{i}", video, i) for i in indices]


def _count_frames(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return max(count, 1)


def _split(available: list[Frame]) -> tuple[list[Frame], list[Frame], str]:
    if len(available) >= HOLDOUT_MIN_FRAMES:
        holdout = available[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY]
        calib = [f for f in available if f not in holdout]
        return calib, holdout, f"every {HOLDOUT_EVERY}th frame"
    # Too few frames to spare any: the gate sees their mirror images, which calibration never does.
    return list(available), list(available), "mirrored frames (calibration is never mirrored)"


def _spread(chosen: list[Frame], count: int) -> list[Frame]:
    """At most ``count`` frames, evenly spread over ``chosen``."""
    if len(chosen) <= count:
        return chosen
    return [chosen[int(i)] for i in np.linspace(0, len(chosen) - 1, count)]


def _read(frame: Frame) -> np.ndarray:
    if frame.index < 0:
        image = cv2.imread(str(frame.path), cv2.IMREAD_COLOR)
    else:
        capture = cv2.VideoCapture(str(frame.path))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame.index)
            ok, image = capture.read()
        finally:
            capture.release()
        image = image if ok else None
    if image is None:
        raise InputFileError(f"--calib: {frame.label} could not be read (it was readable when checked)")
    return image


def augment(image: np.ndarray, rng: np.random.Generator, mirror: bool = True) -> np.ndarray:
    """A random but seeded variant: crop (70-100% per side), scale (0.6-1.25x), flip, brightness/contrast."""
    h, w = image.shape[:2]
    ch, cw = max(8, int(h * rng.uniform(0.7, 1.0))), max(8, int(w * rng.uniform(0.7, 1.0)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = image[y : y + ch, x : x + cw]
    scale = rng.uniform(0.6, 1.25)
    out = cv2.resize(out, (max(8, int(cw * scale)), max(8, int(ch * scale))), interpolation=cv2.INTER_LINEAR)
    if mirror and rng.random() < 0.5:
        out = cv2.flip(out, 1)
    return cv2.convertScaleAbs(out, alpha=rng.uniform(0.6, 1.4), beta=rng.uniform(-30.0, 30.0))


# -------------------------------------------------------------------------------------- feeds


@dataclass(frozen=True)
class GraphInput:
    """One graph's spec and input name (released graphs do not all call their input 'input')."""

    spec: ModelSpec
    name: str


def detector_feed(graph: GraphInput, image: np.ndarray) -> tuple[Feed, object]:
    spec = graph.spec
    if spec.family is Family.YOLOX:
        return det.yolox_feed(image, spec.input_size, graph.name)
    return det.rfdetr_feed(image, spec.input_size, graph.name, spec.mean, spec.std, spec.color)


def detect(spec: ModelSpec, outputs: Mapping[str, np.ndarray], meta: object) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and scores at the pipeline's thresholds."""
    if spec.family is Family.YOLOX:
        return det.decode_yolox(outputs["dets"], meta)
    return det.decode_rfdetr(outputs["dets"], outputs["labels"], meta)


def pipeline_feeds(
    source: CalibrationSource,
    graphs: Mapping[str, GraphInput],
    runners: Mapping[str, Runner],
    roles: tuple[str, ...],
) -> Iterator[dict[str, Feed]]:
    """Per calibration frame, the feed of every role in ``roles``, made as the pipeline makes it.

    ``graphs`` has the detector and pose (and lifter when wanted); ``runners`` run the FP32 detector
    (needed for pose/lifter) and pose (needed for the lifter) graphs.
    """
    for index, (label, image) in enumerate(source.frames()):
        feeds = frame_feeds(image, index, graphs, runners, roles)
        log.debug("calibration frame %s: %s", label, {r: next(iter(f.values())).shape for r, f in feeds.items()})
        yield feeds


def gate_frames(
    images: list[np.ndarray], graphs: Mapping[str, GraphInput], runners: Mapping[str, Runner], role: str
) -> frames.RoleFrames:
    """The held-out frames as ``role``'s gate feeds, made exactly as the calibration feeds are."""
    feeds, meta = [], []
    for index, image in enumerate(images):
        if role == "detector":
            feed, info = detector_feed(graphs["detector"], image)
            feeds.append(feed)
            meta.append(info)
        else:  # seeds apart from calibration's, should the fixed boxes be needed
            feeds.append(frame_feeds(image, GATE_SEED + index, graphs, runners, (role,))[role])
    return frames.RoleFrames(graphs[role].spec, feeds, meta)


def frame_feeds(
    image: np.ndarray,
    index: int,
    graphs: Mapping[str, GraphInput],
    runners: Mapping[str, Runner],
    roles: tuple[str, ...],
) -> dict[str, Feed]:
    """One frame's feeds for ``roles``: letterboxed frame, crops of the detected people, lifted keypoints."""
    feeds: dict[str, Feed] = {}
    det_feed, meta = detector_feed(graphs["detector"], image)
    if "detector" in roles:
        feeds["detector"] = det_feed
    if "pose" not in roles and "lifter" not in roles:
        return feeds
    boxes, scores = detect(graphs["detector"].spec, runners["detector"](det_feed), meta)
    if len(boxes) == 0:  # stand-in detectors rarely find anyone: crop where a person would be
        boxes = frames.person_boxes(image, count=2, seed=index)
    else:
        boxes = boxes[np.argsort(-scores)[:MAX_CROPS]]
    pose = graphs["pose"]
    batch, centers, scales = pose_ops.crop_batch(
        image, boxes, pose.spec.input_size, pose.spec.mean, pose.spec.std, pose.spec.color
    )
    if "pose" in roles:
        feeds["pose"] = {pose.name: batch}
    if "lifter" in roles:
        lifted = _lifter_input(image, pose, runners["pose"], batch, centers, scales)
        feeds["lifter"] = {graphs["lifter"].name: lifted}
    return feeds


def _lifter_input(
    image: np.ndarray, pose: GraphInput, run_pose: Runner, batch: np.ndarray, centers: np.ndarray, scales: np.ndarray
) -> np.ndarray:
    out = run_pose({pose.name: batch})
    keypoints, _ = pose_ops.decode_simcc(out["simcc_x"], out["simcc_y"])
    points = pose_ops.crop_to_image(keypoints, centers, scales, pose.spec.input_size)
    h, w = image.shape[:2]
    # All points visible: the pipeline zeroes low-score points, and zeros lie inside the calibrated ranges of
    # visible ones; stand-in scores are meaningless and would zero everything.
    xy, _ = lift.lifter_feed(points, np.ones(points.shape[:2], np.float32), lift.estimate_intrinsics(w, h))
    return xy


# -------------------------------------------------------------------------------------- spooling


class FeedFiles:
    """Feeds spooled to ``.npz`` files, read back one at a time.

    Re-iterable (NNCF's ``Dataset``, ``qdq_loss_debug``) and a ``CalibrationDataReader`` for ONNX Runtime by
    duck typing (``get_next`` returns ``None`` at the end; ``rewind`` starts over).
    """

    def __init__(self, files: list[Path], sha256: str, limit: int | None = None) -> None:
        self.files = files[:limit] if limit is not None else files
        self.sha256 = sha256
        self._iter: Iterator[Feed] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Feed]:
        for path in self.files:
            with np.load(path) as data:
                yield {name: data[name] for name in data.files}

    def get_next(self) -> Feed | None:
        if self._iter is None:
            self._iter = iter(self)
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None

    def head(self, count: int) -> FeedFiles:
        """The first ``count`` feeds (same hash: it names the whole set)."""
        return FeedFiles(self.files, self.sha256, count)

    def chunks(self, size: int) -> Iterator[FeedFiles]:
        for start in range(0, len(self.files), size):
            yield FeedFiles(self.files[start : start + size], self.sha256)


def spool(stream: Iterator[dict[str, Feed]], folders: Mapping[str, Path]) -> dict[str, FeedFiles]:
    """Write each role's feeds to ``folders[role]/NNNNN.npz`` while hashing them (name, dtype, shape, bytes)."""
    hashes = {role: hashlib.sha256() for role in folders}
    files: dict[str, list[Path]] = {role: [] for role in folders}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for index, feeds in enumerate(stream):
        for role, feed in feeds.items():
            for name in sorted(feed):
                array = np.ascontiguousarray(feed[name])
                hashes[role].update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
                hashes[role].update(array.tobytes())
            path = folders[role] / f"{index:05d}.npz"
            np.savez(path, **feed)
            files[role].append(path)
    return {role: FeedFiles(files[role], hashes[role].hexdigest()) for role in folders}

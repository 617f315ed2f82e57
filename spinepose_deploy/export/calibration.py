"""Pipeline-aware INT8 calibration sets: frames -> the feeds each graph sees in the pipeline.

A calibration source is a folder of images or a video file (default: ``frames.default_image_dir()``), or
``"synth"`` / ``"synth:N"``: scenes rendered by :mod:`spinepose_deploy.synth`, which come with ground truth
(``SynthSource``). It is checked up front (``open_source``): a missing path, an empty folder, unreadable
images, a video with no frames raise ``InputFileError`` naming them; fewer frames than ``samples`` gives a
warning and the set is filled with deterministic augmentations (scale, crop, flip, brightness). Frames are
split once: the held-out ones feed the fidelity gate and are never calibrated on (every 5th frame, or the
mirrored frames when there are fewer than 10; augmentations never mirror then, and the gate adds a cropped,
rescaled copy of each mirrored frame, up to ``MAX_GATE_FRAMES``, so two photos still give four gate frames).
A ``boxes.json`` in an image folder (``{"image.jpg": [[x1, y1, x2, y2], ...]}``) gives the person boxes of
those images: their pose crops come from these boxes instead of the detector's.

Synthetic sources calibrate on scenes with seeds from ``SYNTH_CALIB_SEED`` and gate on scenes from
``SYNTH_GATE_SEED`` (disjoint, and both below the held-out evaluation seeds of ``synth.dataset``). Pose
crops come from the ground-truth boxes of the people big and visible enough to evaluate
(``synth.dataset.usable``; jittered like a detector's boxes for calibration, exact for the gate), and the
lifter is fed the ground-truth 2D keypoints (invisible ones zeroed, normalised with the scene's
intrinsics), as the lifter was trained and is evaluated; so its calibration and accuracy do not depend on
the pose graph. The gate frames carry the ground truth (``frames.FrameTruth``), so the fidelity report
also gives accuracy against it.

Feeds are made the way the pipeline makes them (``frame_feeds``): detector = letterboxed / stretched
frame; pose = all crops around the given boxes or else the boxes the FP32 detector finds on that frame,
one batch per frame (fixed boxes from ``frames.person_boxes`` when it finds none, e.g. on stand-ins; the
gate tops every frame up to ``GATE_MIN_CROPS`` crops with them, so a random-weight detector's one box still
gives the pose and lifter gates a few people per frame);
lifter = the FP32 pose graph's keypoints on those crops, normalised with intrinsics from the frame size
(or the ground truth, above). The gate's feeds (``gate_frames``) are made the same way from the held-out
frames, so both see the same distribution. Feeds are streamed: one frame in memory at a time, spooled to
``.npz`` files (``spool``) that ``FeedFiles`` reads back lazily and that ONNX Runtime
(``get_next``/``rewind``) and NNCF (iteration) both consume. The spool hashes the feed bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from .._video import VIDEO_SUFFIXES, DecodeReport, open_capture, quietly, read_frame
from ..errors import InputFileError, InvalidOptionError
from ..ops.image import IMAGE_SUFFIXES
from ..stages import Detector, GraphInfo, Lifter, PoseEstimator
from ..stages.graph import Runner
from ..synth import dataset
from ..synth.render import render_scene
from . import frames

log = logging.getLogger(__name__)

Feed = dict[str, np.ndarray]
DEFAULT_SAMPLES = 64
HOLDOUT_EVERY = 5  # every 5th frame goes to the fidelity gate ...
HOLDOUT_MIN_FRAMES = 10  # ... when there are at least this many; else the mirrored frames do
MAX_GATE_FRAMES = 8
GATE_FEED_BYTES = 16 << 20  # gate feeds of pose / lifter people are batched up to this size
MAX_CROPS = 8  # person crops per calibration frame (the largest-score boxes)
FIXED_CROPS = 2  # fixed boxes for a frame where the FP32 detector finds nobody (e.g. a random-weight stand-in)
GATE_MIN_CROPS = 2  # the gate crops at least this many people per frame: the detector's, topped up with fixed
GATE_SEED = 10_000
BOXES_FILE = "boxes.json"
SYNTH = "synth"
SYNTH_CALIB_SEED = 500_000  # synthetic calibration scenes: seeds from here ...
SYNTH_GATE_SEED = 900_000  # ... and gate scenes from here: no training used them (detector trained on 600,000+)
SYNTH_GATE_SCENES = 32
SYNTH_LIFTER_GATE_SCENES = 256  # the lifter's gate needs no image: many more people, for a precise MPJPE
_SYNTH_RE = re.compile(r"synth(?::(\d+))?")


@dataclass
class Shot:
    """One frame as its feeds are made: the image, the boxes to crop (None: the detector's), ground truth."""

    label: str
    image: np.ndarray | None  # None: ground truth only (the lifter's synthetic gate)
    boxes: np.ndarray | None = None
    truth: frames.FrameTruth | None = None


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
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # image label -> given person boxes (boxes.json)
    decode: dict | None = None  # a damaged video: which frames were left out (DecodeReport.to_dict())

    @property
    def mirrored_holdout(self) -> bool:
        return self.holdout_rule.startswith("mirrored")

    @property
    def augmented(self) -> int:
        return max(0, self.samples - len(self.calib))

    def describe(self) -> dict:
        """What the manifest records about the data (per graph it adds method and data hash)."""
        described = {
            "source": str(self.path),
            "kind": self.kind,
            "frames": len(self.calib),
            "samples": self.samples,
            "augmented": self.augmented,
            "holdout": {"rule": self.holdout_rule, "frames": [f.label for f in self.holdout]},
        }
        if self.boxes:
            described["boxes"] = f"given for {len(self.boxes)} image(s) ({BOXES_FILE}); the detector's elsewhere"
        if self.decode:
            described["decode"] = self.decode
        return described

    def summary(self) -> str:
        """One line for the CLI: which data, how many frames, how many augmented."""
        text = f"calibration data: {self.path} ({self.kind}, {len(self.calib)} frames -> {self.samples} samples"
        text += f", {self.augmented} augmented)" if self.augmented else ")"
        if self.boxes:
            text += f"; person boxes from {BOXES_FILE} for {len(self.boxes)} image(s)"
        return text + f"; gate frames held out: {self.holdout_rule}"

    def shots(self) -> Iterator[Shot]:
        """Calibration frames (BGR), augmented deterministically to ``samples``; one in memory at a time."""
        count = len(self.calib)
        for j in range(self.samples):
            frame = self.calib[j % count]
            image, boxes = _read(frame), self.boxes.get(frame.label)
            if j < count:
                yield Shot(frame.label, image, boxes)
            else:
                rng = np.random.default_rng(j)
                image, move = _augment(image, rng, mirror=not self.mirrored_holdout)
                yield Shot(f"{frame.label}+aug{j}", image, None if boxes is None else move(boxes))

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """``shots`` as (label, image)."""
        for shot in self.shots():
            yield shot.label, shot.image

    def gate_shots(self, role: str | None = None) -> list[Shot]:
        """Held-out frames for the fidelity gate. When the mirrored frames are held out: each frame's mirror
        image, then a cropped / rescaled / brightened copy of the first mirrors up to ``MAX_GATE_FRAMES``
        (calibration never mirrors, so these are unseen too; without them two photos gave only two frames)."""
        shots = []
        for frame in self.holdout:
            image, boxes = _read(frame), self.boxes.get(frame.label)
            if self.mirrored_holdout:
                image = cv2.flip(image, 1)
                boxes = None if boxes is None else _mirror_boxes(boxes, image.shape[1])
            shots.append(Shot(frame.label, image, boxes))
        if self.mirrored_holdout:
            for index, shot in enumerate(shots[: MAX_GATE_FRAMES - len(shots)]):
                image, move = _augment(shot.image, np.random.default_rng(GATE_SEED + index), mirror=False)
                boxes = None if shot.boxes is None else move(shot.boxes)
                shots.append(Shot(f"{shot.label}+mirror-varied", image, boxes))
        return shots

    def gate_images(self) -> list[np.ndarray]:
        return [shot.image for shot in self.gate_shots()]


@dataclass
class SynthSource:
    """``--calib synth[:N]``: N rendered scenes to calibrate on, a disjoint set of scenes with ground truth to
    gate on (see the module docstring for what each graph is fed)."""

    samples: int
    gate_scenes: int = SYNTH_GATE_SCENES
    warnings: list[str] = field(default_factory=list)
    kind: str = "synthetic"
    path: str = SYNTH

    def _seeds(self, gate: bool) -> range:
        first = SYNTH_GATE_SEED if gate else SYNTH_CALIB_SEED
        return range(first, first + (self.gate_scenes if gate else self.samples))

    def describe(self) -> dict:
        calib, gate = self._seeds(False), self._seeds(True)
        return {
            "source": SYNTH,
            "kind": self.kind,
            "frames": self.samples,
            "samples": self.samples,
            "augmented": 0,
            "seeds": [calib[0], calib[-1]],
            "renderer": "spinepose_deploy.synth.render_scene (default RenderConfig)",
            "pose_boxes": "ground truth of the usable people, jittered (+-10 % size, +-5 % shift)",
            "lifter_inputs": "ground-truth 2D keypoints (invisible ones zeroed), scene intrinsics",
            "ground_truth": True,
            "holdout": {
                "rule": f"scenes with seeds {gate[0]}..{gate[-1]}, exact ground-truth boxes (lifter: ground "
                f"truth of seeds {gate[0]}..{gate[0] + SYNTH_LIFTER_GATE_SCENES - 1})",
                "frames": [f"synth#{seed}" for seed in gate],
            },
        }

    def summary(self) -> str:
        calib, gate = self._seeds(False), self._seeds(True)
        return (
            f"calibration data: synthetic scenes ({SYNTH}: seeds {calib[0]}..{calib[-1]}, {self.samples} samples; "
            f"pose crops from ground-truth boxes, lifter fed ground-truth 2D); gate: {len(gate)} other scenes "
            f"(seeds {gate[0]}..{gate[-1]}; lifter {SYNTH_LIFTER_GATE_SCENES}) with ground truth"
        )

    def shots(self) -> Iterator[Shot]:
        for seed in self._seeds(False):
            yield synth_shot(seed, jitter=True)

    def gate_shots(self, role: str | None = None) -> list[Shot]:
        """The gate scenes; for the lifter many more, as ground truth only (no image is needed, and its
        accuracy change is small next to the spread between people: 58 people misjudged it by 1-2 mm)."""
        if role != "lifter":
            return [synth_shot(seed, jitter=False) for seed in self._seeds(True)]
        seeds = range(SYNTH_GATE_SEED, SYNTH_GATE_SEED + SYNTH_LIFTER_GATE_SCENES)
        return [replace(synth_shot(seed, jitter=False), image=None) for seed in seeds]


Source = CalibrationSource | SynthSource


def synth_shot(seed: int, jitter: bool) -> Shot:
    """A rendered scene with the ground truth of its usable people; ``jitter`` moves the crop boxes as a
    detector's would (the truth keeps the exact ones)."""
    scene = render_scene(seed)
    rows = np.flatnonzero(dataset.usable(scene))
    truth = frames.FrameTruth(
        boxes=scene.boxes[rows].astype(np.float32),
        keypoints=scene.keypoints[rows].astype(np.float32),
        visible=scene.visible[rows].astype(bool),
        keypoints_3d=scene.keypoints_3d[rows].astype(np.float32),
        intrinsics=np.asarray(scene.intrinsics, np.float32),
    )
    boxes = truth.boxes
    if jitter and len(rows):
        boxes = dataset.jitter_boxes(boxes, np.random.default_rng(np.random.SeedSequence([0xCA1B, seed])))
    return Shot(f"synth#{seed}", scene.image, boxes, truth)


def _synth_source(match: re.Match, samples: int) -> SynthSource:
    count = int(match.group(1)) if match.group(1) is not None else samples
    if match.group(1) is not None and samples not in (DEFAULT_SAMPLES, count):
        raise InvalidOptionError(
            f"--calib {match.group(0)} and --calib-samples {samples} disagree; give the number of scenes once"
        )
    limit = SYNTH_GATE_SEED - SYNTH_CALIB_SEED
    if not 1 <= count <= limit:
        raise InvalidOptionError(f"--calib {match.group(0)}: expected 1 to {limit} scenes")
    return SynthSource(count)


def open_source(path: Path | str | None, samples: int = DEFAULT_SAMPLES, warn: bool = True) -> Source:
    """Check a calibration source and split it; raises before any model work when it is unusable.

    ``"synth"`` or ``"synth:N"`` (a string, or a path that does not exist) selects the synthetic world.
    ``warn=False`` only checks (``ExportRequest.validate``); the warning comes when the export opens it."""
    if samples < 1:
        raise InvalidOptionError(f"--calib-samples: {samples}; expected a positive number of samples")
    if path is not None and (isinstance(path, str) or not Path(path).exists()):
        match = _SYNTH_RE.fullmatch(str(path))
        if match:
            return _synth_source(match, samples)
        if str(path).startswith(f"{SYNTH}:"):
            raise InvalidOptionError(f"--calib {path}: expected '{SYNTH}' or '{SYNTH}:N' with N a number of scenes")
    source = Path(path) if path is not None else frames.default_image_dir()
    if not source.exists():
        raise InputFileError(
            f"--calib: {source} does not exist; give a folder of images, a video file or '{SYNTH}[:N]'"
        )
    if source.is_dir():
        kind, available = "images", _folder_frames(source)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        kind, available = "images", [Frame(source.name, source)]
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        kind, chosen = "video", _video_frames(source, samples)
        available, decode = _decodable(source, chosen)
        if not available:
            raise InputFileError(f"--calib: video {source}: {_video_warning(source, decode, len(chosen))}")
    else:
        raise InputFileError(
            f"--calib: {source} is neither a folder nor a video ({', '.join(VIDEO_SUFFIXES)}) "
            f"nor an image ({', '.join(IMAGE_SUFFIXES)})"
        )
    boxes = _read_boxes(source / BOXES_FILE, available) if source.is_dir() else {}
    calib, holdout, rule = _split(available)
    calib, holdout = _spread(calib, samples), _spread(holdout, MAX_GATE_FRAMES)
    if kind == "images":
        _check_readable(source, calib + holdout)
    result = CalibrationSource(source, kind, calib, holdout, rule, samples, boxes=boxes)
    if kind == "video" and not decode.ok:
        message = _video_warning(source, decode, len(chosen) - len(available))
        if warn:
            log.warning(message)
        result.warnings.append(message)
        result.decode = decode.to_dict()
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


def _read_boxes(path: Path, available: list[Frame]) -> dict[str, np.ndarray]:
    """``boxes.json``: image name -> list of [x1, y1, x2, y2] person boxes (an empty list: nobody)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"--calib: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputFileError(f'--calib: {path}: expected an object {{"image.jpg": [[x1, y1, x2, y2], ...]}}')
    names = {f.label for f in available}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputFileError(f"--calib: {path} names image(s) not in the folder: {', '.join(unknown[:5])}")
    boxes = {}
    for name, value in data.items():
        try:
            array = np.asarray(value, np.float32).reshape(-1, 4)
        except (ValueError, TypeError):
            array = None
        if array is None or not np.isfinite(array).all() or (array[:, 2:] - array[:, :2]).min(initial=1.0) < 1.0:
            raise InputFileError(
                f"--calib: {path}: boxes of '{name}' must be a list of [x1, y1, x2, y2] with x2 > x1, y2 > y1"
            )
        boxes[name] = array
    return boxes


def _mirror_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def _folder_frames(folder: Path) -> list[Frame]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        videos = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        hint = f" (found videos {', '.join(videos[:3])}: pass a video file itself)" if videos else ""
        raise InputFileError(f"--calib: folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}){hint}")
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
    capture = open_capture(str(video))
    try:
        ok = capture.isOpened() and read_frame(capture, 0, DecodeReport())[0]
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
    capture = open_capture(str(video))
    count = 0
    try:
        while quietly(capture.grab)[0]:
            count += 1
    finally:
        capture.release()
    return max(count, 1)


def _decodable(video: Path, chosen: list[Frame]) -> tuple[list[Frame], DecodeReport]:
    """The chosen frames that decode cleanly, and what was wrong with the others.

    Read in order; a jump seeks to the previous keyframe and decodes up to the chosen frame. Complaints
    during that run belong to frames in between, which calibration does not use, so only the chosen frame's
    own decoding counts (a clean frame predicted from a concealed one is not seen, as in ``infer``)."""
    report, capture, position = DecodeReport(), open_capture(str(video)), 0
    unreadable: list[int] = []
    try:
        for frame in chosen:
            if frame.index != position:
                quietly(lambda f=frame: capture.set(cv2.CAP_PROP_POS_FRAMES, f.index))
            ok, image = read_frame(capture, frame.index, report)
            position = frame.index + 1
            if not ok or image is None:
                unreadable.append(frame.index)
    finally:
        capture.release()
    if unreadable:
        report.stopped_at = unreadable[0]
    bad = set(report.damaged) | set(unreadable)
    return [f for f in chosen if f.index not in bad], report


def _video_warning(video: Path, report: DecodeReport, skipped: int) -> str:
    # calibration skips unreadable frames (it does not stop): name the first one only
    where = report.stopped_at
    report = dataclasses.replace(report, stopped_at=None)
    what = report.warning(f"--calib: {video}") or f"--calib: {video}: damaged video"
    what += f"; frame {where} could not be read" if where is not None else ""
    return f"{what}; {skipped} such frame(s) left out of calibration and the gate"


def _split(available: list[Frame]) -> tuple[list[Frame], list[Frame], str]:
    if len(available) >= HOLDOUT_MIN_FRAMES:
        holdout = available[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY]
        calib = [f for f in available if f not in holdout]
        return calib, holdout, f"every {HOLDOUT_EVERY}th frame"
    # Too few frames to spare any: the gate sees their mirror images, which calibration never does.
    return list(available), list(available), "mirrored frames and varied copies (calibration is never mirrored)"


def _spread(chosen: list[Frame], count: int) -> list[Frame]:
    """At most ``count`` frames, evenly spread over ``chosen``."""
    if len(chosen) <= count:
        return chosen
    return [chosen[int(i)] for i in np.linspace(0, len(chosen) - 1, count)]


def _read(frame: Frame) -> np.ndarray:
    if frame.index < 0:
        image = cv2.imread(str(frame.path), cv2.IMREAD_COLOR)
    else:
        capture = open_capture(str(frame.path))
        try:
            quietly(lambda: capture.set(cv2.CAP_PROP_POS_FRAMES, frame.index))
            ok, image = read_frame(capture, frame.index, DecodeReport())  # _decodable counted it already
        finally:
            capture.release()
        image = image if ok else None
    if image is None:
        raise InputFileError(f"--calib: {frame.label} could not be read (it was readable when checked)")
    return image


def augment(image: np.ndarray, rng: np.random.Generator, mirror: bool = True) -> np.ndarray:
    """A random but seeded variant: crop (70-100% per side), scale (0.6-1.25x), flip, brightness/contrast."""
    return _augment(image, rng, mirror)[0]


def _augment(
    image: np.ndarray, rng: np.random.Generator, mirror: bool = True
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``augment``, plus a function that moves (N, 4) boxes the same way (kept where >= 8 px remain)."""
    h, w = image.shape[:2]
    ch, cw = max(8, int(h * rng.uniform(0.7, 1.0))), max(8, int(w * rng.uniform(0.7, 1.0)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = image[y : y + ch, x : x + cw]
    scale = rng.uniform(0.6, 1.25)
    size = (max(8, int(cw * scale)), max(8, int(ch * scale)))
    out = cv2.resize(out, size, interpolation=cv2.INTER_LINEAR)
    flipped = bool(mirror and rng.random() < 0.5)
    if flipped:
        out = cv2.flip(out, 1)
    out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.6, 1.4), beta=rng.uniform(-30.0, 30.0))

    def move(boxes: np.ndarray) -> np.ndarray:
        factor = np.array([size[0] / cw, size[1] / ch] * 2, np.float32)
        moved = (boxes - np.array([x, y, x, y], np.float32)) * factor
        moved = np.clip(moved, 0, [size[0], size[1], size[0], size[1]]).astype(np.float32)
        moved = moved[(moved[:, 2:] - moved[:, :2]).min(axis=1) >= 8]
        return _mirror_boxes(moved, size[0]) if flipped else moved

    return out, move


# -------------------------------------------------------------------------------------- feeds


def _detector(graphs: Mapping[str, GraphInfo], runners: Mapping[str, Runner]) -> Detector:
    return Detector(graphs["detector"], runners.get("detector"))


def _pose(graphs: Mapping[str, GraphInfo], runners: Mapping[str, Runner]) -> PoseEstimator:
    return PoseEstimator(graphs["pose"], runners.get("pose"))


def pipeline_feeds(
    source: Source,
    graphs: Mapping[str, GraphInfo],
    runners: Mapping[str, Runner],
    roles: tuple[str, ...],
) -> Iterator[dict[str, Feed]]:
    """Per calibration frame, the feed of every role in ``roles``, made as the pipeline makes it.

    ``graphs`` has the detector and pose (and lifter when wanted); ``runners`` run the FP32 detector
    (needed for pose/lifter without given boxes) and pose (needed for the lifter without ground truth).
    A frame with nobody to crop gives only its detector feed.
    """
    for index, shot in enumerate(source.shots()):
        feeds, _ = _feeds(shot, index, graphs, runners, roles)
        log.debug("calibration frame %s: %s", shot.label, {r: next(iter(f.values())).shape for r, f in feeds.items()})
        yield feeds


def gate_frames(
    shots: list[Shot] | list[np.ndarray],
    graphs: Mapping[str, GraphInfo],
    runners: Mapping[str, Runner],
    role: str,
) -> frames.RoleFrames:
    """The held-out frames as ``role``'s gate feeds, made exactly as the calibration feeds are; with their
    ground truth when every frame has one (synthetic scenes)."""
    feeds, meta, truth = [], [], []
    for index, item in enumerate(shots):
        shot = item if isinstance(item, Shot) else Shot(f"gate{index}", item)
        if role == "detector":
            feed, info = _detector(graphs, runners).preprocess(shot.image)
            feeds.append(feed)
            meta.append(info)
            truth.append(shot.truth)
            continue
        # seeds apart from calibration's, should the fixed boxes be needed
        made, crops = _feeds(shot, GATE_SEED + index, graphs, runners, (role,), at_least=GATE_MIN_CROPS)
        if role not in made:  # nobody to crop in this frame
            continue
        feeds.append(made[role])
        truth.append(
            shot.truth
            if shot.truth is None or crops is None
            else replace(shot.truth, centers=crops[0], scales=crops[1])
        )
    if not feeds:
        raise InputFileError(f"--calib: no person boxes in the {len(shots)} gate frame(s): nothing to gate {role} on")
    known = all(t is not None for t in truth)
    if role != "detector":  # people of consecutive frames in one batch: fewer, larger runs
        feeds = _batched(feeds, GATE_FEED_BYTES)
    return frames.RoleFrames(graphs[role], feeds, meta, truth=truth if known else [])


def _batched(feeds: list[Feed], max_bytes: int) -> list[Feed]:
    """Consecutive feeds concatenated along the batch axis, up to ``max_bytes`` per feed (order kept)."""
    groups: list[list[Feed]] = []
    size = 0
    for feed in feeds:
        nbytes = sum(a.nbytes for a in feed.values())
        if not groups or size + nbytes > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(feed)
        size += nbytes
    return [{name: np.concatenate([f[name] for f in group]) for name in group[0]} for group in groups]


def frame_feeds(
    image: np.ndarray | Shot,
    index: int,
    graphs: Mapping[str, GraphInfo],
    runners: Mapping[str, Runner],
    roles: tuple[str, ...],
) -> dict[str, Feed]:
    """One frame's feeds for ``roles``: letterboxed frame, crops of the people, lifter inputs."""
    shot = image if isinstance(image, Shot) else Shot("frame", image)
    return _feeds(shot, index, graphs, runners, roles)[0]


def _feeds(
    shot: Shot,
    index: int,
    graphs: Mapping[str, GraphInfo],
    runners: Mapping[str, Runner],
    roles: tuple[str, ...],
    at_least: int = 0,
) -> tuple[dict[str, Feed], tuple[np.ndarray, np.ndarray] | None]:
    """``frame_feeds`` plus the pose crops' (centers, scales), None when no crop was made. Without given
    boxes, the detector's are topped up with fixed ones to ``at_least`` crops (``FIXED_CROPS`` when it finds
    nobody).

    Every graph is fed through its stage object, as the Pipeline does: ``Detector`` (FP32 runner) for the
    boxes, ``PoseEstimator`` for the crops and their decode (SimCC validation, v1 smoothing), ``Lifter`` for
    the normalisation."""
    feeds: dict[str, Feed] = {}
    image = shot.image
    detector = _detector(graphs, runners)
    det_feed = meta = None
    if "detector" in roles or shot.boxes is None:
        det_feed, meta = detector.preprocess(image)
    if "detector" in roles:
        feeds["detector"] = det_feed
    truth_lift = shot.truth is not None  # the lifter gets ground-truth 2D, not pose outputs
    if "pose" not in roles and ("lifter" not in roles or truth_lift):
        if "lifter" in roles and len(shot.truth.boxes):
            feeds["lifter"] = _truth_lifter_feed(graphs["lifter"], shot.truth)
        return feeds, None
    if shot.boxes is not None:
        boxes = shot.boxes
    else:
        boxes, _ = detector.postprocess(detector.run(det_feed), meta)  # highest score first
        # stand-in detectors rarely find anyone: crop where a person would be
        boxes = _top_up(boxes[:MAX_CROPS], image, index, max(at_least, 0 if len(boxes) else FIXED_CROPS))
    if len(boxes) == 0:
        return feeds, None
    pose = _pose(graphs, runners)
    pose_feed, crops = pose.preprocess(image, boxes)
    if "pose" in roles:
        feeds["pose"] = pose_feed
    if "lifter" in roles:
        if truth_lift:
            feeds["lifter"] = _truth_lifter_feed(graphs["lifter"], shot.truth)
        else:
            feeds["lifter"] = frames.lifter_input(pose, Lifter(graphs["lifter"]), image, pose_feed, crops)
    return feeds, (crops.centers, crops.scales)


def _top_up(boxes: np.ndarray, image: np.ndarray, index: int, count: int) -> np.ndarray:
    """``boxes`` followed by fixed person boxes (``frames.person_boxes``) until there are ``count``."""
    missing = count - len(boxes)
    if missing <= 0:
        return boxes
    fixed = frames.person_boxes(image, count=count, seed=index)[:missing]
    return np.concatenate([np.asarray(boxes, np.float32).reshape(-1, 4), fixed])


def _truth_lifter_feed(graph: GraphInfo, truth: frames.FrameTruth) -> Feed:
    """Ground-truth 2D keypoints normalised with the scene's intrinsics; invisible ones zeroed."""
    return Lifter(graph).preprocess(truth.keypoints, truth.visible.astype(np.float32), truth.intrinsics)[0]


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

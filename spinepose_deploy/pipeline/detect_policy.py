"""When ``Pipeline.track`` runs the detector: every N frames, and at once when the carried boxes may be wrong.

Between detections each frame's boxes are the previous frame's tracked poses (``pose_to_bbox`` of the
keypoints of the poses that got a track id, grown by ``CARRY_EXPANSION``), as upstream PoseTracker's
``bboxes_last_frame`` with ``det_frequency``. The fixed part of the schedule is upstream's: frame
``index % every == 0`` (``due``), so a caller can run those detections ahead on another thread. Adaptive
triggers (off under ``seed_compat``) re-detect on the very next frame when the carried tracks are in doubt:

* ``lost``: a carried pose failed to continue its track (its keypoint box no longer overlaps the box it
  was cropped from, so the pose has drifted off the person);
* ``low score``: a carried pose's mean keypoint score fell below ``low_score`` (person occluded or gone);
* ``edge``: a carried box touches the frame edge (a person entering or leaving: its box changes fast);
* ``empty``: nobody is carried (a person entering an empty scene is found soon; costs one detector run);
* ``scene cut``: the frame differs from the previous one by more than ``cut_grey`` grey levels on average
  (``thumbnail``; a camera cut leaves every carried box on the wrong place).
``edge`` and ``empty`` hold for many frames in a row (a person takes a second to walk in), so they re-detect
at most every ``recheck_every`` frames. A person entering far from every track is still found only at the
next due frame: the price of the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidOptionError

# benchmarks/det_interval.py (synthetic walking video, trained stand-ins): every 5th frame + adaptive re-detects
# ran the detector on 25 % of frames for PCK@0.05 0.864 vs 0.872 detecting every frame; every 10th lost 0.03
DEFAULT_DET_EVERY = 5
# Carried boxes grow the keypoints' extent by this (upstream, and seed_compat: 1.25, the tracker's IoU box). The
# pose crop pads every box by 1.25 again, so upstream's carried crops are ~1.25x wider than a detection's; 1.1
# keeps them close: on synthetic walking video (trained stand-ins, det every 5) PCK@0.05 0.870 vs 0.823 with
# 1.25 (0.883 detecting every frame).
CARRY_EXPANSION = 1.1
THUMB_SIZE = (64, 36)  # (width, height) of the scene-cut thumbnail


def check_det_every(value: object, option: str = "--det-every") -> int:
    """``value`` as a positive frame interval; anything else is a one-line error naming ``option``."""
    expected = "expected a positive whole number of frames (1 = every frame)"
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidOptionError(f"{option}: {value!r}, {expected}")
    if isinstance(value, (int, float, np.integer)):
        number = int(value)
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InvalidOptionError(f"{option}: '{value}' is not a whole number; {expected}") from None
    if number < 1:
        raise InvalidOptionError(f"{option}: {number}, {expected}")
    return number


@dataclass(frozen=True)
class DetectionPolicy:
    """Detect every ``every`` frames; ``adaptive`` adds the triggers of the module docstring."""

    every: int = DEFAULT_DET_EVERY
    adaptive: bool = True
    low_score: float = 0.3
    edge_px: float = 2.0
    cut_grey: float = 40.0
    recheck_every: int = 2  # "edge" / "empty": at most every this many frames

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", check_det_every(self.every))

    def due(self, index: int) -> bool:
        """The fixed schedule (upstream's ``frame_cnt % det_frequency == 0``)."""
        return index % self.every == 0


@dataclass(frozen=True)
class Carried:
    """What the previous frame hands to the next: tracked boxes ``(T, 4)``, their box scores ``(T,)`` and the
    keypoint scores ``(T, K)`` of the poses they came from."""

    boxes: np.ndarray
    box_scores: np.ndarray
    keypoint_scores: np.ndarray
    lost: bool = False  # a pose of the previous frame that was cropped from a carried box lost its track

    @classmethod
    def empty(cls) -> Carried:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 0), np.float32))


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A small grey copy of a BGR frame for the scene-cut test."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


class DetectionSchedule:
    """One stream's detection decisions: ``decide`` before a frame, ``observe`` after it."""

    def __init__(self, policy: DetectionPolicy) -> None:
        self.policy = policy
        self.carried = Carried.empty()
        self._thumb: np.ndarray | None = None
        self._seen = False
        self._since = 0  # frames since the last detection

    @property
    def started(self) -> bool:
        """Whether a frame was observed (the next one is not "first")."""
        return self._seen

    def frames_since_detection(self) -> int:
        return self._since

    def previous_thumbnail(self) -> np.ndarray | None:
        """The last frame's scene-cut thumbnail (None when not adaptive or nothing seen)."""
        return self._thumb

    def decide(self, index: int, frame: np.ndarray) -> str | None:
        """Why frame ``index`` runs the detector ("due", "first", "lost", ...), or None to reuse ``carried``."""
        reason = self._reason(index, frame)
        self._since = 0 if reason is not None else self._since + 1
        return reason

    def _reason(self, index: int, frame: np.ndarray) -> str | None:
        policy = self.policy
        thumb = thumbnail(frame) if policy.adaptive else None
        previous, self._thumb = self._thumb, thumb
        if not self._seen:
            return "first"
        if policy.due(index):
            return "due"
        if not policy.adaptive:
            return None
        carried = self.carried
        recheck = self._since + 1 >= policy.recheck_every
        if len(carried.boxes) == 0:
            return "empty" if recheck else None
        if carried.lost:
            return "lost"
        if carried.keypoint_scores.size and carried.keypoint_scores.mean(axis=1).min() < policy.low_score:
            return "low score"
        height, width = frame.shape[:2]
        b, near = carried.boxes, policy.edge_px
        low = (b[:, :2] <= near).any(axis=1)
        high = (b[:, 2] >= width - 1 - near) | (b[:, 3] >= height - 1 - near)
        if recheck and (low | high).any():
            return "edge"
        if previous is not None and thumb is not None and float(np.abs(thumb - previous).mean()) > policy.cut_grey:
            return "scene cut"
        return None

    def observe(self, boxes: np.ndarray, box_scores: np.ndarray, keypoint_scores: np.ndarray, lost: bool) -> None:
        """The tracked poses of the frame just processed (``boxes`` from their keypoints) become ``carried``."""
        self._seen = True
        self.carried = Carried(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(box_scores, np.float32).reshape(-1),
            np.asarray(keypoint_scores, np.float32).reshape(len(boxes), -1) if len(boxes) else np.zeros((0, 0)),
            bool(lost),
        )

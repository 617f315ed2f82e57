"""Greedy IoU tracking and One-Euro keypoint smoothing (upstream ``pose_tracker.py``, ``tools/smoothing.py``).

Upstream matches each pose's keypoint box, in detection order, to the best remaining box of the previous
frame (IoU above ``iou_thr``); an unmatched pose gets a new id if its box is at least ``min_area`` px²,
else id -1 (untracked). Deliberate differences, all fixing upstream defects:

* ids start at 0 and are never reused (upstream starts the first frame at ``len(boxes)`` and restarts
  numbering after an empty frame, reusing ids);
* ids stay aligned with the poses: untracked poses keep -1 in place (upstream drops them from its id list
  and then smooths the wrong poses with the wrong filters);
* ``max_age`` lets a track survive that many unmatched frames (0 = upstream: a track ends as soon as it
  is missed);
* smoothing is one vectorised One-Euro filter per track (same arithmetic as the ``OneEuroFilter`` package
  that upstream runs as 74 scalar objects per person), state dropped for tracks not seen this frame.
"""

from __future__ import annotations

import math

import numpy as np

from .detector import box_iou

MIN_AREA = 1000.0
IOU_THR = 0.3


def pose_to_bbox(keypoints: np.ndarray, expansion: float = 1.25) -> np.ndarray:
    """Boxes ``(N, 4)`` around all keypoints ``(N, K, 2)`` (whatever their score), grown by ``expansion``."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape[0] == 0:
        return np.zeros((0, 4), dtype=np.float32)
    lo, hi = kp.min(axis=1), kp.max(axis=1)
    center = (lo + hi) / 2
    return np.concatenate([center - (center - lo) * expansion, center + (hi - center) * expansion], axis=1).astype(
        np.float32
    )


class IouTracker:
    """Greedy IoU tracker. ``update(boxes)`` returns one id per box (``-1`` = too small to track)."""

    def __init__(self, iou_thr: float = IOU_THR, min_area: float = MIN_AREA, max_age: int = 0) -> None:
        self.iou_thr = float(iou_thr)
        self.min_area = float(min_area)
        self.max_age = int(max_age)
        self.reset()

    def reset(self) -> None:
        self.next_id = 0
        # live tracks in matching order: id -> (last box (4,), frames since last matched)
        self._tracks: dict[int, tuple[np.ndarray, int]] = {}

    @property
    def boxes(self) -> np.ndarray:
        """``(T, 4)`` boxes of the tracks matched in the latest frame (upstream's ``bboxes_last_frame``)."""
        rows = [box for box, age in self._tracks.values() if age == 0]
        return np.asarray(rows, dtype=np.float32).reshape(-1, 4)

    def live(self) -> list[tuple[np.ndarray, int]]:
        """(last box, frames since matched) of every live track, in matching order (ids left out)."""
        return list(self._tracks.values())

    @property
    def track_ids(self) -> list[int]:
        """Ids of all live tracks (including ones missed for up to ``max_age`` frames)."""
        return list(self._tracks)

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """Assign ids to this frame's boxes ``(N, 4)`` in order; returns ``(N,)`` int64."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        prev_ids = list(self._tracks)
        prev_boxes = np.asarray([self._tracks[t][0] for t in prev_ids], dtype=np.float32).reshape(-1, 4)
        iou = box_iou(boxes, prev_boxes) if len(prev_ids) and len(boxes) else np.zeros((len(boxes), 0))
        free = np.ones(len(prev_ids), dtype=bool)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        matched: dict[int, tuple[np.ndarray, int]] = {}
        for i, box in enumerate(boxes):
            scores = np.where(free, iou[i], -1.0)
            j = int(np.argmax(scores)) if len(scores) else -1  # first of equal maxima, as upstream
            if j >= 0 and scores[j] > self.iou_thr:
                free[j] = False
                ids[i] = prev_ids[j]
            elif (box[2] - box[0]) * (box[3] - box[1]) >= self.min_area:
                ids[i] = self.next_id
                self.next_id += 1
            else:
                continue
            matched[int(ids[i])] = (box.copy(), 0)
        for j, tid in enumerate(prev_ids):
            box, age = self._tracks[tid]
            if free[j] and age + 1 <= self.max_age:
                matched[tid] = (box, age + 1)
        self._tracks = matched
        return ids


class OneEuro:
    """One-Euro filter over an array of any shape: the ``OneEuroFilter`` 0.2.1 arithmetic per element.

    As that package: the derivative is taken against the previous *filtered* value, the first call
    returns its input, and a ``timestamp`` (seconds) after a previous one re-estimates the frequency.
    """

    def __init__(self, freq: float, mincutoff: float = 1.0, beta: float = 0.0, dcutoff: float = 1.0) -> None:
        if freq <= 0 or mincutoff <= 0 or dcutoff <= 0:
            raise ValueError(f"One-Euro: freq={freq}, mincutoff={mincutoff}, dcutoff={dcutoff}; all must be > 0")
        self.freq, self.mincutoff, self.beta, self.dcutoff = (
            float(freq),
            float(mincutoff),
            float(beta),
            float(dcutoff),
        )
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered derivative
        self._last_time: float | None = None

    def _alpha(self, cutoff):
        te = 1.0 / self.freq  # same operation order as the package, for bit-identical output
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    def __call__(self, x: np.ndarray, timestamp: float | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._last_time and timestamp and timestamp > self._last_time:
            self.freq = 1.0 / (timestamp - self._last_time)
        self._last_time = timestamp
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self.freq
        a_d = self._alpha(self.dcutoff)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        a = self._alpha(self.mincutoff + self.beta * np.abs(self._dx))
        self._x = a * x + (1.0 - a) * self._x
        return self._x.copy()


class KeypointSmoother:
    """Per-track One-Euro smoothing of 2D keypoints. Defaults are upstream PoseTracker's."""

    def __init__(self, freq: float = 30.0, mincutoff: float = 0.1, beta: float = 0.1, dcutoff: float = 1.0) -> None:
        self.params = dict(freq=freq, mincutoff=mincutoff, beta=beta, dcutoff=dcutoff)
        OneEuro(**self.params)  # validate now, not on the first tracked frame
        self.filters: dict[int, OneEuro] = {}

    def __call__(self, keypoints: np.ndarray, track_ids: np.ndarray, timestamp: float | None = None) -> np.ndarray:
        """Smooth ``keypoints`` ``(N, K, 2)`` of tracks ``track_ids`` ``(N,)``; id -1 rows pass through.

        Filters of tracks absent from ``track_ids`` are dropped, so memory is bounded by the live poses.
        """
        out = np.array(keypoints, copy=True)
        ids = [int(t) for t in np.asarray(track_ids).reshape(-1)]
        if len(ids) != len(out):
            raise ValueError(f"smoothing: {len(out)} poses but {len(ids)} track ids")
        for i, tid in enumerate(ids):
            if tid < 0:
                continue
            filt = self.filters.get(tid)
            if filt is None:
                filt = self.filters[tid] = OneEuro(**self.params)
            out[i] = filt(out[i], timestamp)
        for tid in set(self.filters) - set(ids):
            del self.filters[tid]
        return out

    def reset(self) -> None:
        self.filters.clear()

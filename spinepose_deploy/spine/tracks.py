"""One track's time series and what the offline outputs make of it: filtered angles and markers, the neutral
reference and the angles relative to it, and the track's summary.

:class:`Track` holds a track from its first to its last frame on the video's clock (frames where the person
was not seen are NaN rows); :func:`process` runs :mod:`.filtering`, :mod:`.neutral` and :mod:`.summary` on it.
Angle columns are whatever :class:`~spinepose_deploy.spine.angles.SpineAngles` names, so a new angle set flows
through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .angles import spine_angles
from .filtering import FilterKind, FilterSpec, filter_angles, filter_series
from .neutral import NeutralReference, NeutralSpec, reference, relative
from .summary import TrackSummary, craniovertebral_angle, summarise

# (keypoints (T, 37, 2), scores (T, 37)) of one person over consecutive frames -> world-space 3D (T, 37, 3)
Relift = Callable[[np.ndarray, np.ndarray], np.ndarray]
RAW = FilterSpec(FilterKind.NONE)  # values kept as they are (--filter none, or already smooth)


@dataclass(frozen=True)
class Track:
    """``angles (T, A)`` degrees (columns ``names``), ``cva (T,)`` and world ``points (T, 37, 3)`` (or None)
    of one person from video frame ``first_frame`` at ``fps``."""

    source: str
    track: int
    fps: float
    first_frame: int
    names: tuple[str, ...]
    angles: np.ndarray
    cva: np.ndarray
    points: np.ndarray | None = None

    @property
    def times(self) -> np.ndarray:
        """Seconds on the video's clock, ``(first_frame + t) / fps``."""
        return (self.first_frame + np.arange(len(self.angles))) / self.fps


@dataclass(frozen=True)
class ProcessedTrack:
    """A track after filtering (raw when ``--filter none``), with its neutral reference and summary."""

    track: Track
    angles: np.ndarray
    cva: np.ndarray
    points: np.ndarray | None
    reference: NeutralReference | None
    relative: np.ndarray | None
    summary: TrackSummary


def process(track: Track, filtering: FilterSpec = FilterSpec(), neutral: NeutralSpec | None = None) -> ProcessedTrack:
    """Filter ``track`` (tracks of one frame, e.g. still images, are kept as they are), find its neutral
    reference when ``neutral`` is given and summarise it."""
    timed = len(track.angles) > 1
    angles = filter_angles(track.angles, track.fps, filtering) if timed else track.angles.copy()
    cva = filter_angles(track.cva[:, None], track.fps, filtering)[:, 0] if timed else track.cva.copy()
    points = track.points
    if points is not None and timed:
        points = filter_series(points, track.fps, filtering)
    ref = reference(angles, track.names, track.first_frame, track.fps, neutral) if neutral is not None else None
    rel = relative(angles, ref) if ref is not None else None
    neutral_json = ref.to_json(track.names, track.fps) if ref is not None else None
    if neutral is not None and ref is None:
        why = "no quiet upright stretch found" if neutral.auto else "the track is not in the range"
        neutral_json = {"rule": "auto" if neutral.auto else "range", "requested": neutral.text, "none": why}
    summary = summarise(track.source, track.track, track.fps, track.first_frame, track.names, angles, cva,
                        neutral_json, rel)  # fmt: skip
    return ProcessedTrack(track, angles, cva, points, ref, rel, summary)


def relifted(track: Track, keypoints: np.ndarray, scores: np.ndarray, relift: Relift, filtering: FilterSpec,
             thr: float) -> Track:
    """``track`` remade from its offline-filtered 2D: ``keypoints (T, 37, 2)`` (NaN where not seen) and
    ``scores (T, 37)`` are filtered (points filled across short gaps count as just visible, score ``thr``),
    lifted again by ``relift`` and the angles and CVA recomputed from them; its values are then already
    smooth, so :func:`process` should get ``FilterSpec(FilterKind.NONE)`` for it."""
    visible = scores >= thr
    smoothed = filter_series(np.where(visible[..., None], keypoints, np.nan), track.fps, filtering)
    known = np.isfinite(smoothed).all(axis=-1)
    scores = np.where(known, np.maximum(scores, thr), 0.0)
    smoothed = np.where(known[..., None], smoothed, 0.0)
    rows = known.any(axis=1)
    world = np.full(keypoints.shape[:2] + (3,), np.nan)
    if rows.any():
        world[rows] = relift(smoothed[rows], scores[rows])
    angles = spine_angles(smoothed, scores, np.nan_to_num(world), thr=thr).values
    angles[~rows] = np.nan
    cva = craniovertebral_angle(smoothed, scores, np.nan_to_num(world), thr)
    cva[~rows] = np.nan
    points = np.where((scores >= thr)[..., None], world, np.nan)
    return Track(track.source, track.track, track.fps, track.first_frame, track.names, angles, cva, points)


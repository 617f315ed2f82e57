"""What an ergonomist or a physiotherapist reads first, per track: time in the trunk and neck zones, peaks,
range of motion, and the craniovertebral angle.

Zones (degrees of flexion, forward +; RULA scores the same bands, ISO 11226 draws the trunk's at 20 and 60):
trunk ``0-20 / 20-60 / >60``, neck ``0-10 / 10-20 / >20``, each with ``extension`` (below 0) apart. They read
the 3D inclinations ``trunk_incl`` / ``neck_incl`` when lifted, else the image-plane ``trunk_incl2d`` /
``neck_incl2d``, relative to the neutral posture when there is one. Time in a zone counts the frames measured
in it over the frame rate; frames where the angle was not measured count in none.

The craniovertebral angle (CVA; forward-head posture: smaller is more forward) is the angle of the line from
C7 (the ``neck`` keypoint) to the ear (tragus) above the horizontal: in world space with both ears' midpoint
when lifted, else in the image plane from the more confident ear (meaningful in a side view).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import KEYPOINT_INDEX

ZONES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "trunk": (("trunk_incl", "trunk_incl2d"), (20.0, 60.0)),
    "neck": (("neck_incl", "neck_incl2d"), (10.0, 20.0)),
}
# the angles the console table shows (when measured), in order; the JSON has every measured angle
KEY_ANGLES = ("trunk_incl", "trunk_lean", "neck_incl", "lumbar_flex", "thoracic_flex", "thorax_pelvis_rot",
              "trunk_incl2d", "neck_incl2d", "lumbar2d", "thoracic2d")  # fmt: skip
_EARS = (KEYPOINT_INDEX["left_ear"], KEYPOINT_INDEX["right_ear"])
_C7 = KEYPOINT_INDEX["neck"]


def craniovertebral_angle(keypoints: np.ndarray, scores: np.ndarray, world: np.ndarray | None = None,
                          thr: float = 0.3) -> np.ndarray:
    """CVA ``(N,)`` degrees for people ``keypoints (N, 37, 2)`` pixels, ``scores (N, 37)``, ``world (N, 37, 3)``
    metres y up (3D when given); NaN where C7 or the ear(s) are below ``thr``."""
    scores = np.asarray(scores, dtype=np.float64)
    c7_ok = scores[:, _C7] >= thr
    with np.errstate(invalid="ignore"):
        if world is not None:
            world = np.asarray(world, dtype=np.float64)
            ears_ok = (scores[:, list(_EARS)] >= thr).all(axis=1)
            line = world[:, list(_EARS)].mean(axis=1) - world[:, _C7]
            cva = np.degrees(np.arctan2(line[:, 1], np.hypot(line[:, 0], line[:, 2])))
            return np.where(c7_ok & ears_ok, cva, np.nan)
        keypoints = np.asarray(keypoints, dtype=np.float64)
        ear = np.where(scores[:, _EARS[0]] >= scores[:, _EARS[1]], _EARS[0], _EARS[1])
        rows = np.arange(len(scores))
        line = keypoints[rows, ear] - keypoints[:, _C7]
        cva = np.degrees(np.arctan2(-line[:, 1], np.abs(line[:, 0])))  # image y points down
        return np.where(c7_ok & (scores[rows, ear] >= thr), cva, np.nan)


def first_measured(values: np.ndarray, names: tuple[str, ...],
                   candidates: tuple[str, ...]) -> tuple[str, np.ndarray] | None:
    """The first of ``candidates`` (e.g. 3D, then image-plane) measured at least once in ``values (T, A)``."""
    for name in candidates:
        if name in names and np.isfinite(values[:, names.index(name)]).any():
            return name, values[:, names.index(name)]
    return None


def zone_times(angle: np.ndarray, bounds: tuple[float, float], fps: float) -> dict[str, float]:
    """Seconds of ``angle (T,)`` in ``extension`` (< 0), ``0-a``, ``a-b`` and ``>b`` (NaN frames in none)."""
    a, b = bounds
    finite = angle[np.isfinite(angle)]
    counts = {
        "extension": int((finite < 0).sum()), f"0-{a:g}": int(((finite >= 0) & (finite < a)).sum()),
        f"{a:g}-{b:g}": int(((finite >= a) & (finite < b)).sum()), f">{b:g}": int((finite >= b).sum()),
    }  # fmt: skip
    return {zone: n / fps for zone, n in counts.items()}


def angle_stats(angle: np.ndarray, times: np.ndarray) -> dict[str, float] | None:
    """Peaks (with their times), range of motion, median of ``angle (T,)``; None when never measured."""
    finite = np.isfinite(angle)
    if not finite.any():
        return None
    high, low = int(np.nanargmax(angle)), int(np.nanargmin(angle))
    return {"max": round(float(angle[high]), 2), "max_at_s": round(float(times[high]), 4),
            "min": round(float(angle[low]), 2), "min_at_s": round(float(times[low]), 4),
            "rom": round(float(angle[high] - angle[low]), 2),
            "median": round(float(np.nanmedian(angle)), 2)}  # fmt: skip


@dataclass(frozen=True)
class TrackSummary:
    """One track's summary; :meth:`to_json` is what ``<source>_summary.json`` holds per track."""

    source: str
    track: int
    fps: float
    first_frame: int
    frames: int
    measured_frames: int
    basis: str  # "relative to neutral" or "absolute"
    zones: dict[str, dict]
    angles: dict[str, dict]
    cva: dict | None
    neutral: dict | None
    vertical: dict | None = None  # the world vertical of the track's 3D angles (``Vertical.to_dict()``), at its end

    def to_json(self) -> dict:
        return {
            "source": self.source, "track": self.track, "fps": self.fps, "first_frame": self.first_frame,
            "start_s": round(self.first_frame / self.fps, 4),
            "end_s": round((self.first_frame + self.frames) / self.fps, 4),
            "frames": self.frames, "measured_frames": self.measured_frames, "angles_basis": self.basis,
            "zones": self.zones, "angles": self.angles, "craniovertebral_angle": self.cva, "neutral": self.neutral,
            "world_vertical": self.vertical,
        }  # fmt: skip


def summarise(source: str, track: int, fps: float, first_frame: int, names: tuple[str, ...], values: np.ndarray,
              cva: np.ndarray, neutral: dict | None = None, relative: np.ndarray | None = None) -> TrackSummary:
    """Summary of one track's (filtered) angles ``values (T, A)`` from video frame ``first_frame``; zones and
    statistics read ``relative (T, A)`` (angles minus the neutral reference) when given."""
    basis = values if relative is None else relative
    times = (first_frame + np.arange(len(values))) / fps
    zones: dict[str, dict] = {}
    for region, (candidates, bounds) in ZONES.items():
        picked = first_measured(basis, names, candidates)
        if picked is not None:
            name, angle = picked
            seconds = zone_times(angle, bounds, fps)
            zones[region] = {"angle": name, "seconds": {k: round(v, 4) for k, v in seconds.items()}}
    stats = {name: s for i, name in enumerate(names) if (s := angle_stats(basis[:, i], times)) is not None}
    return TrackSummary(
        source=source, track=track, fps=fps, first_frame=first_frame, frames=len(values),
        measured_frames=int(np.isfinite(values).any(axis=1).sum()),
        basis="absolute" if relative is None else "relative to neutral", zones=zones, angles=stats,
        cva=angle_stats(cva, times), neutral=neutral,
    )  # fmt: skip


def table_rows(summaries: list[TrackSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the console table: per track, time in each zone, then peak / ROM of the key angles."""
    header = ["track", "zone", "seconds (share)"]
    rows: list[list[str]] = []
    for summary in summaries:
        label = f"{summary.source} #{summary.track}"
        measured = max(summary.measured_frames / summary.fps, 1e-9)
        for region, zone in summary.zones.items():
            cells = [f"{k} {v:.1f}s ({100 * v / measured:.0f}%)" for k, v in zone["seconds"].items()]
            rows.append([label, f"{region} ({zone['angle']})", "  ".join(cells)])
        for name in KEY_ANGLES:
            if name in summary.angles:
                s = summary.angles[name]
                rows.append([label, name, f"min {s['min']:.1f}  max {s['max']:.1f}  ROM {s['rom']:.1f} deg"])
        if summary.cva is not None:
            cva = summary.cva
            rows.append([label, "craniovertebral", f"median {cva['median']:.1f}  min {cva['min']:.1f} deg"])
    return header, rows

"""Spine outputs (``--spine``, ``--spine-plot``, ``--trc``, ``--c3d``) of a Ray run, written by the driver.

Workers run ``infer`` with a :class:`Rows` recorder: it keeps each frame's finished ``PoseResult`` instead of
writing anything. The driver feeds every input's rows, in the run's source order, into the one
``SpineRecorder`` the single-machine ``infer`` uses, so the CSV, plot and TRC / C3D files are that code's
output. Rows are also kept per input in the bookkeeping folder (``.spinepose-ray/spine/<name>.npz``, plain
arrays, no pickle) so a resumed run that skips an input still writes its rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from ..ops.world import Vertical
from ..pipeline.result import PoseResult
from ..pipeline.spine_outputs import SpineRecorder, SpineRequest
from ..spine.angles import SpineAngles

# (frame, time in seconds or None for an image, result, the frame's (height, width) or None)
Row = tuple[int, "float | None", PoseResult, "tuple[int, int] | None"]


@dataclass
class Rows(SpineRecorder):
    """A ``SpineRecorder`` that records results for the driver and writes nothing (used on workers)."""

    request: SpineRequest = field(default_factory=SpineRequest)
    rows: list[Row] = field(default_factory=list)
    fps: float = 1.0

    def add(self, source: str, frame: int, time_s: float | None, result: PoseResult,
            image_hw: tuple[int, int] | None = None) -> SpineAngles | None:  # fmt: skip
        self.rows.append((frame, time_s, result, None if image_hw is None else (int(image_hw[0]), int(image_hw[1]))))
        return None  # labels are only asked for with --vis-angles, which a Ray run refuses

    def finish_source(self, source: str, fps: float) -> list:
        self.fps = fps
        return []

    def finish(self, title: str = "") -> list:
        return []


def replay(recorder: SpineRecorder, name: str, rows: list[Row], fps: float) -> list:
    """Feed one input's rows to the driver's recorder as ``infer`` would have; its TRC / C3D files."""
    for frame, time_s, result, image_hw in rows:
        recorder.add(name, frame, time_s, result, image_hw)
    return recorder.finish_source(name, fps)


_FIELDS = ("boxes", "box_scores", "keypoints", "scores", "keypoints_3d", "track_ids", "keypoints_3d_world")


def to_bytes(rows: list[Row], fps: float) -> bytes:
    """Rows as an ``.npz`` (per-frame counts, people stacked; None fields left out)."""
    results = [row[2] for row in rows]
    arrays: dict[str, np.ndarray] = {
        "frames": np.asarray([row[0] for row in rows], np.int64),
        "times": np.asarray([np.nan if row[1] is None else row[1] for row in rows], np.float64),
        "sizes": np.asarray([(-1, -1) if row[3] is None else row[3] for row in rows], np.int64).reshape(-1, 2),
        "counts": np.asarray([len(r) for r in results], np.int64),
        "fps": np.asarray(fps, np.float64),
        "standin": np.asarray([r.standin for r in results], bool),
    }
    for name in _FIELDS:
        present = [getattr(r, name) is not None for r in results]
        if results and all(present):
            arrays[name] = np.concatenate([getattr(r, name) for r in results])
        elif any(present):
            arrays[f"{name}_mask"] = np.asarray(present, bool)
            arrays[name] = np.concatenate([getattr(r, name) for r in results if getattr(r, name) is not None])
    if any(r.vertical is not None for r in results):  # the world vertical: the files name it (plain arrays)
        verticals = [r.vertical for r in results]
        arrays["vertical_up"] = np.asarray([np.full(3, np.nan) if v is None else v.up for v in verticals], np.float64)
        arrays["vertical_source"] = np.asarray(["" if v is None else v.source for v in verticals], str)
        arrays["vertical_uncertainty"] = np.asarray(
            [np.nan if v is None or v.uncertainty_deg is None else v.uncertainty_deg for v in verticals], np.float64)
        arrays["vertical_y_up"] = np.asarray([v is None or v.y_up for v in verticals], bool)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _vertical(stored: dict[str, np.ndarray], i: int) -> Vertical | None:
    if "vertical_source" not in stored or not stored["vertical_source"][i]:
        return None
    uncertainty = float(stored["vertical_uncertainty"][i])
    return Vertical(tuple(float(x) for x in stored["vertical_up"][i]), str(stored["vertical_source"][i]),
                    None if np.isnan(uncertainty) else uncertainty, bool(stored["vertical_y_up"][i]))  # fmt: skip


def from_bytes(data: bytes) -> tuple[list[Row], float]:
    """The rows and fps ``to_bytes`` stored (bit-identical arrays)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        stored = {key: z[key] for key in z.files}
    counts = stored["counts"]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows: list[Row] = []
    cursors = dict.fromkeys(_FIELDS, 0)
    for i, (frame, time_s) in enumerate(zip(stored["frames"], stored["times"], strict=True)):
        values = {}
        for name in _FIELDS:
            if name not in stored:
                values[name] = None
                continue
            mask = stored.get(f"{name}_mask")
            if mask is not None and not mask[i]:
                values[name] = None
                continue
            start = offsets[i] if mask is None else cursors[name]
            values[name] = stored[name][start : start + counts[i]]
            cursors[name] = start + counts[i]
        result = PoseResult(standin=bool(stored["standin"][i]), vertical=_vertical(stored, i), **values)
        height, width = (int(v) for v in stored["sizes"][i])
        size = None if height < 0 else (height, width)
        rows.append((int(frame), None if np.isnan(time_s) else float(time_s), result, size))
    return rows, float(stored["fps"])

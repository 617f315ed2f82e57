"""Spine angles as rows (one per frame x person) and the CSV that ``infer --spine`` writes.

Columns: ``source, frame, time_s, track_id, person``, the world vertical the 3D angles were measured against
(``vertical_source, camera_pitch_deg, camera_roll_deg, vertical_uncertainty_deg``; empty without 3D), then
every angle of
:data:`~spinepose_deploy.spine.angles.ANGLE_NAMES` in degrees, then ``conf_<angle>`` for each. Empty cells
are angles that could not be measured (a point below the confidence threshold, or 3D without ``--lift``)
and times of still images.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import write_text
from .angles import ANGLE_NAMES, SpineAngles

KEY_COLUMNS = ("source", "frame", "time_s", "track_id", "person")
VERTICAL_COLUMNS = ("vertical_source", "camera_pitch_deg", "camera_roll_deg", "vertical_uncertainty_deg")
COLUMNS: tuple[str, ...] = (KEY_COLUMNS + VERTICAL_COLUMNS + ANGLE_NAMES
                            + tuple(f"conf_{name}" for name in ANGLE_NAMES))  # fmt: skip


@dataclass
class AngleTable:
    """Rows collected frame by frame: keys, angle values ``(R, A)`` and confidences ``(R, A)``."""

    keys: list[tuple[str, int, float | None, int, int]] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    confidence: list[np.ndarray] = field(default_factory=list)
    verticals: list[dict | None] = field(default_factory=list)

    def add(self, source: str, frame: int, time_s: float | None, track_ids: np.ndarray | None,
            angles: SpineAngles, vertical: dict | None = None) -> None:
        """One frame's people: ``angles`` over ``(N,)``; ``track_ids`` None gives the person index;
        ``vertical``: the world vertical's ``ops.world.Vertical.to_dict()`` when 3D was measured."""
        for person in range(len(angles.values)):
            track = int(track_ids[person]) if track_ids is not None else person
            self.keys.append((source, int(frame), time_s, track, person))
            self.verticals.append(vertical)
        self.values.extend(angles.values)
        self.confidence.extend(angles.confidence)

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        """``(R,)`` values of one angle (NaN where not measured)."""
        if not self.values:
            return np.zeros(0)
        return np.asarray(self.values)[:, ANGLE_NAMES.index(name)]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for key, values, conf, vertical in zip(self.keys, self.values, self.confidence, self.verticals, strict=True):
            source, frame, time_s, track, person = key
            up = ["" if vertical is None or vertical.get(c) is None else vertical[c] for c in VERTICAL_COLUMNS]
            writer.writerow([
                source, frame, "" if time_s is None else f"{time_s:.4f}", track, person, *up,
                *("" if np.isnan(v) else f"{v:.3f}" for v in values), *(f"{c:.3f}" for c in conf),
            ])  # fmt: skip
        return buffer.getvalue()

    def write_csv(self, path: str | Path) -> Path:
        return write_text(path, self.to_csv())

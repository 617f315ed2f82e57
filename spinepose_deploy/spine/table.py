"""Spine angles as rows (one per frame x person) and the CSV that ``infer --spine`` writes.

Columns: ``source, frame, time_s, track_id, person``, the world vertical the 3D angles stand on
(``vertical_source, camera_pitch_deg, camera_roll_deg, vertical_uncertainty_deg``; empty without 3D), then
every angle the rows' :class:`SpineAngles` name
(:data:`~spinepose_deploy.spine.angles.ANGLE_NAMES` today) in degrees, ``cva`` (the craniovertebral angle,
:mod:`.summary`), then ``<angle>_rel`` for each angle when a neutral posture was subtracted, then
``conf_<angle>`` for each angle. Empty cells are angles that could not be measured (a point below the
confidence threshold, or 3D without ``--lift``) and times of still images.
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
COLUMNS: tuple[str, ...] = (KEY_COLUMNS + VERTICAL_COLUMNS + ANGLE_NAMES + ("cva",)
                            + tuple(f"conf_{name}" for name in ANGLE_NAMES))  # fmt: skip


def _cell(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.3f}"


@dataclass
class AngleTable:
    """Rows collected frame by frame: keys, angle values ``(R, A)``, confidences ``(R, A)`` and CVA ``(R,)``;
    ``relative`` holds, by row, the angles minus a neutral reference where one was found."""

    keys: list[tuple[str, int, float | None, int, int]] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    confidence: list[np.ndarray] = field(default_factory=list)
    cva: list[float] = field(default_factory=list)
    relative: dict[int, np.ndarray] = field(default_factory=dict)
    names: tuple[str, ...] = ANGLE_NAMES
    verticals: list[dict | None] = field(default_factory=list)

    def add(self, source: str, frame: int, time_s: float | None, track_ids: np.ndarray | None,
            angles: SpineAngles, cva: np.ndarray | None = None, vertical: dict | None = None) -> None:
        """One frame's people: ``angles`` over ``(N,)``; ``track_ids`` None gives the person index;
        ``vertical``: the world vertical's ``ops.world.Vertical.to_dict()`` when 3D was measured."""
        self.names = tuple(angles.names)
        for person in range(len(angles.values)):
            track = int(track_ids[person]) if track_ids is not None else person
            self.keys.append((source, int(frame), time_s, track, person))
            self.verticals.append(vertical)
        self.values.extend(angles.values)
        self.confidence.extend(angles.confidence)
        self.cva.extend(np.full(len(angles.values), np.nan) if cva is None else np.asarray(cva, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        """``(R,)`` values of one angle (NaN where not measured)."""
        if not self.values:
            return np.zeros(0)
        return np.asarray(self.values)[:, self.names.index(name)]

    def of_source(self, source: str) -> AngleTable:
        """The rows of one source (a new table sharing the row arrays)."""
        rows = [i for i, key in enumerate(self.keys) if key[0] == source]
        return AngleTable(keys=[self.keys[i] for i in rows], values=[self.values[i] for i in rows],
                          confidence=[self.confidence[i] for i in rows], cva=[self.cva[i] for i in rows],
                          relative={j: self.relative[i] for j, i in enumerate(rows) if i in self.relative},
                          names=self.names, verticals=[self.verticals[i] for i in rows])  # fmt: skip

    @property
    def columns(self) -> tuple[str, ...]:
        rel = tuple(f"{name}_rel" for name in self.names) if self.relative else ()
        conf = tuple(f"conf_{name}" for name in self.names)
        return KEY_COLUMNS + VERTICAL_COLUMNS + self.names + ("cva",) + rel + conf

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        blank = np.full(len(self.names), np.nan)
        for row, (key, values, conf) in enumerate(zip(self.keys, self.values, self.confidence, strict=True)):
            source, frame, time_s, track, person = key
            rel = [_cell(v) for v in self.relative.get(row, blank)] if self.relative else []
            vertical = self.verticals[row] if row < len(self.verticals) else None
            up = ["" if vertical is None or vertical.get(c) is None else vertical[c] for c in VERTICAL_COLUMNS]
            writer.writerow([
                source, frame, "" if time_s is None else f"{time_s:.4f}", track, person, *up,
                *(_cell(v) for v in values), _cell(self.cva[row]), *rel, *(f"{c:.3f}" for c in conf),
            ])  # fmt: skip
        return buffer.getvalue()

    def write_csv(self, path: str | Path) -> Path:
        return write_text(path, self.to_csv())

"""``infer --spine / --spine-plot / --trc / --c3d / --vis-angles``: spine angles and mocap files of a run.

:class:`SpineRequest` holds the output paths and checks them (and the options they need) once, before any
model loads. :class:`SpineRecorder` takes each frame's :class:`PoseResult`, keeps its angles for the CSV
and the plot and its world-space keypoints per track, and writes the TRC / C3D files of a source when that
source ends (``<source>_track<id>.trc``; for still images the track id is the person's index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._charts import check_matplotlib
from ..errors import InvalidOptionError
from ..ops.world import Vertical
from ..spine import mocap
from ..spine.angles import DEFAULT_THR, SpineAngles
from ..spine.plot import write_plot
from ..spine.table import AngleTable
from .result import PoseResult

# what --vis-angles writes beside each person: (angle, label), 3D when there is world space, else 2D
_LABEL_3D = (("trunk_incl", "trunk"), ("neck_incl", "neck"))
_LABEL_2D = (("trunk_incl2d", "trunk"), ("neck_incl2d", "neck"))


@dataclass(frozen=True)
class SpineRequest:
    """Where the spine outputs go; ``check`` refuses bad combinations and wrong-kind paths in one line."""

    csv: Path | None = None
    plot: Path | None = None
    trc: Path | None = None
    c3d: Path | None = None
    vis_angles: bool = False

    @property
    def wanted(self) -> bool:
        return any(p is not None for p in (self.csv, self.plot, self.trc, self.c3d)) or self.vis_angles

    def check(self, *, lift: bool, vis: bool) -> None:
        _file_option("--spine", self.csv, ".csv")
        _file_option("--spine-plot", self.plot, ".png")
        for option, folder, suffix in (("--trc", self.trc, ".trc"), ("--c3d", self.c3d, ".c3d")):
            if folder is None:
                continue
            if not lift:
                raise InvalidOptionError(f"{option}: markers need world-space 3D keypoints; add --lift")
            if folder.exists() and not folder.is_dir():
                raise InvalidOptionError(f"{option}: '{folder}' exists and is not a folder; give a folder")
            if folder.suffix.lower() == suffix:
                raise InvalidOptionError(f"{option}: '{folder}' is a file name; give a folder (one file per track)")
        if self.plot is not None:
            check_matplotlib("--spine-plot")
        if self.c3d is not None:
            mocap.check_c3d("--c3d")
        if self.vis_angles and not vis:
            raise InvalidOptionError("--vis-angles: draws on the overlay; add --vis PATH (or --show)")


def _file_option(option: str, path: Path | None, suffix: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise InvalidOptionError(f"{option}: '{path}' is a folder; expected a {suffix} file")
    if path.suffix.lower() != suffix:
        raise InvalidOptionError(f"{option}: '{path}' does not end in {suffix}; expected a {suffix} file")


@dataclass
class SpineRecorder:
    """Collects one run's angles and per-track world keypoints; writes the requested files."""

    request: SpineRequest
    thr: float = DEFAULT_THR
    table: AngleTable = field(default_factory=AngleTable)
    _tracks: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)
    vertical: Vertical | None = None  # the last world vertical seen (the run's console line)

    def add(self, source: str, frame: int, time_s: float | None, result: PoseResult) -> SpineAngles:
        """Record one frame's people; returns their angles (for the overlay labels)."""
        angles = result.spine_angles(self.thr)
        world = result.vertical is not None and result.keypoints_3d_world is not None
        vertical = result.vertical.to_dict() if world else None
        if world:
            self.vertical = result.vertical
        self.table.add(source, frame, time_s, result.track_ids, angles, vertical)
        if result.keypoints_3d_world is not None and (self.request.trc or self.request.c3d):
            ids = result.track_ids if result.track_ids is not None else np.arange(len(result))
            points = np.where(result.scores[..., None] >= self.thr, result.keypoints_3d_world, np.nan)
            for track, person in zip(ids.tolist(), points, strict=True):
                if track >= 0:  # -1: too small to track, no identity to follow
                    self._tracks.setdefault(int(track), {})[int(frame)] = person
        return angles

    def finish_source(self, source: str, fps: float) -> list[Path]:
        """Write this source's TRC / C3D files, one per track, frames from its first to its last appearance."""
        written: list[Path] = []
        for track, frames in sorted(self._tracks.items()):
            first, last = min(frames), max(frames)
            points = np.full((last - first + 1,) + next(iter(frames.values())).shape, np.nan)
            for index, person in frames.items():
                points[index - first] = person
            name = f"{source}_track{track}"
            if self.request.trc is not None:
                written.append(mocap.write_trc(self.request.trc / f"{name}.trc", points, fps, first_frame=first + 1))
            if self.request.c3d is not None:
                written.append(mocap.write_c3d(self.request.c3d / f"{name}.c3d", points, fps))
        self._tracks.clear()
        return written

    def finish(self, title: str = "") -> list[Path]:
        """Write the CSV and the plot of everything recorded."""
        written = []
        if self.request.csv is not None:
            written.append(self.table.write_csv(self.request.csv))
        if self.request.plot is not None:
            written.append(write_plot(self.table, self.request.plot, title))
        return written


def angle_labels(angles: SpineAngles) -> list[str]:
    """Per person, e.g. ``trunk 12 neck -4 deg`` (3D angles when known, else image-plane ones)."""
    index = {name: i for i, name in enumerate(angles.names)}
    labels = []
    for row in angles.values:
        pick = _LABEL_3D if np.isfinite(row[[index[n] for n, _ in _LABEL_3D]]).any() else _LABEL_2D
        parts = [f"{text} {row[index[name]]:.0f}" for name, text in pick if np.isfinite(row[index[name]])]
        labels.append(" ".join(parts) + " deg" if parts else "")
    return labels

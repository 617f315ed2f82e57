"""``infer --spine / --spine-plot / --trc / --c3d / --mot / --report / --neutral / --filter / --vis-angles``:
spine angles, mocap and angle files, and the summary report of a run.

:class:`SpineRequest` holds the output paths and options and checks them (and the options they need) once,
before any model loads. :class:`SpineRecorder` takes each frame's :class:`PoseResult`, keeps its angles (and
craniovertebral angle) for the CSV and the plot and its world-space keypoints per track; when a source ends it
filters each track offline (:mod:`spinepose_deploy.spine.filtering`; the live path keeps One-Euro), finds the
neutral reference, writes ``<source>_track<id>.trc / .c3d / .mot`` and the report, and puts the filtered and
relative angles back into the CSV rows. For still images the track id is the person's index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .._charts import check_matplotlib
from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_NAMES
from ..ops.world import Vertical
from ..spine import mocap
from ..spine.angles import DEFAULT_THR, SpineAngles
from ..spine.filtering import FilterSpec, check_scipy
from ..spine.markers import MarkerNames, marker_set
from ..spine.neutral import NeutralSpec
from ..spine.plot import write_plot
from ..spine.report import write_report
from ..spine.storage import vertical_notes, write_mot
from ..spine.summary import TrackSummary, craniovertebral_angle
from ..spine.table import AngleTable
from ..spine.tracks import RAW, ProcessedTrack, Track, process, relifted
from .io import InputSpec, VideoReader
from .result import PoseResult

log = logging.getLogger(__name__)

# what --vis-angles writes beside each person: (angle, label), 3D when there is world space, else 2D
_LABEL_3D = (("trunk_incl", "trunk"), ("neck_incl", "neck"))
_LABEL_2D = (("trunk_incl2d", "trunk"), ("neck_incl2d", "neck"))


@dataclass(frozen=True)
class SpineRequest:
    """Where the spine outputs go and how they are processed; ``check`` refuses bad combinations in one line."""

    csv: Path | None = None
    plot: Path | None = None
    trc: Path | None = None
    c3d: Path | None = None
    vis_angles: bool = False
    mot: Path | None = None
    report: Path | None = None
    filtering: FilterSpec = FilterSpec()
    neutral: NeutralSpec | None = None
    marker_names: MarkerNames = MarkerNames.OPENSIM
    lift_filtered: bool = False

    @property
    def wanted(self) -> bool:
        return self.files or self.vis_angles

    @property
    def files(self) -> bool:
        """Any file output: the offline processing (filtering, neutral, summary) runs only for them."""
        return any(p is not None for p in (self.csv, self.plot, self.trc, self.c3d, self.mot, self.report))

    def check(self, *, lift: bool, vis: bool) -> None:
        _file_option("--spine", self.csv, ".csv")
        _file_option("--spine-plot", self.plot, ".png")
        for option, folder, suffix in (("--trc", self.trc, ".trc"), ("--c3d", self.c3d, ".c3d")):
            if folder is not None and not lift:
                raise InvalidOptionError(f"{option}: markers need world-space 3D keypoints; add --lift")
            _folder_option(option, folder, suffix)
        _folder_option("--mot", self.mot, ".mot")
        _folder_option("--report", self.report, ".html")
        if self.plot is not None:
            check_matplotlib("--spine-plot")
        if self.c3d is not None:
            mocap.check_c3d("--c3d")
        if self.vis_angles and not vis:
            raise InvalidOptionError("--vis-angles: draws on the overlay; add --vis PATH (or --show)")
        if self.neutral is not None and not any(p is not None for p in (self.csv, self.mot, self.report)):
            raise InvalidOptionError("--neutral: relative angles go into --spine, --mot or --report; add one of them")
        self.filtering.check()
        if self.filtering.active and self.files:
            check_scipy("--filter")  # the filter runs only for file outputs
        if self.lift_filtered and not (lift and self.filtering.active):
            raise InvalidOptionError("--lift-filtered: lifts again from the offline-filtered 2D; needs --lift and a "
                                     "--filter other than none")

    def check_inputs(self, spec: InputSpec) -> None:
        """Per video file, before any model loads: the neutral range inside it, the cut-off below fps / 2."""
        if not self.files:
            return
        for source in spec.sources:
            if source.kind != "video":
                continue
            with VideoReader(source) as reader:
                if self.neutral is not None:
                    self.neutral.check_video(source.name, reader.frame_count, reader.fps)
                self.filtering.check(reader.fps)


def _file_option(option: str, path: Path | None, suffix: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise InvalidOptionError(f"{option}: '{path}' is a folder; expected a {suffix} file")
    if path.suffix.lower() != suffix:
        raise InvalidOptionError(f"{option}: '{path}' does not end in {suffix}; expected a {suffix} file")


def _folder_option(option: str, folder: Path | None, suffix: str) -> None:
    if folder is None:
        return
    if folder.exists() and not folder.is_dir():
        raise InvalidOptionError(f"{option}: '{folder}' exists and is not a folder; give a folder")
    if folder.suffix.lower() == suffix:
        raise InvalidOptionError(f"{option}: '{folder}' is a file name; give a folder (one file per track)")


_Entry = tuple[int, "np.ndarray | None", np.ndarray, np.ndarray]


@dataclass
class SpineRecorder:
    """Collects one run's angles and per-track world keypoints; writes the requested files."""

    request: SpineRequest
    thr: float = DEFAULT_THR
    table: AngleTable = field(default_factory=AngleTable)
    standin: bool = False
    # Pipeline.relift for --lift-filtered: (keypoints (T, 37, 2), scores (T, 37), image_hw) -> world (T, 37, 3)
    relift: Callable[[np.ndarray, np.ndarray, tuple[int, int]], np.ndarray] | None = None
    summaries: list[TrackSummary] = field(default_factory=list)
    # this source's tracks: track id -> frame -> (table row, world points (37, 3) or None, 2D (37, 2), scores (37,))
    _tracks: dict[int, dict[int, _Entry]] = field(default_factory=dict)
    _image_hw: tuple[int, int] | None = None
    vertical: Vertical | None = None  # the last world vertical seen (the run's console line)

    def add(self, source: str, frame: int, time_s: float | None, result: PoseResult,
            image_hw: tuple[int, int] | None = None) -> SpineAngles:
        """Record one frame's people (``image_hw``: the frame's size, for re-lifting); returns their angles."""
        self._image_hw = image_hw or self._image_hw
        angles = result.spine_angles(self.thr)
        world = result.keypoints_3d_world
        cva = craniovertebral_angle(result.keypoints, result.scores, world, self.thr)
        first_row = len(self.table)
        if world is not None and result.vertical is not None:
            self.vertical = result.vertical
        vertical = self.vertical.to_dict() if world is not None and self.vertical is not None else None
        self.table.add(source, frame, time_s, result.track_ids, angles, cva, vertical)
        if world is not None:
            world = np.where(result.scores[..., None] >= self.thr, world, np.nan)
        ids = result.track_ids if result.track_ids is not None else np.arange(len(result))
        for person, track in enumerate(ids.tolist()):
            if track >= 0:  # -1: too small to track, no identity to follow
                points = world[person] if world is not None else None
                self._tracks.setdefault(int(track), {})[int(frame)] = (
                    first_row + person, points, result.keypoints[person], result.scores[person])
        return angles

    def finish_source(self, source: str, fps: float) -> list[Path]:
        """Filter this source's tracks and write their TRC / C3D / .mot files (frames from each track's first
        to its last appearance, on the video's clock) and the source's report."""
        if not self.request.files:  # --vis-angles alone: nothing to write
            self._tracks.clear()
            return []
        processed = [self._process(source, track, frames, fps) for track, frames in sorted(self._tracks.items())]
        neutral = self.request.neutral
        if neutral is not None and not neutral.auto and processed and all(p.reference is None for p in processed):
            start, end = neutral.frames(fps)
            raise InvalidOptionError(
                f"--neutral {neutral.text}: no tracked person in frames {start}-{end - 1} of '{source}'; "
                "give a range where the person stands still"
            )
        written: list[Path] = []
        for item in processed:
            written.extend(self._write_track(source, item))
        summaries = [p.summary for p in processed]
        self.summaries.extend(summaries)
        if self.request.report is not None:
            written.extend(write_report(self.request.report, source, summaries, self.table.of_source(source),
                                        self.standin))  # fmt: skip
        self._tracks.clear()
        return written

    def _process(self, source: str, track: int, frames: dict[int, _Entry], fps: float) -> ProcessedTrack:
        first, last = min(frames), max(frames)
        length = last - first + 1
        names = self.table.names
        angles = np.full((length, len(names)), np.nan)
        cva = np.full(length, np.nan)
        has_points = any(entry[1] is not None for entry in frames.values())
        points = np.full((length, len(KEYPOINT_NAMES), 3), np.nan) if has_points else None
        keypoints = np.full((length, len(KEYPOINT_NAMES), 2), np.nan)
        scores = np.zeros((length, len(KEYPOINT_NAMES)))
        for frame, (row, person, xy, score) in frames.items():
            angles[frame - first] = self.table.values[row]
            cva[frame - first] = self.table.cva[row]
            keypoints[frame - first], scores[frame - first] = xy, score
            if points is not None and person is not None:
                points[frame - first] = person
        series = Track(source, track, fps, first, names, angles, cva, points)
        filtering = self.request.filtering
        if self.request.lift_filtered and self.relift is not None and length > 1 and self._image_hw is not None:
            image_hw, relift = self._image_hw, self.relift
            series = relifted(series, keypoints, scores, lambda k, s: relift(k, s, image_hw), filtering, self.thr)
            filtering = RAW  # already smooth: filtering its angles again would lower the cut-off
        item = process(series, filtering, self.request.neutral)
        # the world vertical of the track's last frame (the most evidence): every file of the track names it
        vertical = self.table.verticals[frames[last][0]]
        item = replace(item, summary=replace(item.summary, vertical=vertical))
        for frame, (row, *_) in frames.items():  # the CSV and the plot show the filtered angles
            self.table.values[row] = item.angles[frame - first]
            self.table.cva[row] = float(item.cva[frame - first])
            if item.relative is not None:
                self.table.relative[row] = item.relative[frame - first]
        return item

    def _write_track(self, source: str, item: ProcessedTrack) -> list[Path]:
        request, track = self.request, item.track
        name = f"{source}_track{track.track}"
        vertical = item.summary.vertical
        written: list[Path] = []
        if item.points is not None and (request.trc is not None or request.c3d is not None):
            ids, markers = marker_set(request.marker_names)
            points = item.points[:, list(ids)]
            if request.trc is not None:
                written.append(mocap.write_trc(request.trc / f"{name}.trc", points, track.fps, markers,
                                               track.first_frame, vertical))  # fmt: skip
            if request.c3d is not None:
                written.append(mocap.write_c3d(request.c3d / f"{name}.c3d", points, track.fps, markers,
                                               track.first_frame, vertical))  # fmt: skip
        if request.mot is not None:
            columns = [i for i in range(len(track.names)) if np.isfinite(item.angles[:, i]).any()]
            if not columns:
                log.warning("--mot: %s has no measured angle; no .mot written for it", name)
            else:
                names = [track.names[i] for i in columns] + ["cva"]
                values = [item.angles[:, columns], item.cva[:, None]]
                if item.relative is not None:
                    names += [f"{track.names[i]}_rel" for i in columns]
                    values.append(item.relative[:, columns])
                notes = [item.reference.note(track.fps)] if item.reference is not None else []
                notes += vertical_notes(vertical)
                written.append(write_mot(request.mot / f"{name}.mot", track.times, names,
                                         np.concatenate(values, axis=1), notes))  # fmt: skip
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

"""``infer``'s options: declared once (``Annotated`` aliases) and grouped into frozen dataclasses that the
command builds once, up front, before any model loads.

Groups: ``Models`` (which graphs run where), ``Outputs`` (JSON, overlays, window), ``ScaleOut`` (Ray) and
``RunOptions`` (how the pipeline runs, with its ``Camera``); the spine / biomechanics outputs are ``SpineRequest``
(``spine_request``). Each group is checked where it is built, so a bad flag fails in one line and early.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InvalidOptionError
from .options import BACKEND_CHOICES

if TYPE_CHECKING:  # only for annotations: the CLI starts without loading the pipeline
    from ..pipeline.spine_outputs import SpineRequest

Input = Annotated[str, typer.Argument(help="An image, a folder of images/videos, a video file, or a webcam index.")]
BundleDir = Annotated[Path | None, typer.Option(help="Bundle directory from 'spinepose-deploy export'.")]
Backend = Annotated[
    str | None,
    typer.Option(help=f"auto (default: the fastest measured here) | {BACKEND_CHOICES}; "
                 "--backend onnxruntime --precision fp32 is the strict reference"),
]  # fmt: skip
Lift = Annotated[bool, typer.Option(help="Lift to 3D (camera space; world space for video/images).")]
SpineOnly = Annotated[bool, typer.Option(help="Keep only the 9 spine keypoints in JSON and overlays.")]
MaxPeople = Annotated[int | None, typer.Option(help="At most N people per frame (highest scores).")]
JsonOut = Annotated[
    Path | None, typer.Option("--json", help="OpenPose JSON: a .json file for one image, else a folder.")
]
Vis = Annotated[Path | None, typer.Option(help="Overlay: an image/video file, or a folder.")]
Show = Annotated[bool, typer.Option(help="Show overlays in a window (q quits).")]
Fov = Annotated[float, typer.Option(help="Diagonal field of view in degrees, for lifting.")]
SubjectHeight = Annotated[float, typer.Option(help="Height of person 0 in metres (metric scale).")]
Smooth = Annotated[bool, typer.Option(help="One-Euro smoothing of video keypoints.")]
DetEvery = Annotated[
    str | None,
    typer.Option("--det-every", help="Video: run the detector every N frames, boxes from the keypoints in "
                 "between (default 5, detect_policy.DEFAULT_DET_EVERY; 1 = every frame)."),
]  # fmt: skip
DetAdaptive = Annotated[
    bool, typer.Option(help="Video: re-detect at once on a lost track, low pose score, box at the edge, scene cut.")
]
Ray = Annotated[
    bool, typer.Option("--ray", help="Run on Ray (INPUT may be a glob or a list file too); resumable: docs/ray.md.")
]
RayAddress = Annotated[
    str | None, typer.Option(help="Ray address (implies --ray); default: RAY_ADDRESS, else a local instance.")
]
SegmentSeconds = Annotated[
    float | None,
    typer.Option(help="--ray: split videos longer than this across workers, stitched exactly (default 60; "
                 "0 = never split): docs/ray.md."),
]  # fmt: skip
SpineCsv = Annotated[
    Path | None, typer.Option("--spine", help="Spine angles CSV: one row per frame x person (docs/spine.md).")
]
SpinePlot = Annotated[
    Path | None, typer.Option(help="PNG of each track's spine angles over time (needs the 'chart' extra).")
]
Trc = Annotated[Path | None, typer.Option(help="Folder: OpenSim TRC per track of world-space markers (needs --lift).")]
C3d = Annotated[
    Path | None, typer.Option(help="Folder: C3D per track of world-space markers (needs --lift, 'biomech').")
]
VisAngles = Annotated[bool, typer.Option(help="Write trunk/neck angles beside each person on --vis.")]
Mot = Annotated[Path | None, typer.Option(help="Folder: OpenSim .mot of each track's angles, time on the video clock.")]
Report = Annotated[Path | None, typer.Option(help="Folder: per input a summary JSON and a self-contained HTML report.")]
Neutral = Annotated[
    str | None,
    typer.Option(help="Neutral posture subtracted per track: START:END frames (0:30), seconds (0s:1.5s) or auto "
                 "(quiet upright stretch); absolute and relative angles are kept."),
]  # fmt: skip
Filter = Annotated[
    str,
    typer.Option("--filter", help="Offline filter of files and plots: butterworth (gaps, Hampel, zero-lag "
                 "low-pass; needs scipy) | none (raw). The live path keeps One-Euro."),
]  # fmt: skip
FilterOrder = Annotated[int, typer.Option(help="Butterworth order (zero-lag, even; Pose2Sim default 4).")]
FilterCutoff = Annotated[float, typer.Option(help="Butterworth cut-off in Hz (below fps / 2; default 6).")]
MaxGap = Annotated[int, typer.Option(help="Fill gaps up to N frames by interpolation; longer stay empty.")]
MarkerNames = Annotated[
    str, typer.Option(help="TRC/C3D marker names: opensim (upstream's 33 OpenSim markers) | keypoints (all 37).")
]
LiftFiltered = Annotated[
    bool, typer.Option(help="Files: lift each track again from its offline-filtered 2D (needs --lift, --filter).")
]
CameraPitch = Annotated[
    float | None, typer.Option(help="Camera pitch in degrees, looking down + (the world vertical; docs/spine.md).")
]
CameraRoll = Annotated[
    float | None, typer.Option(help="Camera roll in degrees (the vertical leans clockwise on screen +).")
]
CalibrationToml = Annotated[
    Path | None, typer.Option(help="Pose2Sim/Sports2D calibration TOML: intrinsics and the world vertical.")
]


@dataclass(frozen=True)
class Models:
    """Which graphs run where: a bundle, or the zoo options (None: not given, a bundle may fix them)."""

    bundle: Path | None
    backend: str | None
    mode: str | None
    detector: str | None
    model_version: str | None
    precision: str | None
    weights: str | None

    def zoo(self) -> dict[str, str | None]:
        """``PipelineSpec.from_cli``'s zoo fields."""
        names = ("mode", "detector", "model_version", "precision", "weights")
        return {name: getattr(self, name) for name in names}

    def flags(self) -> dict[str, str | None]:
        """The zoo fields as the command line spells them (``--model-version``), for errors raised on Ray."""
        return {f"--{name.replace('_', '-')}": value for name, value in self.zoo().items()}


@dataclass(frozen=True)
class Outputs:
    """Where the keypoints go: OpenPose JSON, overlays, a window; ``spine_only`` keeps the 9 spine points."""

    json_out: Path | None
    vis: Path | None
    show: bool
    spine_only: bool


@dataclass(frozen=True)
class ScaleOut:
    """``--ray`` (or an address, which implies it) and how videos are split across workers."""

    ray: bool
    address: str | None
    segment_seconds: float | None

    def __post_init__(self) -> None:
        if self.segment_seconds is not None and not self.enabled:
            raise InvalidOptionError("--segment-seconds: splits videos across Ray workers; add --ray")

    @property
    def enabled(self) -> bool:
        return self.ray or self.address is not None


@dataclass(frozen=True)
class Camera:
    """The world vertical the user knows: ``--camera-pitch`` / ``--camera-roll`` or a calibration TOML."""

    pitch: float | None = None
    roll: float | None = None
    calibration: Path | None = None

    def fields(self) -> dict[str, Any]:
        """The ``PipelineOptions`` fields given (none given: none, so specs and resume fingerprints stay as
        they were without them)."""
        calibration = None if self.calibration is None else str(self.calibration)
        given = (("camera_pitch", self.pitch), ("camera_roll", self.roll), ("calibration", calibration))
        return {name: value for name, value in given if value is not None}


@dataclass(frozen=True)
class RunOptions:
    """How the pipeline runs (``PipelineOptions`` fields): lifting, people, smoothing, detection cadence,
    the camera."""

    lift: bool
    max_people: int | None
    fov: float
    subject_height: float
    smoothing: bool
    det_every: int | None
    det_adaptive: bool
    camera: Camera = Camera()

    @classmethod
    def from_cli(cls, lift: bool, max_people: int | None, fov: float, subject_height: float, smooth: bool,
                 det_every: str | None, det_adaptive: bool, camera: Camera = Camera()) -> RunOptions:  # fmt: skip
        """The options as given, checked now (one line each, no model loaded): ``--det-every`` a positive
        whole number; the camera options only with ``--lift``, and valid as ``PipelineOptions``."""
        # lazy: the CLI starts without loading the pipeline
        from ..pipeline.detect_policy import check_det_every
        from ..pipeline.pipeline import PipelineOptions

        every = None if det_every is None else check_det_every(det_every)
        options = cls(lift, max_people, fov, subject_height, smooth, every, det_adaptive, camera)
        if camera.fields() and not lift:
            raise InvalidOptionError("--camera-pitch/--camera-roll/--calibration: they set the 3D world; add --lift")
        if camera.fields():
            PipelineOptions(**options.as_dict())
        return options

    def as_dict(self) -> dict[str, Any]:
        """``PipelineSpec``'s ``options`` (also what a Ray worker rebuilds its pipeline from)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "camera"}
        return {**fields, **self.camera.fields()}


def spine_request(
    paths: dict[str, Path | None], vis_angles: bool, lift_filtered: bool, *, filter: str, order: int, cutoff: float,
    max_gap: int, neutral: str | None, marker_names: str,
) -> SpineRequest:  # fmt: skip
    """The spine / biomechanics outputs (``paths``: csv, plot, trc, c3d, mot, report) and their processing."""
    from ..pipeline.spine_outputs import SpineRequest  # lazy, as above
    from ..spine.options import spine_options

    processing = spine_options(filter, order, cutoff, max_gap, neutral, marker_names)
    return SpineRequest(**paths, vis_angles=vis_angles, lift_filtered=lift_filtered, **processing)

"""``Pipeline``: detector -> pose -> (lifter) over three backend Sessions, one frame or a whole video.

A short composition of the stage objects (``stages.Detector``, ``PoseEstimator``, ``Lifter``: how each graph
is fed and decoded) and the tracking / world-frame maths of ``ops``. Per frame: detect (or take the caller's
boxes) -> all person crops in ONE batched pose run -> SimCC decode -> optional lifting in one batched lifter
run. ``track`` adds IoU track ids, One-Euro smoothing of the 2D keypoints and a world frame estimated over
warm-up frames.

``seed_compat=True`` reproduces upstream SpinePose 2.1.0: BGR fed to the pose network and RF-DETR,
detections kept in the detector's order, camera intrinsics and metric scale kept from the first call
(upstream's estimator is stateful), at most 10 people per frame in ``track``. Without it the defaults
fix those quirks: RGB as the networks were trained, people ordered by detector score (so person 0,
which sets the metric scale and the world frame, is the most confident one) and every ``__call__``
independent of the previous one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Session
from ..bundle.bundle import Bundle
from ..errors import InvalidOptionError, UserError
from ..ops import detector as det
from ..ops import lifter as lift_ops
from ..ops.calibration import Calibration, read_calibration
from ..ops.image import as_bgr
from ..ops.tracking import IOU_THR, MIN_AREA, IouTracker, KeypointSmoother, pose_to_bbox
from ..ops.world import DEFAULT_WARMUP, LIFTED_FOOT_ERROR_M, Vertical, WorldFrame, WorldTransform
from ..stages import Detector, GraphInfo, Lifter, PoseEstimator
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, ROLES, ModelSpec, resolve_mode
from .detect_policy import CARRY_EXPANSION, DEFAULT_DET_EVERY, DetectionPolicy, DetectionSchedule, check_det_every
from .load import BundleRecipe, Loaded, load_auto, load_bundle
from .overlap import ahead
from .result import PoseResult

log = logging.getLogger(__name__)

UPSTREAM_MAX_DETECTIONS = 10  # upstream PoseTracker's max_detections
TRACK_LIFT_THR = 0.3  # upstream PoseTracker passes its IoU tracking_thr (0.3) as the lifting threshold


@dataclass(frozen=True)
class PipelineOptions:
    """Everything that changes what the pipeline computes. Checked once, when constructed.

    Attributes:
        seed_compat: reproduce upstream SpinePose 2.1.0 exactly (see the module docstring).
        lift: run the lifter: ``keypoints_3d`` in camera space (and world space in ``track``).
        det_score_thr: keep detections scoring above this (upstream 0.3).
        max_people: keep at most this many detections per frame (highest scores first); None: all.
        intrinsics: camera matrix K (3x3) for lifting; None: from ``fov`` and the frame size.
        fov: diagonal field of view in degrees used when ``intrinsics`` is None (upstream 84).
        subject_height: height in metres of person 0, which sets the metric scale (upstream 1.84).
        metric_scale: estimate the metric scale (else model units).
        lift_thr: keypoints scoring below this are hidden from the lifter; None: upstream's 0.5 per
            image and 0.3 in ``track``.
        keep_camera_orientation: ``track``'s world space keeps the camera's orientation, made y-up (upstream
            --no-camera-pose; under seed_compat upstream's y-down frame, which spine angles refuse).
        ground_plane: look for the floor under the feet (default); False: the level-camera prior (under
            seed_compat upstream's mirror image, which spine angles refuse).
        camera_pitch: the camera's pitch in degrees (looking down +): with ``camera_roll``, the world vertical.
        camera_roll: the camera's roll in degrees (the vertical leans clockwise on screen +); 0 when only the
            pitch is given.
        calibration: a Pose2Sim / Sports2D calibration TOML: the camera's intrinsics (scaled to the frame) and
            vertical; ``calibration_camera`` picks a camera of a multi-camera file.
        warmup_frames: frames averaged for the world frame (upstream 30).
        smoothing: One-Euro smoothing of 2D keypoints in ``track``.
        tracking_iou: IoU above which a pose continues a track (upstream 0.3).
        max_age: frames a missed track survives (0: upstream, ends at once).
        det_every: ``track`` runs the detector every N frames and carries boxes from the keypoints in between
            (``detect_policy``); None: 1 under seed_compat (upstream's default), else ``DEFAULT_DET_EVERY``.
        det_adaptive: also re-detect at once on a lost track, a low pose score, a box at the frame edge, an
            empty scene or a scene cut (never under seed_compat: upstream has a fixed interval).
        overlap: ``track`` decodes and detects the next frame on a worker thread while this one runs pose.
    """

    seed_compat: bool = False
    lift: bool = False
    det_score_thr: float = 0.3
    max_people: int | None = None
    intrinsics: tuple[tuple[float, float, float], ...] | None = None
    fov: float = lift_ops.DEFAULT_DFOV
    subject_height: float = lift_ops.DEFAULT_HEIGHT
    metric_scale: bool = True
    lift_thr: float | None = None
    keep_camera_orientation: bool = False
    ground_plane: bool = True
    warmup_frames: int = DEFAULT_WARMUP
    camera_pitch: float | None = None
    camera_roll: float | None = None
    calibration: str | None = None
    calibration_camera: str | None = None
    smoothing: bool = True
    tracking_iou: float = IOU_THR
    max_age: int = 0
    det_every: int | None = None
    det_adaptive: bool = True
    overlap: bool = True

    def __post_init__(self) -> None:
        if self.det_every is not None:
            object.__setattr__(self, "det_every", check_det_every(self.det_every))
        if self.intrinsics is not None:
            k = np.asarray(self.intrinsics, dtype=np.float64)
            if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
                raise InvalidOptionError(f"intrinsics: got {k.tolist()}, expected a 3x3 camera matrix with fx, fy > 0")
            object.__setattr__(self, "intrinsics", tuple(tuple(float(v) for v in row) for row in k))
        if not 0.0 <= self.det_score_thr < 1.0:
            raise InvalidOptionError(f"det_score_thr: {self.det_score_thr}, expected 0 <= value < 1")
        if self.max_people is not None and self.max_people < 1:
            raise InvalidOptionError(f"--max-people: {self.max_people}, expected a positive integer")
        if not 0.0 < self.fov < 180.0:
            raise InvalidOptionError(f"--fov: {self.fov} degrees, expected 0 < fov < 180")
        if not self.subject_height > 0:
            raise InvalidOptionError(f"--subject-height: {self.subject_height} m, expected > 0")
        if self.lift_thr is not None and not 0.0 <= self.lift_thr <= 1.0:
            raise InvalidOptionError(f"lift_thr: {self.lift_thr}, expected 0 <= value <= 1")
        for name, value, limit in (("--camera-pitch", self.camera_pitch, 90.0),
                                   ("--camera-roll", self.camera_roll, 90.0)):
            if value is not None and not (np.isfinite(value) and -limit <= value <= limit):
                raise InvalidOptionError(f"{name}: {value} degrees, expected -{limit:g} <= value <= {limit:g}")
        if self.calibration is not None:
            if self.camera_pitch is not None or self.camera_roll is not None:
                raise InvalidOptionError("--calibration gives the orientation: drop --camera-pitch/--camera-roll")
            if self.intrinsics is not None:
                raise InvalidOptionError("--calibration gives the intrinsics: drop intrinsics")
            self.camera_calibration()  # a bad file is refused now, in one line
        if self.warmup_frames < 1:
            raise InvalidOptionError(f"warmup_frames: {self.warmup_frames}, expected >= 1")
        if not 0.0 <= self.tracking_iou <= 1.0 or self.max_age < 0:
            raise InvalidOptionError(f"tracking_iou {self.tracking_iou} / max_age {self.max_age} out of range")

    def camera_calibration(self) -> Calibration | None:
        """The calibration file's camera, or None."""
        return None if self.calibration is None else read_calibration(self.calibration, self.calibration_camera)

    def known_vertical(self) -> Vertical | None:
        """The vertical the user gave (calibration, or camera pitch/roll), or None: estimated from evidence."""
        calibration = self.camera_calibration()
        if calibration is not None:
            return calibration.vertical
        if self.camera_pitch is None and self.camera_roll is None:
            return None
        return Vertical.from_pitch_roll(self.camera_pitch or 0.0, self.camera_roll or 0.0)

    def detection_policy(self) -> DetectionPolicy:
        """The detection interval ``track`` follows (see ``det_every``)."""
        every = self.det_every or (1 if self.seed_compat else DEFAULT_DET_EVERY)
        return DetectionPolicy(every, adaptive=self.det_adaptive and not self.seed_compat)

    @classmethod
    def build(cls, options: PipelineOptions | None = None, **overrides: Any) -> PipelineOptions:
        """``options`` with ``overrides`` applied; an unknown name raises, listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            listed = ", ".join(sorted(known))
            raise InvalidOptionError(f"Pipeline options: unknown {', '.join(unknown)} (known: {listed})")
        return replace(options or cls(), **overrides)


@dataclass
class _LiftState:
    """Per-stream lifting state: intrinsics for the frame size and the metric scale (set once)."""

    intrinsics: np.ndarray | None = None
    size: tuple[int, int] | None = None
    scale: float | None = None


class Pipeline:
    """Detector + pose (+ lifter) Sessions composed into ``pipeline(image) -> PoseResult``.

    Args:
        detector: detector Session, or None when boxes are always given.
        pose: pose Session (SimCC outputs).
        lifter: lifter Session, needed when ``lift`` is on.
        graphs: role -> GraphInfo (or ModelSpec) telling how to feed and decode each Session.
        options: a PipelineOptions; keyword ``overrides`` (its field names) are applied on top.
        standin: results are marked as stand-in; None: when any graph is a stand-in.
    """

    def __init__(
        self,
        detector: Session | None,
        pose: Session,
        lifter: Session | None = None,
        *,
        graphs: Mapping[str, GraphInfo | ModelSpec],
        options: PipelineOptions | None = None,
        standin: bool | None = None,
        **overrides: Any,
    ) -> None:
        self.options = PipelineOptions.build(options, **overrides)
        self._calibration = self.options.camera_calibration()
        # a vertical the user gave lets the lifter see every camera as a level one (``ops.lifter.level_feed``);
        # taken from the calibration just read rather than through known_vertical(), which reads the file again
        known = self._calibration.vertical if self._calibration is not None else self.options.known_vertical()
        self._to_level = None if known is None or self.options.seed_compat else lift_ops.gravity_rotation(known.up)
        self._still_warned = False
        self.sessions: dict[str, Session | None] = {"detector": detector, "pose": pose, "lifter": lifter}
        self.graphs = {role: g if isinstance(g, GraphInfo) else GraphInfo.from_spec(g) for role, g in graphs.items()}
        needed = [r for r in ROLES if self.sessions[r] is not None and r not in self.graphs]
        if needed:
            raise InvalidOptionError(f"graphs: no GraphInfo/ModelSpec for {', '.join(needed)}")
        if pose is None:
            raise InvalidOptionError("pose: a pose Session is required")
        if self.options.lift and lifter is None:
            raise InvalidOptionError("lift: lifting needs a lifter Session (the bundle or call has none)")
        self.standin = any(g.standin for g in self.graphs.values()) if standin is None else bool(standin)
        compat = self.options.seed_compat
        self.detector = Detector.on(detector, self.graphs["detector"], seed_compat=compat) if detector else None
        self.pose = PoseEstimator.on(pose, self.graphs["pose"], seed_compat=compat)
        self.lifter = Lifter.on(lifter, self.graphs["lifter"]) if lifter is not None else None
        self._compat_state = _LiftState()  # seed_compat: upstream keeps K and the scale across calls
        self.auto_choice = ""  # from_zoo(backend="auto"): what it picked per role
        self._detector_lock = threading.Lock()  # track() may detect ahead on a worker thread; a Session is not
        # thread-safe on every backend (OpenVINO reuses one infer request)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bundle(
        cls,
        path: str | Path,
        backend: str = "auto",
        *,
        device: str | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> Pipeline:
        """Load a bundle (hashes verified). ``backend`` must be "auto" or the bundle's own backend.

        ``threads`` caps each session's CPU threads (e.g. one per Ray actor CPU); None lets the runtime decide.
        """
        opts = PipelineOptions.build(**options)
        loaded = Loaded()
        with loaded.closing_on_error():
            load_bundle(loaded, Bundle.load(path), backend, _roles(opts), device, threads)
            return cls._from_loaded(loaded, opts)

    @classmethod
    def from_zoo(
        cls,
        mode: str = DEFAULT_MODE,
        detector: str = DEFAULT_DETECTOR,
        model_version: str = DEFAULT_VERSION,
        backend: str = "auto",
        precision: str | None = None,
        weights: str = "auto",
        *,
        device: str | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> Pipeline:
        """Export (once, cached under ``cache_subdir("bundles")``) and load the graphs of a mode.

        ``backend="auto"`` (the default) takes each role's (backend, precision) from the bench's measured
        selection, probed briefly on first use and cached (``select.auto``); roles may then come from
        different bundles, and ``auto_choice`` says what was picked (logged once per process).
        ``precision`` None means fp32 for a named backend and the selection's choice for "auto" (a given
        precision overrides it). ``backend="onnxruntime", precision="fp32"`` is the strict reference.
        """
        opts = PipelineOptions.build(**options)
        selection = resolve_mode(mode, detector, model_version)
        roles = _roles(opts)
        # a named backend exports all three graphs, so lifting on/off share one cached bundle
        recipe = BundleRecipe(backend, precision or "fp32", weights, ROLES, mode, detector, model_version)
        loaded = Loaded()
        with loaded.closing_on_error():
            if backend == "auto":
                load_auto(loaded, selection, recipe, roles, precision, device, threads)
                pipeline = cls._from_loaded(loaded, opts)
                pipeline.auto_choice = ", ".join(f"{role} {label}" for role, label in loaded.picked.items())
                if pipeline.auto_choice not in _ANNOUNCED:
                    _ANNOUNCED.add(pipeline.auto_choice)
                    log.info("backend auto picked %s; backend='onnxruntime', precision='fp32' is the strict "
                             "reference", pipeline.auto_choice)  # fmt: skip
                return pipeline
            load_bundle(loaded, recipe.bundle(), backend, roles, device, threads)
            return cls._from_loaded(loaded, opts)

    @classmethod
    def _from_loaded(cls, loaded: Loaded, options: PipelineOptions) -> Pipeline:
        s = loaded.sessions
        return cls(s.get("detector"), s["pose"], s.get("lifter"), graphs=loaded.graphs, options=options)

    # ------------------------------------------------------------------ one frame
    def __call__(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        *,
        detections: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PoseResult:
        """People in one BGR frame. Given ``boxes`` ``(N, 4)`` xyxy skip the detector; ``detections`` is what
        ``detect(image)`` returned (e.g. run ahead on another thread), used as if detected here."""
        state = self._compat_state if self.options.seed_compat else _LiftState()
        lift_thr = lift_ops.LIFTING_THR if self.options.lift_thr is None else self.options.lift_thr
        return self._frame(as_bgr(image), boxes, state, lift_thr, self.options.max_people, detections=detections)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes ``(N, 4)`` and scores ``(N,)`` in image pixels (score order unless seed_compat)."""
        if self.detector is None:
            raise InvalidOptionError("boxes: this pipeline has no detector; pass boxes=(N, 4) x1, y1, x2, y2")
        with self._detector_lock:  # track() may detect one frame ahead on a worker thread
            return self.detector(as_bgr(image), self.options.det_score_thr)

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints ``(N, 37, 2)`` and scores ``(N, 37)`` for ``boxes`` ``(N, 4)``: one batched pose run."""
        return self.pose(image, boxes)

    def lift(
        self,
        keypoints: np.ndarray,
        scores: np.ndarray,
        image_hw: tuple[int, int],
        *,
        thr: float | None = None,
        state: _LiftState | None = None,
    ) -> np.ndarray:
        """Camera-space 3D ``(N, 37, 3)`` for 2D keypoints ``(N, 37, 2)`` of a frame of ``image_hw``."""
        lifter = self.lifter
        if lifter is None:
            raise InvalidOptionError("lift: this pipeline has no lifter Session")
        if len(keypoints) == 0:
            return lifter.empty()
        state = state or _LiftState()
        k = self._intrinsics(state, image_hw)
        thr = lift_ops.LIFTING_THR if thr is None else thr
        feed, visible = lifter.preprocess(keypoints, scores, k, thr, to_level=self._to_level)
        raw = lifter.raw(lifter.run(feed))
        if state.scale is None:
            metric = self.options.metric_scale
            state.scale = lifter.metric_scale(raw, self.options.subject_height) if metric else 1.0
        return lifter.postprocess(raw, feed, visible, state.scale, to_level=self._to_level)

    def to_world(self, result: PoseResult) -> PoseResult:
        """World-space 3D from this frame alone (upstream's single-image inference: one warm-up frame)."""
        if result.keypoints_3d is None:
            raise InvalidOptionError("to_world: the result has no 3D keypoints (construct the pipeline with lift=True)")
        world = self._world_transform(warmup=1)
        if isinstance(world, WorldFrame):  # one image: the level-camera warning once per pipeline, not per image
            world.warn, self._still_warned = not self._still_warned, True
        world_3d = world.step(result.keypoints_3d, result.scores)
        return replace(result, keypoints_3d_world=world_3d, vertical=world.vertical)

    def relift(self, keypoints: np.ndarray, scores: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """World-space 3D ``(T, 37, 3)`` of one person's 2D over ``T`` consecutive frames (``(T, 37, 2)``,
        ``(T, 37)``), lifted and put in the world as ``track`` does: ``infer --lift-filtered`` feeds it the
        offline-filtered 2D of a track. One frame per lifter run, so any batch profile of a bundle takes it."""
        opts = self.options
        state = _LiftState()
        world = self._world_transform(warmup=opts.warmup_frames)
        lift_thr = TRACK_LIFT_THR if opts.lift_thr is None else opts.lift_thr
        out = np.zeros(np.shape(keypoints)[:2] + (3,), np.float32)
        for t in range(len(out)):
            camera = self.lift(keypoints[t : t + 1], scores[t : t + 1], image_hw, thr=lift_thr, state=state)
            out[t] = world.step(camera, scores[t : t + 1])[0]
        return out

    # ------------------------------------------------------------------ video
    def track(
        self,
        frames: Iterable[np.ndarray],
        boxes: Iterable[np.ndarray | None] | None = None,
        *,
        fps: float = 30.0,
    ) -> Iterator[PoseResult]:
        """Results for consecutive frames with track ids, smoothed 2D and (when lifting) world-space 3D.

        ``boxes`` optionally gives each frame's boxes (None for a frame: the detection policy decides,
        ``PipelineOptions.det_every``). ``fps`` is the One-Euro filter's frame rate. State lives in this
        generator: two ``track`` calls are independent. With ``overlap`` the next frame is decoded (and, when
        due, detected) on a worker thread while this one runs pose; results come out in frame order.
        """
        opts = self.options
        chain = TrackChain(self)
        finish = StreamFinish(opts, fps)
        schedule = chain.schedule
        box_iter = iter(boxes) if boxes is not None else None

        def prepare(item: tuple[int, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray | None, Any]:
            """Decode-side work, one frame ahead when overlapping: the caller's boxes, else a due detection."""
            index, frame = item
            image = as_bgr(frame, f"frame {index}")
            given = None
            if box_iter is not None:
                given = next(box_iter, _MISSING)
                if given is _MISSING:
                    raise UserError(f"boxes: ran out at frame {index}; give one entry (or None) per frame")
            due = given is None and schedule is not None and schedule.policy.due(index)
            return index, image, given, self.detect(image) if due else None

        stream = ahead(prepare, enumerate(frames)) if opts.overlap else map(prepare, enumerate(frames))
        try:
            for index, image, given, detected in stream:
                result, ids = chain.step(self, index, image, given, detected)
                yield finish(result, ids, scene_cut=chain.reason == "scene cut")
        finally:
            if opts.overlap:
                stream.close()

    def chain(self, scale: float | None = None) -> TrackChain:
        """A fresh ``track`` chain (for running a video in segments: ``scale.segments``); ``scale`` presets the
        metric scale that a whole-video run takes from its first frame with people."""
        return TrackChain(self, scale)

    # ------------------------------------------------------------------ internals
    def _frame(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None,
        state: _LiftState,
        lift_thr: float,
        limit: int | None,
        detections: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PoseResult:
        if boxes is None:
            boxes, box_scores = detections if detections is not None else self.detect(image)
            if limit is not None:
                boxes, box_scores = boxes[:limit], box_scores[:limit]
        else:
            boxes = _check_boxes(boxes)
            box_scores = np.ones(len(boxes), np.float32)
        if len(boxes) == 0:
            return PoseResult.empty(lift=self.options.lift, standin=self.standin)
        keypoints, scores = self.estimate(image, boxes)
        keypoints_3d = None
        if self.options.lift:
            keypoints_3d = self.lift(keypoints, scores, image.shape[:2], thr=lift_thr, state=state)
        return PoseResult(
            boxes=boxes.astype(np.float32),
            box_scores=box_scores.astype(np.float32),
            keypoints=np.asarray(keypoints, np.float32),
            scores=np.asarray(scores, np.float32),
            keypoints_3d=None if keypoints_3d is None else np.asarray(keypoints_3d, np.float32),
            standin=self.standin,
        )

    def _intrinsics(self, state: _LiftState, image_hw: tuple[int, int]) -> np.ndarray:
        if self.options.intrinsics is not None:
            return np.asarray(self.options.intrinsics, dtype=np.float32)
        height, width = int(image_hw[0]), int(image_hw[1])
        if self._calibration is not None:  # the calibrated camera replaces the field-of-view guess
            return self._calibration.intrinsics_for(width, height).astype(np.float32)
        # seed_compat: upstream estimates K once, from the first frame's size, and keeps it
        stale = state.size != (height, width) and not (self.options.seed_compat and state.intrinsics is not None)
        if state.intrinsics is None or stale:
            state.intrinsics = lift_ops.estimate_intrinsics(width, height, dfov=self.options.fov)
            state.size = (height, width)
        return state.intrinsics

    def _world_transform(self, warmup: int, fps: float = 30.0) -> WorldTransform | WorldFrame:
        return world_transform(self.options, warmup, fps)

    def describe(self) -> dict[str, str]:
        """role -> "model backend/device/precision" for the loaded Sessions."""
        return {
            role: f"{self.graphs[role].model} {s.backend}/{s.device}/{s.precision}"
            for role, s in self.sessions.items()
            if s is not None
        }

    def close(self) -> None:
        """Release every Session. Safe to call twice."""
        for session in self.sessions.values():
            if session is not None:
                session.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        parts = ", ".join(f"{r}={d}" for r, d in self.describe().items())
        return f"<Pipeline {parts}{' STAND-IN' if self.standin else ''}>"


class TrackChain:
    """The per-stream state of ``track`` that decides what each next frame computes: the detection schedule,
    the IoU tracker whose matches say which poses carry their boxes forward, and the lifting state (intrinsics,
    metric scale). Holds no Session (picklable); ``step`` runs one frame on a pipeline.

    ``digest`` hashes that state with track ids left out (they only name the tracks): two chains with equal
    digests compute the same raw results from the same next frames, which is how a video run in segments
    proves each segment continues exactly where the previous one ended.
    """

    def __init__(self, pipeline: Pipeline, scale: float | None = None) -> None:
        opts = pipeline.options
        self.tracker = make_tracker(opts)
        self.state = _LiftState(scale=scale)
        self.lift_thr = TRACK_LIFT_THR if opts.lift_thr is None else opts.lift_thr
        self.limit = opts.max_people or (UPSTREAM_MAX_DETECTIONS if opts.seed_compat else None)
        has_detector = pipeline.sessions["detector"] is not None
        self.schedule = DetectionSchedule(opts.detection_policy()) if has_detector else None
        self.reason: str | None = None  # why the last frame was detected ("scene cut", ...), None: boxes carried

    def step(
        self, pipeline: Pipeline, index: int, image: np.ndarray, given: np.ndarray | None = None, detected: Any = None
    ) -> tuple[PoseResult, np.ndarray]:
        """Frame ``index`` (BGR): raw result (keypoints unsmoothed, camera-space 3D) and its track ids."""
        opts, schedule, tracker = pipeline.options, self.schedule, self.tracker
        reason: str | None = "given"
        if given is not None or schedule is None:
            result = pipeline._frame(image, given, self.state, self.lift_thr, self.limit)
        else:
            reason = schedule.decide(index, image)
            if reason is not None and detected is None:  # an adaptive trigger (or no detection ahead): detect now
                detected = pipeline.detect(image)
            if reason is None:
                carried = schedule.carried
                detected = (carried.boxes, carried.box_scores)
            result = pipeline._frame(image, None, self.state, self.lift_thr, self.limit, detections=detected)
        key_boxes = pose_to_bbox(result.keypoints)
        first_new_id = tracker.next_id
        ids = tracker.update(key_boxes)  # from unsmoothed keypoints, as upstream
        if schedule is not None:
            tracked = ids >= 0
            # a pose cropped from a carried box that does not continue its track has drifted off it
            lost = given is None and reason is None and bool(((ids < 0) | (ids >= first_new_id)).any())
            carry = key_boxes if opts.seed_compat else pose_to_bbox(result.keypoints, CARRY_EXPANSION)
            schedule.observe(carry[tracked], result.box_scores[tracked], result.scores[tracked], lost)
        self.reason = reason
        return result, ids

    def digest(self) -> str:
        """sha256 of everything that decides the next frames' raw results (track ids excluded)."""
        h = hashlib.sha256()
        for box, age in self.tracker.live():
            h.update(np.asarray(box, np.float32).tobytes() + str(age).encode())
        schedule = self.schedule
        if schedule is not None:
            c = schedule.carried
            for array in (c.boxes, c.box_scores, c.keypoint_scores, schedule.previous_thumbnail()):
                h.update(b"|" + (b"-" if array is None else np.ascontiguousarray(array).tobytes()))
            h.update(repr((c.lost, schedule.frames_since_detection(), schedule.started)).encode())
        h.update(repr((self.state.scale, self.state.size)).encode())
        return h.hexdigest()


class StreamFinish:
    """What ``track`` does to each frame after its chain: One-Euro smoothing of the 2D keypoints per track and
    the world frame (the vertical from evidence, ``ops.world.WorldFrame``; upstream's under seed_compat).
    Sequential and cheap: a video run in segments replays it over the stitched raw results."""

    def __init__(self, options: PipelineOptions, fps: float) -> None:
        self.smoother = KeypointSmoother(freq=fps) if options.smoothing else None
        self.world = world_transform(options, options.warmup_frames, fps) if options.lift else None

    def __call__(self, result: PoseResult, ids: np.ndarray, scene_cut: bool = False) -> PoseResult:
        keypoints = result.keypoints
        if self.smoother is not None:
            keypoints = self.smoother(keypoints, ids).astype(np.float32)
        world_3d = vertical = None
        if self.world is not None:
            if scene_cut and isinstance(self.world, WorldFrame):
                self.world.reset()  # the camera may have moved: the floor evidence so far no longer holds
            world_3d = self.world.step(result.keypoints_3d, result.scores)
            vertical = self.world.vertical
        return replace(result, keypoints=keypoints, track_ids=ids, keypoints_3d_world=world_3d, vertical=vertical)


def make_tracker(options: PipelineOptions) -> IouTracker:
    """The IoU tracker ``track`` uses for ``options``."""
    return IouTracker(options.tracking_iou, MIN_AREA, options.max_age)


def world_transform(options: PipelineOptions, warmup: int, fps: float = 30.0) -> WorldTransform | WorldFrame:
    """Camera -> world for ``options``: the vertical the user gave, else the floor, else a level camera
    (``WorldFrame``); under seed_compat upstream's estimate (``warmup`` frames averaged), options and all."""
    if options.seed_compat:
        return WorldTransform(
            keep_camera_orientation=options.keep_camera_orientation, ground_plane=options.ground_plane,
            warmup_frames=warmup,
        )  # fmt: skip
    floor = options.ground_plane and not options.keep_camera_orientation
    # the 3D comes from the lifter: its feet carry an error the floor fit's residual cannot see
    return WorldFrame(options.known_vertical(), floor=floor, fps=fps, point_error_m=LIFTED_FOOT_ERROR_M)


_MISSING = object()
_ANNOUNCED: set[str] = set()  # auto choices already logged in this process


def _roles(options: PipelineOptions) -> tuple[str, ...]:
    return ROLES if options.lift else ("detector", "pose")


def _check_boxes(boxes: np.ndarray) -> np.ndarray:
    """Caller's boxes -> ``(N, 4)`` float32 with ordered corners; empty or non-finite boxes raise."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.ndim == 1 and array.size == 4:
        array = array[None]
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise UserError(f"boxes: shape {array.shape}, expected (N, 4) x1, y1, x2, y2")
    ordered, keep = det.sanitize_boxes(array)
    if not keep.all():
        bad = array[~keep][0].tolist()
        raise UserError(f"boxes: {bad} is empty or not finite; expected x1, y1, x2, y2 with a side >= 1 px")
    return ordered


__all__ = ["GraphInfo", "Pipeline", "PipelineOptions", "PoseResult"]

"""Camera space -> world space for lifted poses: :class:`WorldFrame` (the default: the vertical from evidence,
with its source on record) and :class:`WorldTransform` (upstream ``camera_transforms.py`` + ``PoseTracker``,
kept for ``seed_compat``). What follows describes upstream's.

World frame: y is up (from the body and the plane under the supporting foot), the origin lies on the
ground below the first subject's hip, x follows the camera's x projected onto the ground. The estimate is
averaged over the first ``warmup_frames`` frames that contain a person and then frozen.

Options (upstream names in brackets): ``keep_camera_orientation`` [estimate_camera_pose=False] uses camera
coordinates unchanged; ``ground_plane=False`` [estimate_ground_plane=False] only flips y to point up and
puts the origin under the first subject, from that single frame.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .skeleton import KEYPOINT_INDEX, ROOT_ID

log = logging.getLogger(__name__)

VIS_THR = 0.3
GROUND_CLEARANCE = 0.02
SUPPORT_FOOT_HEIGHT_TOL = 0.12
PLANE_RESIDUAL_TOL = 0.04
GROUND_HEIGHT_QUANTILE = 0.25
VISIBLE_HEIGHT_QUANTILE = 0.1
DEFAULT_WARMUP = 30

_I = KEYPOINT_INDEX
LEFT_FOOT = np.array([_I["left_big_toe"], _I["left_small_toe"], _I["left_heel"]], dtype=np.int64)
RIGHT_FOOT = np.array([_I["right_big_toe"], _I["right_small_toe"], _I["right_heel"]], dtype=np.int64)
FOOT_IDS = np.array(
    [
        _I[n]
        for n in (
            "left_big_toe",
            "right_big_toe",
            "left_small_toe",
            "right_small_toe",
            "left_heel",
            "right_heel",
        )
    ],
    dtype=np.int64,
)
# (lower, upper) joints whose direction votes for "up"
UP_SEGMENTS = tuple(
    (_I[a], _I[b])
    for a, b in (
        ("hip", "neck"), ("hip", "head"), ("left_hip", "hip"), ("left_knee", "left_hip"),
        ("left_ankle", "left_knee"), ("right_hip", "hip"), ("right_knee", "right_hip"),
        ("right_ankle", "right_knee"),
    )
)  # fmt: skip



def projection(intrinsics: np.ndarray | None, camera_to_world: np.ndarray) -> np.ndarray | None:
    """(3, 4) projection of world points to pixels for a camera pose ``(4, 4)``, or None without intrinsics."""
    if intrinsics is None:
        return None
    r_wc = camera_to_world[:3, :3].T
    t_wc = -r_wc @ camera_to_world[:3, 3]
    return (intrinsics @ np.concatenate([r_wc, t_wc[:, None]], axis=1)).astype(np.float32)

class DegeneratePoseError(ValueError):
    """A direction needed for the camera pose has (near) zero length."""


def _unit(v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if not norm >= eps:  # also catches NaN
        raise DegeneratePoseError("cannot normalise a near-zero vector")
    return v / norm


@dataclass(frozen=True)
class CameraPose:
    """One frame's estimate. Vectors are in camera coordinates."""

    transform: np.ndarray  # (4, 4) camera -> world
    up_axis: np.ndarray  # (3,)
    world_origin: np.ndarray  # (3,)
    ground_point: np.ndarray  # (3,)
    confidence: float  # weight of the foot plane in the up axis, 0..0.85


def body_up_axis(points: np.ndarray, scores: np.ndarray, thr: float = VIS_THR) -> np.ndarray:
    """Up (3,) from visible leg/trunk segments weighted by score x length; else hip->head; else -y."""
    vectors, weights = [], []
    for lo, hi in UP_SEGMENTS:
        s_lo, s_hi = float(scores[lo]), float(scores[hi])
        if s_lo < thr or s_hi < thr:
            continue
        seg = np.asarray(points[hi] - points[lo], dtype=np.float32)
        length = float(np.linalg.norm(seg))
        if length < 1e-4:
            continue
        vectors.append(seg / length)
        weights.append(max(1e-3, 0.5 * (s_lo + s_hi) * length))
    if vectors:
        w = np.asarray(weights, dtype=np.float32)
        return _unit(np.sum(np.stack(vectors) * w[:, None], axis=0))
    fallback = np.asarray(points[_I["head"]] - points[ROOT_ID], dtype=np.float32)
    if float(np.linalg.norm(fallback)) >= 1e-4:
        return _unit(fallback)
    return np.array([0.0, -1.0, 0.0], dtype=np.float32)


def support_joint_ids(points: np.ndarray, scores: np.ndarray, up: np.ndarray, thr: float = VIS_THR) -> np.ndarray:
    """Foot joints likely on the ground: visible joints of the lowest foot and any foot within 12 cm of it."""
    visible_feet = FOOT_IDS[scores[FOOT_IDS] >= thr]
    if len(visible_feet) < 3:
        return visible_feet
    root = np.asarray(points[ROOT_ID], dtype=np.float32)
    groups = []
    for foot in (LEFT_FOOT, RIGHT_FOOT):
        vis = scores[foot] >= thr
        if np.count_nonzero(vis) < 2:
            continue
        heights = (np.asarray(points[foot[vis]], dtype=np.float32) - root) @ up
        groups.append((float(np.median(heights)), foot[vis]))
    if not groups:
        return visible_feet
    lowest = min(h for h, _ in groups)
    chosen = np.concatenate([ids for h, ids in groups if h <= lowest + SUPPORT_FOOT_HEIGHT_TOL]).astype(np.int64)
    return chosen if len(chosen) >= 3 else visible_feet


def camera_to_world(up: np.ndarray, origin: np.ndarray, ground_plane: bool = True) -> np.ndarray:
    """(4, 4) transform: world y = ``up`` (only y flipped when not ``ground_plane``), origin at ``origin``."""
    if ground_plane:
        cam_x = np.array([1.0, 0.0, 0.0], dtype=np.float32)
        x_axis = cam_x - float(np.dot(cam_x, up)) * up
        if float(np.linalg.norm(x_axis)) < 1e-4:
            x_axis = np.cross(np.array([0.0, 0.0, 1.0], dtype=np.float32), up)
        x_axis = _unit(x_axis)
        z_axis = _unit(np.cross(x_axis, up))
        rot = np.stack([x_axis, up, z_axis]).astype(np.float32)
    else:
        rot = np.diag([1.0, -1.0, 1.0]).astype(np.float32)
    out = np.eye(4, dtype=np.float32)
    out[:3, :3] = rot
    out[:3, 3] = -(origin @ rot.T).astype(np.float32)
    return out


def _support_plane(points: np.ndarray, scores: np.ndarray):
    """(support points, centroid, plane normal, body up, residuals) from the supporting foot joints."""
    up = body_up_axis(points, scores)
    ids = support_joint_ids(points, scores, up)
    if len(ids) < 3:
        ids = FOOT_IDS[scores[FOOT_IDS] >= VIS_THR]
    if len(ids) < 3:
        root = np.asarray(points[ROOT_ID], dtype=np.float32)
        return root[None], root, up, up, np.zeros(1, dtype=np.float32)
    pts = np.asarray(points[ids], dtype=np.float32)
    w = np.clip(np.asarray(scores[ids], dtype=np.float32), 1e-3, None)
    w /= w.sum()
    centroid = np.sum(pts * w[:, None], axis=0)
    _, _, vh = np.linalg.svd((pts - centroid) * np.sqrt(w)[:, None], full_matrices=False)
    normal = _unit(vh[-1])
    if float(np.dot(up, normal)) < 0.0:
        normal = -normal
    if float(np.dot(np.asarray(points[ROOT_ID], dtype=np.float32) - centroid, normal)) < 0.0:
        normal = -normal
    return pts, centroid, normal, up, np.abs((pts - centroid) @ normal)


def _up_axis(points: np.ndarray, scores: np.ndarray):
    """Blend of body up and foot-plane normal, weighted by how flat and well supported the plane is."""
    pts, centroid, normal, body_up, residuals = _support_plane(points, scores)
    feet_seen = sum(int(np.any(scores[f] >= VIS_THR)) for f in (LEFT_FOOT, RIGHT_FOOT))
    weight = float(np.clip(1.0 - float(np.mean(residuals)) / PLANE_RESIDUAL_TOL, 0.0, 1.0))
    if feet_seen < 2:
        weight *= 0.45
    if len(pts) < 4:
        weight *= 0.7
    weight *= float(np.clip(0.5 + 0.5 * abs(float(np.dot(normal, body_up))), 0.0, 1.0))
    weight = float(np.clip(weight, 0.0, 0.85))
    up = body_up if weight <= 1e-3 else _unit((1.0 - weight) * body_up + weight * normal)
    return up, pts, centroid, weight


def estimate_camera_pose(points: np.ndarray, scores: np.ndarray, ground_plane: bool = True) -> CameraPose:
    """Camera pose from one lifted subject: ``points`` (K, 3) camera space, ``scores`` (K,).

    Raises DegeneratePoseError when the pose has no usable direction (e.g. all points equal).
    """
    points = np.asarray(points, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    up, support, centroid, confidence = _up_axis(points, scores)
    heights = (support - centroid) @ up
    ground = centroid - (GROUND_CLEARANCE - float(np.quantile(heights, GROUND_HEIGHT_QUANTILE))) * up
    root = points[ROOT_ID]
    origin = root - float(np.dot(root - ground, up)) * up
    visible = points[scores >= VIS_THR]
    if len(visible) == 0:
        visible = points
    lowest = float(np.quantile((visible - origin[None]) @ up, VISIBLE_HEIGHT_QUANTILE))
    if lowest < 0.0:  # keep most visible joints above the ground
        origin = origin + lowest * up
        ground = ground + lowest * up
    return CameraPose(
        transform=camera_to_world(up, origin, ground_plane),
        up_axis=up,
        world_origin=origin.astype(np.float32),
        ground_point=ground.astype(np.float32),
        confidence=confidence,
    )


def cam_to_world(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) camera->world transform to points ``(..., 3)``."""
    return np.asarray(points, dtype=np.float32) @ transform[:3, :3].T + transform[:3, 3]


def world_to_image(points: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Project world points ``(..., 3)`` with a (3, 4) matrix to pixels ``(..., 2)``."""
    pts = np.asarray(points, dtype=np.float32)
    hom = np.concatenate([pts, np.ones((*pts.shape[:-1], 1), dtype=np.float32)], axis=-1) @ projection.T
    return hom[..., :2] / hom[..., 2:3]


class WorldTransform:
    """Stateful camera->world estimate over a video (upstream ``PoseTracker._update_camera_pose``).

    Call :meth:`step` once per frame with that frame's camera-space poses; the first person (index 0, as
    upstream) drives the estimate. Until a person was seen the transform is the identity.
    """

    def __init__(
        self,
        intrinsics: np.ndarray | None = None,
        *,
        keep_camera_orientation: bool = False,
        ground_plane: bool = True,
        warmup_frames: int = DEFAULT_WARMUP,
    ) -> None:
        self.intrinsics = None if intrinsics is None else np.asarray(intrinsics, dtype=np.float32)
        self.keep_camera_orientation = keep_camera_orientation
        self.ground_plane = ground_plane
        self.warmup_frames = max(1, int(warmup_frames))
        self.reset()

    def reset(self) -> None:
        self.camera_to_world = np.eye(4, dtype=np.float32)
        self._initialised = False
        self._anchor: np.ndarray | None = None
        self._up_sum = np.zeros(3, dtype=np.float32)
        self._up_weight = 0.0
        self._ground_sum = np.zeros(3, dtype=np.float32)
        self._ground_weight = 0.0
        self.frames = 0  # warm-up frames used so far

    @property
    def frozen(self) -> bool:
        """True once the estimate no longer changes."""
        if self.keep_camera_orientation or not self.ground_plane:
            return self._initialised
        return self.frames >= self.warmup_frames

    @property
    def world_to_pixels(self) -> np.ndarray | None:
        """(3, 4) projection of world points to pixels, or None without intrinsics."""
        return projection(self.intrinsics, self.camera_to_world)

    def update(self, points_cam: np.ndarray, scores: np.ndarray) -> None:
        """Fold one subject's camera-space pose ``(K, 3)`` and scores ``(K,)`` into the estimate."""
        if self.frozen:
            return
        if self.keep_camera_orientation:
            self._initialised = True
            return
        try:
            pose = estimate_camera_pose(points_cam, scores, ground_plane=self.ground_plane)
        except DegeneratePoseError:
            log.debug("camera pose: degenerate pose skipped")  # upstream raises here
            return
        if not self.ground_plane:
            self.camera_to_world = pose.transform
            self._initialised = True
            return
        if self._anchor is None:
            self._anchor = np.asarray(points_cam[ROOT_ID], dtype=np.float32).copy()
        up = pose.up_axis
        if self._up_weight > 0.0 and float(np.dot(self._up_sum, up)) < 0.0:
            up = -up
        w_up = max(0.25, float(pose.confidence))
        w_ground = max(0.05, float(pose.confidence))
        self._up_sum += w_up * up
        self._up_weight += w_up
        self._ground_sum += w_ground * pose.ground_point
        self._ground_weight += w_ground
        self.frames += 1
        mean_up = self._up_sum / max(self._up_weight, 1e-6)
        norm = float(np.linalg.norm(mean_up))
        mean_up = pose.up_axis if norm < 1e-6 else mean_up / norm
        mean_ground = self._ground_sum / max(self._ground_weight, 1e-6)
        height = float(np.dot(self._anchor, mean_up) - np.dot(mean_ground, mean_up))
        origin = self._anchor - height * mean_up
        try:
            self.camera_to_world = camera_to_world(mean_up, origin, ground_plane=True)
        except DegeneratePoseError:
            log.debug("camera pose: degenerate averaged axis skipped")
            return
        self._initialised = True
        if self.frozen:
            log.info("camera pose warm-up complete after %d frames: up %s", self.frames, mean_up)

    @property
    def vertical(self) -> Vertical:
        """Upstream's vertical (body segments and foot plane); not y-up with its mirror / camera-axes options."""
        up = self.camera_to_world[1, :3]
        return Vertical(tuple(float(v) for v in up), SOURCE_UPSTREAM, None,
                        y_up=not self.keep_camera_orientation and self.ground_plane)  # fmt: skip

    def apply(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-space points ``(..., 3)`` -> world space (identity until initialised)."""
        return cam_to_world(points_cam, self.camera_to_world)

    def step(self, keypoints_cam: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """One frame: update from person 0 (if any), then return all poses ``(N, K, 3)`` in world space."""
        if len(keypoints_cam) > 0:
            self.update(keypoints_cam[0], scores[0])
        return self.apply(keypoints_cam)


# ------------------------------------------------------------------------------------- vertical from evidence
#
# The default world frame (``WorldFrame``; ``WorldTransform`` above is upstream's, kept for seed_compat) takes
# the vertical from evidence, best first: a calibration or the camera pitch/roll the user gives; the floor,
# from the feet's contacts over time; else a level camera. Never from the trunk, whose inclination is measured
# against it.

SOURCE_CALIBRATION = "calibration"
SOURCE_USER = "camera_pitch_roll"
SOURCE_FLOOR = "floor_contacts"
SOURCE_LEVEL = "level_camera_prior"
SOURCE_UPSTREAM = "upstream_body_and_feet"
LEVEL_UP = (0.0, -1.0, 0.0)  # world up in the camera of a level camera (x right, y down, z forward)

# a foot whose points move slower than this across the line of sight may be standing (along the line of sight a
# lifted foot's depth jitters from frame to frame even when it stands still)
STANCE_SPEED_MPS = 0.5
MIN_PHASE_FRAMES = 3  # a stance phase gives contacts once the foot stood this many frames
# a standing foot this much above the lowest one standing at the same time (along the current vertical) still
# stands: loose while the vertical is the level prior (a pitched camera makes two standing feet differ in
# "height"), tight once the floor is found
SAME_FLOOR_M = 0.15
SAME_FLOOR_FOUND_M = 0.01
RANSAC_TOL_M = 0.03
RANSAC_ITERATIONS = 128
MIN_CONTACTS = 6  # two feet's heel and toes
MIN_CONTACT_PHASES = 2
MIN_SPREAD_M = 0.04  # contacts' standard deviation across their main direction: a line gives no plane
MAX_TILT_DEG = 60.0  # a floor steeper than this from the level camera's vertical is not a floor
MAX_PHASES = 100  # the most recent stance phases kept as evidence
MAX_PHASE_FRAMES = 300  # the most recent frames of one stance phase
REFIT_EVERY = 5
# Error of each lifted foot point about its own foot's centre (RMS, metres): the trained lifter stand-in on exact 2D
# of the spine benchmark's upright clips, 1.4 cm (3.9 on the held-out set's people posed anywhere). It does not
# average out over frames: a standing foot is lifted with the same error every frame, so it bounds the floor's tilt.
LIFTED_FOOT_ERROR_M = 0.015


@dataclass(frozen=True)
class Vertical:
    """The world vertical and where it came from. ``up``: world up in camera coordinates (x right, y down,
    z forward). ``y_up``: the world frame built on it is right-handed with y up (False only for upstream's
    mirror and y-down options). ``uncertainty_deg``: one standard deviation of the tilt, where known."""

    up: tuple[float, float, float]
    source: str
    uncertainty_deg: float | None = None
    y_up: bool = True

    @property
    def pitch_deg(self) -> float:
        """Camera pitch: positive looking down."""
        return float(np.degrees(np.arcsin(np.clip(-self.up[2], -1.0, 1.0))))

    @property
    def roll_deg(self) -> float:
        """Camera roll: the angle of the world vertical from image up, clockwise on screen positive."""
        return float(np.degrees(np.arctan2(self.up[0], -self.up[1])))

    @classmethod
    def from_pitch_roll(cls, pitch_deg: float, roll_deg: float, source: str = SOURCE_USER) -> Vertical:
        """The vertical seen by a camera pitched ``pitch_deg`` down and rolled ``roll_deg`` (see the properties)."""
        p, r = np.radians(pitch_deg), np.radians(roll_deg)
        up = (float(np.sin(r) * np.cos(p)), float(-np.cos(r) * np.cos(p)), float(-np.sin(p)))
        return cls(up, source, 0.0 if source != SOURCE_LEVEL else None)

    def to_dict(self) -> dict:
        """What outputs write: source, pitch, roll and uncertainty (degrees, 3 decimals)."""
        unc = None if self.uncertainty_deg is None else round(float(self.uncertainty_deg), 3)
        return {"vertical_source": self.source, "camera_pitch_deg": round(self.pitch_deg, 3),
                "camera_roll_deg": round(self.roll_deg, 3), "vertical_uncertainty_deg": unc}  # fmt: skip

    def line(self) -> str:
        """One console line."""
        unc = "" if self.uncertainty_deg is None else f" +- {self.uncertainty_deg:.1f}"
        return f"world vertical: {self.source}, camera pitch {self.pitch_deg:+.1f} roll {self.roll_deg:+.1f} deg{unc}"


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares plane of ``points (N, 3)``: (centroid, unit normal, singular values)."""
    centroid = points.mean(axis=0)
    _, sv, vh = np.linalg.svd(points - centroid, full_matrices=False)
    return centroid, vh[-1], sv


def floor_from_contacts(contacts: np.ndarray, phases: np.ndarray, prior_up: np.ndarray,
                        seed: int = 0, point_error_m: float = 0.0) -> Vertical | None:  # fmt: skip
    """The floor's normal as a :class:`Vertical` from foot contact points ``(N, 3)`` (camera space) of the
    stance ``phases (N,)`` they come from, or None when the evidence does not fix a plane: RANSAC (3-point
    samples, inliers within ``RANSAC_TOL_M``), refined by least squares on the inliers, accepted only with enough
    contacts from enough phases spread in two directions and a normal within ``MAX_TILT_DEG`` of ``prior_up``.

    Its uncertainty is the tilt that the points' error across the contacts' narrower spread allows: the plane's
    RMS residual combined with ``point_error_m``, the error of each point that the fit cannot see (lifted feet:
    ``LIFTED_FOOT_ERROR_M``; 0 for measured 3D). Repeated frames of a standing foot are not independent
    evidence, so it is not divided by the number of points."""
    if len(contacts) < MIN_CONTACTS or len(np.unique(phases)) < MIN_CONTACT_PHASES:
        return None
    rng = np.random.default_rng(seed)
    best, best_count = None, 0
    for _ in range(RANSAC_ITERATIONS):
        a, b, c = contacts[rng.choice(len(contacts), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = float(np.linalg.norm(normal))
        if norm < 1e-6:
            continue
        normal /= norm
        inliers = np.abs((contacts - a) @ normal) < RANSAC_TOL_M
        count = int(inliers.sum())
        if count > best_count:
            best, best_count = inliers, count
    if best is None or best_count < MIN_CONTACTS or len(np.unique(phases[best])) < MIN_CONTACT_PHASES:
        return None
    points = contacts[best]
    centroid, normal, sv = fit_plane(points)
    if float(normal @ prior_up) < 0.0:
        normal = -normal
    for _ in range(3):  # a raised foot taken for a standing one sits above the floor: trim that side
        height = (points - centroid) @ normal
        mad = 1.4826 * float(np.median(np.abs(height - np.median(height))))
        keep = height <= np.median(height) + max(0.01, 2.5 * mad)
        if keep.all() or keep.sum() < MIN_CONTACTS:
            break
        points = points[keep]
        centroid, normal, sv = fit_plane(points)
        if float(normal @ prior_up) < 0.0:
            normal = -normal
    spread = sv / np.sqrt(len(points))  # standard deviations along the principal directions
    if spread[1] < MIN_SPREAD_M:
        return None
    if np.degrees(np.arccos(np.clip(float(normal @ prior_up), -1.0, 1.0))) > MAX_TILT_DEG:
        return None
    residual = float(np.sqrt(np.mean(((points - centroid) @ normal) ** 2)))
    uncertainty = np.degrees(np.arctan2(np.hypot(residual, point_error_m), spread[1]))
    return Vertical(tuple(float(v) for v in normal), SOURCE_FLOOR, float(uncertainty))


@dataclass
class StancePhase:
    """One foot standing still: its points ``(3, 3)`` (NaN where unseen) in each frame from ``first`` to ``last``;
    once it ended, only its contacts are kept (``end``)."""

    first: int
    last: int
    points: list[np.ndarray]
    ended: np.ndarray | None = None

    def contacts(self) -> np.ndarray:
        """The foot's points where it stood, ``(M, 3)``: each point's median over the phase (a lifted foot's
        depth jitters from frame to frame; its place on the floor does not)."""
        if self.ended is not None:
            return self.ended
        with warnings.catch_warnings():  # a point never seen in the phase is all-NaN: dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(np.stack(self.points), axis=0)
        return median[np.isfinite(median).all(axis=1)]

    def end(self) -> None:
        """Freeze the contacts: every refit reads them, and an ended phase's frames no longer change."""
        self.ended = self.contacts()
        self.points = []


class WorldFrame:
    """Camera -> world over a video, with the vertical from evidence (the default world frame).

    ``vertical`` given (calibration or camera pitch/roll): used as is. Otherwise the floor: each foot of person 0
    that stands still (slow across the line of sight) for a few frames is a stance phase; its points' medians
    over the phase are floor contacts (the lowest feet standing at the same time only); the plane through the
    contacts of every phase so far (``floor_from_contacts``) replaces the level-camera prior once accepted and
    is refined every few frames as phases accumulate. ``floor=False`` keeps the level-camera prior.
    :meth:`reset` (a scene cut) drops the floor evidence. World: y up, origin on the ground below person 0's
    first hip, x the camera's x made horizontal (right-handed). ``point_error_m``: the error of each 3D foot point
    the floor's uncertainty allows for (``LIFTED_FOOT_ERROR_M`` for lifted poses).
    """

    def __init__(self, vertical: Vertical | None = None, *, floor: bool = True, fps: float = 30.0,
                 intrinsics: np.ndarray | None = None, point_error_m: float = 0.0) -> None:  # fmt: skip
        self.given = vertical
        self.floor = floor and vertical is None
        self.point_error_m = float(point_error_m)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.intrinsics = None if intrinsics is None else np.asarray(intrinsics, dtype=np.float32)
        self.warn = True  # say once when the level-camera prior is in use
        self.reset()

    def reset(self) -> None:
        """Forget the floor evidence and the origin (after a scene cut the camera may have moved)."""
        self.vertical = self.given or Vertical(LEVEL_UP, SOURCE_LEVEL)
        self.camera_to_world = np.eye(4, dtype=np.float32)
        self._phases: list[StancePhase] = []  # ended
        self._open: dict[int, StancePhase] = {}  # foot -> the phase it stands in now
        self._previous: dict[int, np.ndarray] = {}
        self._anchor: np.ndarray | None = None
        self._lowest: list[float] = []
        self._index = 0
        self._since_fit = 0

    @property
    def world_to_pixels(self) -> np.ndarray | None:
        """(3, 4) projection of world points to pixels, or None without intrinsics."""
        return projection(self.intrinsics, self.camera_to_world)

    def _collect(self, points: np.ndarray, scores: np.ndarray) -> None:
        """Extend the stance phase of each foot that stands still this frame; end the phase of one that moves."""
        for side, foot in enumerate((LEFT_FOOT, RIGHT_FOOT)):
            seen = scores[foot] >= VIS_THR
            if seen.sum() < 2:
                self._previous.pop(side, None)
                self._end_phase(side)
                continue
            pts = np.where(seen[:, None], points[foot], np.nan)
            centre = np.nanmean(pts, axis=0)
            previous = self._previous.get(side)
            self._previous[side] = centre
            if previous is None:
                continue
            step = centre - previous
            ray = centre / max(float(np.linalg.norm(centre)), 1e-6)
            across = float(np.linalg.norm(step - (step @ ray) * ray)) * self.fps
            if across >= STANCE_SPEED_MPS:
                self._end_phase(side)
                continue
            phase = self._open.setdefault(side, StancePhase(self._index, self._index, []))
            phase.last = self._index
            phase.points.append(pts)
            del phase.points[:-MAX_PHASE_FRAMES]

    def _end_phase(self, side: int) -> None:
        phase = self._open.pop(side, None)
        if phase is not None and len(phase.points) >= MIN_PHASE_FRAMES:
            phase.end()
            self._phases.append(phase)
            del self._phases[:-MAX_PHASES]  # keep the most recent evidence

    def _contacts(self, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Contact points and their phase numbers: every stance phase long enough whose foot is the lowest along
        ``up`` of the feet standing at the same time (a margin that is loose under the level prior and tight once
        the floor was found)."""
        margin = SAME_FLOOR_FOUND_M if self.vertical.source == SOURCE_FLOOR else SAME_FLOOR_M
        phases = self._phases + [p for p in self._open.values() if len(p.points) >= MIN_PHASE_FRAMES]
        contacts = [p.contacts() for p in phases]
        heights = [float(np.min(c @ up)) if len(c) else np.inf for c in contacts]
        points, groups = [], []
        for i, (phase, found, height) in enumerate(zip(phases, contacts, heights, strict=True)):
            overlap = [q.first <= phase.last and phase.first <= q.last for q in phases]
            together = [h for h, o in zip(heights, overlap, strict=True) if o]
            if len(found) and height <= min(together) + margin:
                points.extend(found)
                groups.extend([i] * len(found))
        return np.asarray(points, np.float64).reshape(-1, 3), np.asarray(groups, np.int64)

    def _refit(self, up: np.ndarray) -> np.ndarray:
        """Fit the floor to the contacts (twice when the first fit changes which feet stand); return the up."""
        for _ in range(2):
            contacts, phases = self._contacts(up)
            found = floor_from_contacts(contacts, phases, np.asarray(LEVEL_UP), seed=self._index,
                                        point_error_m=self.point_error_m)  # fmt: skip
            if found is None:
                break
            self.vertical = found
            up = np.asarray(found.up, dtype=np.float64)
        return up

    def update(self, points_cam: np.ndarray, scores: np.ndarray) -> None:
        """Fold one subject's camera-space pose ``(K, 3)`` and scores ``(K,)`` into the estimate."""
        points = np.asarray(points_cam, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float32)
        if not np.isfinite(points).all():
            return
        up = np.asarray(self.vertical.up, dtype=np.float64)
        if self.floor:
            self._collect(points, scores)
            self._since_fit += 1
            if self._since_fit >= REFIT_EVERY and (self._phases or self._open):
                self._since_fit = 0
                up = self._refit(up)
        if self.vertical.source == SOURCE_LEVEL and self.warn:
            self.warn = False
            log.warning("world vertical: no calibration, camera pitch/roll or usable floor contacts yet; assuming a "
                        "level camera (give --camera-pitch/--camera-roll or --calibration)")  # fmt: skip
        if self._anchor is None:
            self._anchor = points[ROOT_ID].copy()
        seen = FOOT_IDS[scores[FOOT_IDS] >= VIS_THR]
        low = points[seen] if len(seen) else points[scores >= VIS_THR]
        if len(low):
            self._lowest.append(float(np.min(low @ up)))
        ground = float(np.median(self._lowest)) if self._lowest else float(self._anchor @ up)
        origin = self._anchor - (float(self._anchor @ up) - ground) * up
        try:
            self.camera_to_world = camera_to_world(up.astype(np.float32), origin.astype(np.float32))
        except DegeneratePoseError:
            log.debug("world frame: degenerate vertical skipped")

    def apply(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-space points ``(..., 3)`` -> world space."""
        return cam_to_world(points_cam, self.camera_to_world)

    def step(self, keypoints_cam: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """One frame: update from person 0 (if any), then return all poses ``(N, K, 3)`` in world space."""
        if len(keypoints_cam) > 0:
            self.update(keypoints_cam[0], scores[0])
        self._index += 1
        return self.apply(keypoints_cam)

"""2D -> 3D lifting pre/post-processing, pure numpy (upstream ``tools/pose_lifting``).

The lifter graph takes ``(N, 37, 2)`` normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)`` with
invisible keypoints zeroed and returns ``(N, 37, 3)`` in model units. Post-processing makes it
root-relative at the hip (keypoint 19), multiplies by a metric scale (estimated once from the first
subject and a known height) and adds a per-person root translation solved by least squares from the 2D
observations. Typical use per frame::

    xy, vis = lifter_feed(kpts, scores, K)                 # feed xy to the graph -> raw
    if scale is None: scale = estimate_metric_scale(root_relative(raw)[0])   # once, first person
    kpts3d = lift_postprocess(raw, xy, vis, scale)         # (N, 37, 3) camera space, metres
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .skeleton import KEYPOINT_INDEX, ROOT_ID

DEFAULT_DFOV = 84.0
DEFAULT_HEIGHT = 1.84
LIFTING_THR = 0.5  # upstream estimator default; upstream's PoseTracker passes its tracking_thr (0.3)
FALLBACK_TRANSLATION = (0.0, 0.0, 3.0)  # upstream: too few points, or the subject behind the camera


def estimate_intrinsics(
    width: int,
    height: int,
    dfov: float | None = DEFAULT_DFOV,
    hfov: float | None = None,
    vfov: float | None = None,
    principal_point: tuple[float, float] | None = None,
) -> np.ndarray:
    """Pinhole ``K`` (3, 3) float32 from a field of view in degrees; principal point at the image centre.

    ``dfov`` (diagonal) is used when neither ``hfov`` nor ``vfov`` is given; one of them alone implies
    square pixels; both give separate ``fx``/``fy`` (upstream's rules).
    """
    cx, cy = (0.5 * width, 0.5 * height) if principal_point is None else principal_point
    if hfov is None and vfov is None:
        if dfov is None or not 0.0 < dfov < 180.0:
            raise UserError(f"camera field of view: dfov={dfov}, expected degrees in (0, 180)")
        fx = fy = 0.5 * np.hypot(width, height) / np.tan(0.5 * np.deg2rad(dfov))
    elif vfov is None:
        fx = fy = 0.5 * width / np.tan(0.5 * np.deg2rad(hfov))
    elif hfov is None:
        fx = fy = 0.5 * height / np.tan(0.5 * np.deg2rad(vfov))
    else:
        fx = 0.5 * width / np.tan(0.5 * np.deg2rad(hfov))
        fy = 0.5 * height / np.tan(0.5 * np.deg2rad(vfov))
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float32)


def lifter_feed(
    keypoints: np.ndarray, scores: np.ndarray, intrinsics: np.ndarray, thr: float = LIFTING_THR
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise pixel keypoints ``(N, K, 2)`` with ``intrinsics`` (3, 3); zero those with ``score < thr``.

    Returns ``(xy_norm (N, K, 2) float32, visible (N, K) bool)``. (Upstream's lifter mean/std are 0/1.)
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)
    xy = np.stack([(kp[..., 0] - k[0, 2]) / k[0, 0], (kp[..., 1] - k[1, 2]) / k[1, 1]], axis=-1)
    visible = np.asarray(scores) >= thr
    return (xy * visible[..., None]).astype(np.float32), visible


def gravity_rotation(up: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """Rotation ``R`` (3, 3) from camera coordinates to a *level* virtual camera at the same centre: ``R @ up``
    is ``(0, -1, 0)`` and the virtual x axis is the camera's x made horizontal. ``up``: the world vertical in
    camera coordinates (x right, y down, z forward) with a camera pitched less than 90 degrees."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    pitch, roll = np.arcsin(np.clip(-u[2], -1.0, 1.0)), np.arctan2(u[0], -u[1])
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    un_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    un_roll = np.array([[cr, sr, 0.0], [-sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return un_pitch @ un_roll


MIN_LEVEL_DEPTH = 0.05  # a ray this close to the level camera's image plane is beyond any lens: drop the point


def level_feed(xy_norm: np.ndarray, visible: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised camera coordinates ``(N, K, 2)`` as the level virtual camera ``rotation`` sees them (the same
    rays turned, re-projected); invisible points stay 0. Returns ``(xy (N, K, 2) float32, visible (N, K))``."""
    xy = np.asarray(xy_norm, dtype=np.float64)
    rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1) @ np.asarray(rotation, np.float64).T
    seen = np.asarray(visible, dtype=bool) & (rays[..., 2] > MIN_LEVEL_DEPTH)
    level = rays[..., :2] / np.where(seen, rays[..., 2], 1.0)[..., None]
    return (level * seen[..., None]).astype(np.float32), seen


def root_relative(raw: np.ndarray, root: int = ROOT_ID) -> np.ndarray:
    """Lifter output ``(N, K, 3)`` minus its root joint (hip, 19)."""
    raw = np.asarray(raw, dtype=np.float32)
    return raw - raw[:, root : root + 1, :]


_HEIGHT_CHAINS = (
    ("hip", "neck", "head"),
    ("hip", "left_knee", "left_ankle", "left_heel"),
    ("hip", "right_knee", "right_ankle", "right_heel"),
)


def estimate_metric_scale(pose_rel: np.ndarray, subject_height: float = DEFAULT_HEIGHT) -> float:
    """Metres per model unit from one root-relative pose ``(K, 3)`` and the subject's height in metres.

    Height = length of hip-neck-head + mean length of the two hip-knee-ankle-heel chains; 1.0 when that is
    below 1e-5 (upstream).
    """
    pose = np.asarray(pose_rel, dtype=np.float32)

    def chain(names: tuple[str, ...]) -> float:
        ids = [KEYPOINT_INDEX[n] for n in names]
        return float(sum(np.linalg.norm(pose[b] - pose[a]) for a, b in zip(ids[:-1], ids[1:], strict=True)))

    trunk, left, right = (chain(c) for c in _HEIGHT_CHAINS)
    height = trunk + 0.5 * (left + right)
    return 1.0 if height < 1e-5 else float(subject_height / height)


def estimate_root_translation(P_rel: np.ndarray, xy_norm: np.ndarray, visible: np.ndarray) -> np.ndarray:  # noqa: N803
    """Camera-space root position ``t`` (3,) so that the pose ``P_rel + t`` projects onto ``xy_norm``.

    Per visible joint: ``x (Z + tz) = X + tx`` and ``y (Z + tz) = Y + ty``, solved by least squares in
    float32 (upstream). Fewer than 3 visible joints, or ``tz <= 0.1``, give upstream's fallback (tz = 3).
    """
    vis = np.asarray(visible, dtype=bool)
    p = np.asarray(P_rel, dtype=np.float32)[vis]
    xy = np.asarray(xy_norm, dtype=np.float32)[vis]
    if len(p) < 3:
        return np.asarray(FALLBACK_TRANSLATION, dtype=np.float32)
    n = len(p)
    a = np.zeros((2 * n, 3), dtype=np.float32)  # rows interleaved x, y per joint, as upstream
    a[0::2, 0] = 1.0
    a[1::2, 1] = 1.0
    a[0::2, 2] = -xy[:, 0]
    a[1::2, 2] = -xy[:, 1]
    b = np.empty(2 * n, dtype=np.float32)
    b[0::2] = xy[:, 0] * p[:, 2] - p[:, 0]
    b[1::2] = xy[:, 1] * p[:, 2] - p[:, 1]
    t = np.linalg.lstsq(a, b, rcond=None)[0]
    if t[2] <= 0.1:
        t[2] = FALLBACK_TRANSLATION[2]
    return t.astype(np.float32)


def lift_postprocess(raw: np.ndarray, xy_norm: np.ndarray, visible: np.ndarray, scale: float) -> np.ndarray:
    """Lifter output ``(N, K, 3)`` -> camera-space keypoints ``(N, K, 3)`` float32 (metres if ``scale`` is).

    Root-relative at the hip, times ``scale``, plus each person's :func:`estimate_root_translation`.
    ``xy_norm``/``visible`` are what :func:`lifter_feed` returned for the same people.
    """
    rel = root_relative(raw) * np.float32(scale)
    if len(rel) == 0:
        return rel
    rows = zip(rel, xy_norm, visible, strict=True)
    roots = np.stack([estimate_root_translation(p, xy, v) for p, xy, v in rows])
    return rel + roots[:, None, :]

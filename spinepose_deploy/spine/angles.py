"""Spine kinematics from SpineTrack keypoints: inter-segment angles, regional curvature, trunk and neck.

Pure numpy, vectorised over any leading shape: keypoints ``(..., 37, 2)`` pixels, scores ``(..., 37)``,
world keypoints ``(..., 37, 3)`` metres with y up (``PoseResult.keypoints_3d_world``). Angles in degrees.

The chain is the 9 spine keypoints hip (sacrum) -> spine_01 (~L5) -> spine_02 (~L3) -> spine_03 (~T12/L1)
-> spine_04 (~T8) -> spine_05 (~T3) -> neck (~C7) -> neck_02 (~C3/C4) -> neck_03 (~C1): 8 segments, 7
inner points. The vertebral levels are approximate: the points are a network's learned estimates of the
spine's course under the skin, not palpated landmarks.

2D (image plane; clockwise on screen is positive, so for a person facing image right forward bending is
positive): ``bend2d_<point>`` the turn between the segments meeting at each inner point; the regions
(sums of those turns); ``trunk_incl2d`` hip -> neck and ``neck_incl2d`` neck -> neck_03 against image up.

3D (world space): a body frame per person: up is world vertical, left is the hip line (left_hip -
right_hip; shoulders, then clavicles, when the hips are not confident) made horizontal, forward = left x
up. Each segment is projected on the sagittal (forward-up) and coronal (left-up) planes; ``flex_<point>``
(flexion +, extension -) and ``lat_<point>`` (bend to the person's left +) are the turns between the
projections at each inner point; the regions sum them. ``trunk_incl`` / ``trunk_lean`` are hip -> neck
against vertical in the sagittal / coronal plane, ``neck_incl`` / ``neck_lean`` the same for neck ->
neck_03, and ``twist`` is the rotation of the shoulder line from the hip line about vertical (shoulders
turned to the person's left +).

Every angle has a confidence: the minimum score of the keypoints it uses (frame points included). Angles
whose confidence is below the threshold are NaN, so no number is ever made from an invisible point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, SPINE_IDS

DEFAULT_THR = 0.3  # the lifter's and world frame's visibility threshold

_K = KEYPOINT_INDEX
INNER_POINTS: tuple[str, ...] = tuple(KEYPOINT_NAMES[i] for i in SPINE_IDS[1:-1])
# approximate vertebral level of each chain point (docs/spine.md)
LEVELS: dict[str, str] = dict(zip(
    (KEYPOINT_NAMES[i] for i in SPINE_IDS),
    ("sacrum", "L5", "L3", "T12/L1", "T8", "T3", "C7", "C3/C4", "C1"), strict=True,
))  # fmt: skip
# regions: which inner points' turns are summed (indices into INNER_POINTS)
REGIONS: dict[str, tuple[int, ...]] = {"lumbar": (0, 1), "thoracic": (2, 3, 4), "cervical": (5, 6)}

NAMES_2D: tuple[str, ...] = (
    *(f"bend2d_{p}" for p in INNER_POINTS), *(f"{r}2d" for r in REGIONS), "trunk_incl2d", "neck_incl2d",
)  # fmt: skip
NAMES_3D: tuple[str, ...] = (
    *(f"flex_{p}" for p in INNER_POINTS), *(f"lat_{p}" for p in INNER_POINTS),
    *(f"{r}_flex" for r in REGIONS), *(f"{r}_lat" for r in REGIONS),
    "trunk_incl", "trunk_lean", "neck_incl", "neck_lean", "twist",
)  # fmt: skip
ANGLE_NAMES: tuple[str, ...] = NAMES_2D + NAMES_3D

_CHAIN = np.asarray(SPINE_IDS, dtype=np.int64)
_HIP, _NECK, _C1 = _K["hip"], _K["neck"], _K["neck_03"]
# left-right pairs for the body frame, in order of preference
_LR_PAIRS = ((_K["left_hip"], _K["right_hip"]), (_K["left_shoulder"], _K["right_shoulder"]),
             (_K["left_clavicle"], _K["right_clavicle"]))  # fmt: skip
_SHOULDERS = _LR_PAIRS[1]


@dataclass(frozen=True)
class SpineAngles:
    """Angles ``values (..., A)`` in degrees (NaN where not measurable) and ``confidence (..., A)``.

    ``A = len(ANGLE_NAMES)``; the 3D columns are NaN (confidence 0) without world keypoints.
    """

    values: np.ndarray
    confidence: np.ndarray

    names = ANGLE_NAMES

    def __getitem__(self, name: str) -> np.ndarray:
        """One angle over the leading shape, e.g. ``angles["trunk_incl"]`` -> ``(N,)``."""
        return self.values[..., ANGLE_NAMES.index(name)]


def _wrap(deg: np.ndarray) -> np.ndarray:
    """Degrees to (-180, 180]."""
    return 180.0 - np.mod(180.0 - deg, 360.0)


def _turns(direction_deg: np.ndarray) -> np.ndarray:
    """Segment directions ``(..., 8)`` -> turns at the 7 inner points ``(..., 7)``."""
    return _wrap(np.diff(direction_deg, axis=-1))


def _regions(turns: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the inner turns per region ``(..., 3)`` and their confidences."""
    values = np.stack([turns[..., list(ids)].sum(-1) for ids in REGIONS.values()], axis=-1)
    confs = np.stack([conf[..., list(ids)].min(-1) for ids in REGIONS.values()], axis=-1)
    return values, confs


def _chain_conf(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidences of the 7 inner turns (their 3 points) and of the 8 segments (their 2 points)."""
    s = scores[..., _CHAIN]
    seg = np.minimum(s[..., :-1], s[..., 1:])
    return np.minimum(seg[..., :-1], seg[..., 1:]), seg


def _angles_2d(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chain = keypoints[..., _CHAIN, :]
    seg = np.diff(chain, axis=-2)  # (..., 8, 2) pixels, y down
    # a segment's direction from image up, clockwise positive: atan2(x, -y) with y down
    direction = np.degrees(np.arctan2(seg[..., 0], -seg[..., 1]))
    turns = _turns(direction)
    turn_conf, _ = _chain_conf(scores)
    regions, region_conf = _regions(turns, turn_conf)
    trunk = keypoints[..., _NECK, :] - keypoints[..., _HIP, :]
    neck = keypoints[..., _C1, :] - keypoints[..., _NECK, :]
    lines = np.stack([trunk, neck], axis=-2)  # (..., 2, 2)
    incl = np.degrees(np.arctan2(lines[..., 0], -lines[..., 1]))
    incl_conf = np.stack([np.minimum(scores[..., _HIP], scores[..., _NECK]),
                          np.minimum(scores[..., _NECK], scores[..., _C1])], -1)  # fmt: skip
    values = np.concatenate([turns, regions, incl], axis=-1)
    conf = np.concatenate([turn_conf, region_conf, incl_conf], axis=-1)
    return values, conf


def body_frame(world: np.ndarray, scores: np.ndarray, thr: float = DEFAULT_THR) -> tuple[np.ndarray, np.ndarray]:
    """Body axes ``(..., 3, 3)`` (rows: left, up, forward; world coordinates) and their confidence ``(...)``.

    Left comes from the first left-right pair (hips, shoulders, clavicles) whose two scores reach ``thr``.
    """
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), world.shape[:-2] + (3,))
    left = np.zeros(world.shape[:-2] + (3,))
    conf = np.zeros(world.shape[:-2])
    chosen = np.zeros(world.shape[:-2], bool)
    for a, b in _LR_PAIRS:
        pair_conf = np.minimum(scores[..., a], scores[..., b])
        take = ~chosen & (pair_conf >= thr)
        left = np.where(take[..., None], world[..., a, :] - world[..., b, :], left)
        conf = np.where(take, pair_conf, conf)
        chosen |= take
    left = left - (left * up).sum(-1, keepdims=True) * up  # horizontal
    norm = np.linalg.norm(left, axis=-1, keepdims=True)
    conf = np.where(norm[..., 0] > 1e-9, conf, 0.0)
    left = left / np.maximum(norm, 1e-12)
    forward = np.cross(left, up)
    return np.stack([left, up, forward], axis=-2), conf


def _angles_3d(world: np.ndarray, scores: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    axes, frame_conf = body_frame(world, scores, thr)
    local = np.einsum("...ij,...kj->...ki", axes, world)  # (..., 37, 3) as (left, up, forward)
    seg = np.diff(local[..., _CHAIN, :], axis=-2)  # (..., 8, 3)
    sagittal = np.degrees(np.arctan2(seg[..., 2], seg[..., 1]))
    coronal = np.degrees(np.arctan2(seg[..., 0], seg[..., 1]))
    turn_conf, _ = _chain_conf(scores)
    turn_conf = np.minimum(turn_conf, frame_conf[..., None])
    flex, lat = _turns(sagittal), _turns(coronal)
    flex_regions, region_conf = _regions(flex, turn_conf)
    lat_regions, _ = _regions(lat, turn_conf)
    trunk = local[..., _NECK, :] - local[..., _HIP, :]
    neck = local[..., _C1, :] - local[..., _NECK, :]
    lines = [trunk[..., 2], trunk[..., 0], neck[..., 2], neck[..., 0]]
    ups = [trunk[..., 1], trunk[..., 1], neck[..., 1], neck[..., 1]]
    incl = np.degrees(np.arctan2(np.stack(lines, -1), np.stack(ups, -1)))
    trunk_conf = np.minimum(np.minimum(scores[..., _HIP], scores[..., _NECK]), frame_conf)
    neck_conf = np.minimum(np.minimum(scores[..., _NECK], scores[..., _C1]), frame_conf)
    # twist: shoulder line against hip line, both in the horizontal plane, about up (left +)
    hips = local[..., _LR_PAIRS[0][0], :] - local[..., _LR_PAIRS[0][1], :]
    shoulders = local[..., _SHOULDERS[0], :] - local[..., _SHOULDERS[1], :]
    hip_dir = np.arctan2(-hips[..., 2], hips[..., 0])  # rotation about up: forward (z) -> left (x) is negative
    shoulder_dir = np.arctan2(-shoulders[..., 2], shoulders[..., 0])
    twist = _wrap(np.degrees(shoulder_dir - hip_dir))
    twist_conf = np.min(scores[..., [*_LR_PAIRS[0], *_SHOULDERS]], axis=-1)
    values = np.concatenate([flex, lat, flex_regions, lat_regions, incl, twist[..., None]], axis=-1)
    conf = np.concatenate([
        turn_conf, turn_conf, region_conf, region_conf,
        np.stack([trunk_conf, trunk_conf, neck_conf, neck_conf], -1), twist_conf[..., None],
    ], axis=-1)  # fmt: skip
    return values, conf


def spine_angles(
    keypoints: np.ndarray, scores: np.ndarray, world: np.ndarray | None = None, *, thr: float = DEFAULT_THR
) -> SpineAngles:
    """All spine angles for people ``keypoints (..., 37, 2)`` with ``scores (..., 37)``.

    ``world (..., 37, 3)`` (metres, y up) adds the 3D angles; without it they are NaN. Angles whose
    confidence is below ``thr`` are NaN.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if keypoints.shape[-2:] != (len(KEYPOINT_NAMES), 2) or scores.shape != keypoints.shape[:-1]:
        raise ValueError(
            f"spine_angles: keypoints {keypoints.shape} and scores {scores.shape}; expected (..., 37, 2) and (..., 37)"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        values_2d, conf_2d = _angles_2d(keypoints, scores)
        if world is None:
            values_3d = np.full(scores.shape[:-1] + (len(NAMES_3D),), np.nan)
            conf_3d = np.zeros_like(values_3d)
        else:
            world = np.asarray(world, dtype=np.float64)
            if world.shape != keypoints.shape[:-1] + (3,):
                raise ValueError(f"spine_angles: world {world.shape}; expected {keypoints.shape[:-1] + (3,)}")
            values_3d, conf_3d = _angles_3d(world, scores, thr)
    values = np.concatenate([values_2d, values_3d], axis=-1)
    conf = np.concatenate([conf_2d, conf_3d], axis=-1)
    values = np.where(conf >= thr, values, np.nan)
    return SpineAngles(values=values, confidence=conf.astype(np.float32))


def angle_change(reference: SpineAngles, candidate: SpineAngles, names: tuple[str, ...] = ANGLE_NAMES) -> dict:
    """How far ``candidate``'s angles are from ``reference``'s: median / p95 / max of |difference| in degrees
    over every person and angle of ``names`` measured in both (the bundle's "fidelity vs FP32" in degrees)."""
    cols = [ANGLE_NAMES.index(n) for n in names]
    diff = np.abs(_wrap(candidate.values[..., cols] - reference.values[..., cols]))
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return {"spine_deg_median": 0.0, "spine_deg_p95": 0.0, "spine_deg_max": 0.0}
    return {"spine_deg_median": float(np.median(diff)), "spine_deg_p95": float(np.percentile(diff, 95)),
            "spine_deg_max": float(diff.max())}  # fmt: skip

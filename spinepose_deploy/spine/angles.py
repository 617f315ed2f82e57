"""Spine kinematics from SpineTrack keypoints: segment frames, anatomical angles, curvature, inclinations.

Pure numpy, vectorised over any leading shape: keypoints ``(..., 37, 2)`` pixels, scores ``(..., 37)``,
world keypoints ``(..., 37, 3)`` metres in a right-handed frame with y up (``PoseResult.keypoints_3d_world``;
a frame that is not, e.g. upstream's mirror or y-down options, is refused). Angles in degrees.

The chain is the 9 spine keypoints hip (sacral point, pelvis centre) -> spine_01 (~L5) -> spine_02 (~L3) ->
spine_03 (~T12/L1) -> spine_04 (~T8) -> spine_05 (~T3) -> neck (~C7) -> neck_02 (~C3/C4) -> neck_03 (~C1).
The levels are approximate: the points are a network's learned estimates of the spine's course under the
skin, not palpated landmarks.

2D (image plane), normalised to the facing direction so that forward bending is positive whichever way the
person faces: ``facing2d`` is +1 facing image right, -1 facing left (nose vs ears, else toes vs heels; 0 when
neither is seen: image convention, clockwise +). ``bend2d_<point>`` the turn at each inner point; the region
sums; ``trunk_incl2d`` hip -> neck and ``neck_incl2d`` neck -> neck_03 against image up, corrected for the
camera roll when the world vertical is known.

3D (world space), anatomical (docs/spine.md has the pictures). Segment frames, axes X anterior, Y superior,
Z right (ISB): pelvis from the hip joints (Z) and the sacral ``hip`` point (Y, tilted by the neutral
``PELVIS_NEUTRAL_TILT_DEG``); lumbar Y from ``hip`` to ``spine_03`` (T12/L1), Z from the hips; thorax Y from
``spine_04`` (T8) to ``neck`` (C7), Z from the clavicles; head Z from the ears, X towards the nose. Joint
angles are the Cardan decomposition Z-X-Y of the distal frame in the proximal one: ``<joint>_flex`` (flexion
+), ``<joint>_lat`` (bending to the person's left +), ``<joint>_rot`` (turning to the person's left +), for
``lumbar_pelvis`` (no axial rotation: the lumbar spine has no left-right points of its own),
``thorax_pelvis`` and ``head_thorax``. Regional curvature ``<region>_flex`` / ``<region>_lat``: the change
of the chain's tangent between the region's ends, the tangent taken from a smooth fit (cubic in arc length)
through all nine chain points, expressed in the pelvis frame (sagittal angle; elevation out of the sagittal
plane). ``flex_<point>`` / ``lat_<point>``: the same per inner point from the raw segments (noisy; reported).
ISO 11226: ``trunk_incl`` the hip-joint midpoint -> C7 line against vertical (forward +, the pelvis's
forward), ``neck_incl`` C7 -> ear midpoint (tragus) against vertical; ``trunk_lean`` / ``neck_lean`` the same
lines' coronal lean (left +).

Every angle has a confidence: the minimum score of the keypoints it uses. Angles whose confidence is below
the threshold are NaN, so no number is ever made from an invisible point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, SPINE_IDS
from ..ops.world import Vertical

DEFAULT_THR = 0.3  # the lifter's and world frame's visibility threshold
# The sacral ``hip`` point sits above and behind the hip-joint line; the angle of (hip - hip-joint midpoint)
# behind vertical in neutral stance. SpineTrack publishes no value: this is the synthetic figure's
# (synth.skeleton), so on real people pelvis-relative angles carry a constant offset: refer them to a
# neutral posture.
PELVIS_NEUTRAL_TILT_DEG = float(np.degrees(np.arctan2(0.02, 0.03)))

_K = KEYPOINT_INDEX
INNER_POINTS: tuple[str, ...] = tuple(KEYPOINT_NAMES[i] for i in SPINE_IDS[1:-1])
# approximate vertebral level of each chain point (docs/spine.md)
LEVELS: dict[str, str] = dict(zip(
    (KEYPOINT_NAMES[i] for i in SPINE_IDS),
    ("sacrum", "L5", "L3", "T12/L1", "T8", "T3", "C7", "C3/C4", "C1"), strict=True,
))  # fmt: skip
# regions: which inner points' turns are summed in 2D (indices into INNER_POINTS)
REGIONS: dict[str, tuple[int, ...]] = {"lumbar": (0, 1), "thoracic": (2, 3, 4), "cervical": (5, 6)}
# regions in 3D: (first, last) chain index between which the fitted tangent turns
REGION_ENDS: dict[str, tuple[int, int]] = {"lumbar": (0, 3), "thoracic": (3, 6), "cervical": (6, 8)}
JOINTS: dict[str, tuple[str, ...]] = {
    "lumbar_pelvis": ("flex", "lat"), "thorax_pelvis": ("flex", "lat", "rot"), "head_thorax": ("flex", "lat", "rot"),
}  # fmt: skip

NAMES_2D: tuple[str, ...] = (
    *(f"bend2d_{p}" for p in INNER_POINTS), *(f"{r}2d" for r in REGIONS), "trunk_incl2d", "neck_incl2d", "facing2d",
)  # fmt: skip
NAMES_3D: tuple[str, ...] = (
    *(f"{j}_{a}" for j, axes in JOINTS.items() for a in axes),
    *(f"{r}_flex" for r in REGIONS), *(f"{r}_lat" for r in REGIONS),
    "trunk_incl", "trunk_lean", "neck_incl", "neck_lean",
    *(f"flex_{p}" for p in INNER_POINTS), *(f"lat_{p}" for p in INNER_POINTS),
)  # fmt: skip
ANGLE_NAMES: tuple[str, ...] = NAMES_2D + NAMES_3D
# what a spine user reads, by family (the gate's families; per-segment angles are reported, not gated)
FAMILIES: dict[str, tuple[str, ...]] = {
    "inclination": ("trunk_incl", "neck_incl"),
    "flexion": ("lumbar_pelvis_flex", "thorax_pelvis_flex", "head_thorax_flex", "lumbar_flex", "thoracic_flex",
                "cervical_flex"),
    "lateral_axial": ("lumbar_pelvis_lat", "thorax_pelvis_lat", "thorax_pelvis_rot", "head_thorax_lat",
                      "head_thorax_rot", "lumbar_lat", "thoracic_lat", "cervical_lat", "trunk_lean", "neck_lean"),
    "segment": (*(f"flex_{p}" for p in INNER_POINTS), *(f"lat_{p}" for p in INNER_POINTS)),
    "inclination2d": ("trunk_incl2d", "neck_incl2d"),
    "flexion2d": (*(f"{r}2d" for r in REGIONS),),
    "segment2d": tuple(f"bend2d_{p}" for p in INNER_POINTS),
}  # fmt: skip

_CHAIN = np.asarray(SPINE_IDS, dtype=np.int64)
_HIP, _NECK, _C1, _T8, _T12 = _K["hip"], _K["neck"], _K["neck_03"], _K["spine_04"], _K["spine_03"]
_LHIP, _RHIP = _K["left_hip"], _K["right_hip"]
_LCLAV, _RCLAV = _K["left_clavicle"], _K["right_clavicle"]
_LEAR, _REAR, _NOSE = _K["left_ear"], _K["right_ear"], _K["nose"]
_TOES = (_K["left_big_toe"], _K["right_big_toe"])
_HEELS = (_K["left_heel"], _K["right_heel"])


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


def _min_scores(scores: np.ndarray, ids) -> np.ndarray:
    return np.min(scores[..., list(ids)], axis=-1)


def facing_2d(keypoints: np.ndarray, scores: np.ndarray, thr: float = DEFAULT_THR) -> np.ndarray:
    """``(...)`` +1 facing image right, -1 facing left, 0 unknown: the nose ahead of the ears' midpoint, else
    the toes ahead of the heels (image x)."""
    ears = 0.5 * (keypoints[..., _LEAR, 0] + keypoints[..., _REAR, 0])
    head = np.where(_min_scores(scores, (_LEAR, _REAR, _NOSE)) >= thr, keypoints[..., _NOSE, 0] - ears, 0.0)
    toes = keypoints[..., list(_TOES), 0].mean(-1) - keypoints[..., list(_HEELS), 0].mean(-1)
    feet = np.where(_min_scores(scores, (*_TOES, *_HEELS)) >= thr, toes, 0.0)
    return np.sign(np.where(head != 0.0, head, feet))


def _angles_2d(keypoints: np.ndarray, scores: np.ndarray, roll_deg: float, thr: float) -> tuple[np.ndarray, np.ndarray]:
    side = facing_2d(keypoints, scores, thr)
    sign = np.where(side == 0.0, 1.0, side)[..., None]
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
    # against the image of the world vertical: the camera's roll turns it from image up
    incl = _wrap(np.degrees(np.arctan2(lines[..., 0], -lines[..., 1])) - roll_deg)
    incl_conf = np.stack([np.minimum(scores[..., _HIP], scores[..., _NECK]),
                          np.minimum(scores[..., _NECK], scores[..., _C1])], -1)  # fmt: skip
    values = np.concatenate([turns * sign, regions * sign, incl * sign, side[..., None]], axis=-1)
    conf = np.concatenate([turn_conf, region_conf, incl_conf, np.ones_like(side)[..., None]], axis=-1)
    return values, conf


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def segment_frame(y: np.ndarray, z: np.ndarray, z_first: bool = False) -> np.ndarray:
    """``(..., 3, 3)`` rotation whose columns are X anterior, Y along ``y``, Z right along ``z``; the second
    made orthogonal to the first (``z_first``: Z keeps its direction, the longer, steadier lever)."""
    if z_first:
        z = _unit(z)
        y = _unit(y - (y * z).sum(-1, keepdims=True) * z)
    else:
        y = _unit(y)
        z = _unit(z - (z * y).sum(-1, keepdims=True) * y)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def _rz(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def segment_frames(world: np.ndarray) -> dict[str, np.ndarray]:
    """Pelvis, lumbar, thorax and head frames ``(..., 3, 3)`` (columns X anterior, Y superior, Z right)."""
    p = lambda i: world[..., i, :]  # noqa: E731
    hips_mid = 0.5 * (p(_LHIP) + p(_RHIP))
    right = p(_RHIP) - p(_LHIP)
    # (sacral hip - hip-joint midpoint) leans back by the neutral tilt: turn it forward to the pelvis's vertical
    # the hip line (18 cm) first: the sacral point's 4 cm lever only sets the pelvis's sagittal tilt
    pelvis = segment_frame(p(_HIP) - hips_mid, right, z_first=True) @ _rz(-PELVIS_NEUTRAL_TILT_DEG)
    lumbar = segment_frame(p(_T12) - p(_HIP), right)
    thorax = segment_frame(p(_NECK) - p(_T8), p(_RCLAV) - p(_LCLAV))
    ear_axis = _unit(p(_REAR) - p(_LEAR))
    forward = p(_NOSE) - 0.5 * (p(_LEAR) + p(_REAR))
    head = segment_frame(np.cross(ear_axis, forward), ear_axis)
    return {"pelvis": pelvis, "lumbar": lumbar, "thorax": thorax, "head": head}


_FRAME_POINTS = {
    "pelvis": (_LHIP, _RHIP, _HIP), "lumbar": (_LHIP, _RHIP, _HIP, _T12), "thorax": (_NECK, _T8, _LCLAV, _RCLAV),
    "head": (_LEAR, _REAR, _NOSE),
}  # fmt: skip


def cardan_zxy(proximal: np.ndarray, distal: np.ndarray) -> np.ndarray:
    """``(..., 3)`` flexion (+), lateral bending (left +), axial rotation (left +) in degrees: the Z-X-Y
    Cardan angles of ``distal`` in ``proximal`` (frames ``(..., 3, 3)``, columns X anterior, Y up, Z right)."""
    r = np.swapaxes(proximal, -1, -2) @ distal
    about_z = np.arctan2(-r[..., 0, 1], r[..., 1, 1])  # + turns Y backwards: extension
    about_x = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))  # + turns Y to the right
    about_y = np.arctan2(-r[..., 2, 0], r[..., 2, 2])  # + turns X to the left
    return np.degrees(np.stack([-about_z, -about_x, about_y], axis=-1))


def _tangents(points: np.ndarray) -> np.ndarray:
    """Unit tangents ``(..., 9, 3)`` of a cubic least-squares fit (in chord length) through chain ``points``: a
    cubic holds the lordosis-kyphosis S; a quartic followed 5 mm point noise twice as much (lumbar 6 vs 2.6
    degrees median), a quadratic cannot bend both ways."""
    chord = np.linalg.norm(np.diff(points, axis=-2), axis=-1)
    s = np.concatenate([np.zeros(chord.shape[:-1] + (1,)), np.cumsum(chord, axis=-1)], axis=-1)
    s = s / np.maximum(s[..., -1:], 1e-12)
    powers = np.arange(4)
    basis = s[..., None] ** powers  # (..., 9, 4)
    gram = np.swapaxes(basis, -1, -2) @ basis + 1e-9 * np.eye(len(powers))  # a collapsed chain stays solvable
    coef = np.linalg.solve(gram, np.swapaxes(basis, -1, -2) @ points)  # (..., 4, 3)
    slope = powers[1:] * s[..., None] ** (powers[1:] - 1)  # d basis / ds, (..., 9, 3)
    return _unit(slope @ coef[..., 1:, :])


def _sagittal_coronal(direction: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions ``(..., M, 3)`` in ``frame``: sagittal angle from Y (forward +) and elevation out of the
    sagittal plane (left +), degrees. The elevation has no singularity when the direction is near horizontal."""
    local = np.einsum("...ji,...mj->...mi", frame, direction)  # (X, Y, Z) components
    sag = np.degrees(np.arctan2(local[..., 0], local[..., 1]))
    cor = np.degrees(np.arcsin(np.clip(-local[..., 2] / np.maximum(np.linalg.norm(local, axis=-1), 1e-12), -1, 1)))
    return sag, cor


def _incline(line: np.ndarray, forward: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle of ``line`` from world vertical, signed by its forward component, and its coronal lean (left +)."""
    line = _unit(line)
    up = np.clip(line[..., 1], -1.0, 1.0)
    ahead = (line * forward).sum(-1)
    incl = np.degrees(np.arccos(up)) * np.where(ahead < 0.0, -1.0, 1.0)
    lean = np.degrees(np.arctan2((line * left).sum(-1), up))
    return incl, lean


def _angles_3d(world: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = segment_frames(world)
    frame_conf = {name: _min_scores(scores, ids) for name, ids in _FRAME_POINTS.items()}
    values, confs = [], []
    for joint, axes in JOINTS.items():
        distal, proximal = joint.split("_")
        angles = cardan_zxy(frames[proximal], frames[distal])
        conf = np.minimum(frame_conf[proximal], frame_conf[distal])
        for i, _ in enumerate(axes):
            values.append(angles[..., i])
            confs.append(conf)
    pelvis = frames["pelvis"]
    chain = world[..., _CHAIN, :]
    chain_conf = scores[..., _CHAIN]
    sag, cor = _sagittal_coronal(_tangents(chain), pelvis)
    all_conf = np.minimum(chain_conf.min(-1), frame_conf["pelvis"])
    for series in (sag, cor):
        for first, last in REGION_ENDS.values():
            values.append(_wrap(series[..., last] - series[..., first]))
            confs.append(all_conf)
    # inclinations against world vertical; forward / left of the pelvis made horizontal
    up = np.array([0.0, 1.0, 0.0])
    horizontal = lambda v: _unit(v - v[..., 1:2] * up)  # noqa: E731
    forward, left = horizontal(pelvis[..., :, 0]), horizontal(-pelvis[..., :, 2])
    hips_mid = 0.5 * (world[..., _LHIP, :] + world[..., _RHIP, :])
    ears_mid = 0.5 * (world[..., _LEAR, :] + world[..., _REAR, :])
    trunk_conf = np.minimum(_min_scores(scores, (_LHIP, _RHIP, _NECK)), frame_conf["pelvis"])
    neck_conf = np.minimum(_min_scores(scores, (_NECK, _LEAR, _REAR)), frame_conf["pelvis"])
    for line, conf in ((world[..., _NECK, :] - hips_mid, trunk_conf), (ears_mid - world[..., _NECK, :], neck_conf)):
        values.extend(_incline(line, forward, left))
        confs.extend((conf, conf))
    seg_sag, seg_cor = _sagittal_coronal(np.diff(chain, axis=-2), pelvis)
    turn_conf, _ = _chain_conf(scores)
    turn_conf = np.minimum(turn_conf, frame_conf["pelvis"][..., None])
    turns = np.concatenate([_turns(seg_sag), _wrap(np.diff(seg_cor, axis=-1))], axis=-1)
    out = np.concatenate([np.stack(values, -1), turns], axis=-1)
    conf = np.concatenate([np.stack(confs, -1), turn_conf, turn_conf], axis=-1)
    return out, conf


def check_world_frame(vertical: Vertical | None) -> None:
    """Refuse a world frame that is not right-handed with y up (upstream's mirror and y-down options)."""
    if vertical is not None and not vertical.y_up:
        raise InvalidOptionError(
            f"spine angles: the world frame ({vertical.source}) is not right-handed with y up; 3D angles need one "
            "(drop keep_camera_orientation / ground_plane=False, or leave seed_compat)"
        )


def spine_angles(
    keypoints: np.ndarray,
    scores: np.ndarray,
    world: np.ndarray | None = None,
    *,
    thr: float = DEFAULT_THR,
    vertical: Vertical | None = None,
) -> SpineAngles:
    """All spine angles for people ``keypoints (..., 37, 2)`` with ``scores (..., 37)``.

    ``world (..., 37, 3)`` (metres, right-handed, y up) adds the 3D angles; without it they are NaN.
    ``vertical`` (the world frame's, ``ops.world.Vertical``) corrects the 2D inclinations for the camera roll
    and refuses a frame that is not y-up. Angles whose confidence is below ``thr`` are NaN.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if keypoints.shape[-2:] != (len(KEYPOINT_NAMES), 2) or scores.shape != keypoints.shape[:-1]:
        raise ValueError(
            f"spine_angles: keypoints {keypoints.shape} and scores {scores.shape}; expected (..., 37, 2) and (..., 37)"
        )
    if world is not None:
        check_world_frame(vertical)
    roll = 0.0 if vertical is None or vertical.roll_deg is None else float(vertical.roll_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        values_2d, conf_2d = _angles_2d(keypoints, scores, roll, thr)
        if world is None:
            values_3d = np.full(scores.shape[:-1] + (len(NAMES_3D),), np.nan)
            conf_3d = np.zeros_like(values_3d)
        else:
            world = np.asarray(world, dtype=np.float64)
            if world.shape != keypoints.shape[:-1] + (3,):
                raise ValueError(f"spine_angles: world {world.shape}; expected {keypoints.shape[:-1] + (3,)}")
            values_3d, conf_3d = _angles_3d(world, scores)
    values = np.concatenate([values_2d, values_3d], axis=-1)
    conf = np.concatenate([conf_2d, conf_3d], axis=-1)
    values = np.where(conf >= thr, values, np.nan)
    return SpineAngles(values=values, confidence=conf.astype(np.float32))


def angle_change(reference: SpineAngles, candidate: SpineAngles, names: tuple[str, ...] = ANGLE_NAMES) -> dict:
    """How far ``candidate``'s angles are from ``reference``'s: median / p95 / max of |difference| in degrees
    over every person and angle of ``names`` measured in both (the bundle's "fidelity vs FP32" in degrees)."""
    cols = [ANGLE_NAMES.index(n) for n in names if n != "facing2d"]
    diff = np.abs(_wrap(candidate.values[..., cols] - reference.values[..., cols]))
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return {"spine_deg_median": 0.0, "spine_deg_p95": 0.0, "spine_deg_max": 0.0}
    return {"spine_deg_median": float(np.median(diff)), "spine_deg_p95": float(np.percentile(diff, 95)),
            "spine_deg_max": float(diff.max())}  # fmt: skip

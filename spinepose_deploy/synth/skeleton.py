"""A 3D kinematic skeleton in the 37-keypoint SpineTrack layout, posed randomly within joint limits.

Body frame: origin at the hip keypoint (19, pelvis centre), x towards the person's left, y up, z forward
(the way the person faces), metres. The spine is a chain of 8 segments hip -> L5 -> L3 -> T12/L1 -> T8 ->
T3 -> C7 (neck) -> C3/C4 -> C1 whose bends (flexion, lateral, twist) are shared out along the chain;
arms, legs, feet and the head hang off it with per-joint angles drawn inside plausible limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, SPINE_IDS

_K = KEYPOINT_INDEX
# rest offsets of the spine segments in their parent's frame (lumbar lordosis, thoracic kyphosis)
_SPINE_OFFSETS = np.array([
    (0.0, 0.07, -0.010), (0.0, 0.08, 0.010), (0.0, 0.09, 0.005), (0.0, 0.12, -0.015),
    (0.0, 0.12, -0.020), (0.0, 0.06, 0.010), (0.0, 0.05, 0.015), (0.0, 0.04, 0.005),
])  # fmt: skip
# share of the total spine bend each joint takes (lumbar 3, thoracic 2, cervical 3)
_SPINE_SHARE = np.array([0.12, 0.14, 0.14, 0.12, 0.10, 0.14, 0.12, 0.12])
_DEG = np.pi / 180.0

# radii (metres) of the drawn body parts, used by the renderer and for boxes
PART_RADIUS = {"upper_arm": 0.045, "forearm": 0.035, "thigh": 0.075, "shin": 0.055, "neck": 0.05,
               "head": 0.10, "spine": 0.03}


def rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Body:
    """Proportions of one person (metres)."""

    scale: float = 1.0  # overall size (1.0 ~ 1.75 m tall)
    shoulder: float = 0.17  # half shoulder width
    hip: float = 0.09  # half hip width
    upper_arm: float = 0.29
    forearm: float = 0.25
    thigh: float = 0.44
    shin: float = 0.42
    foot: float = 0.16


def sample_body(rng: np.random.Generator) -> Body:
    """Random proportions: height about 1.5-1.95 m, limbs +-6 %."""
    j = lambda: rng.uniform(0.94, 1.06)  # noqa: E731
    base = Body()
    return Body(scale=rng.uniform(0.86, 1.11), shoulder=base.shoulder * j(), hip=base.hip * j(),
                upper_arm=base.upper_arm * j(), forearm=base.forearm * j(), thigh=base.thigh * j(),
                shin=base.shin * j(), foot=base.foot * j())


@dataclass(frozen=True)
class Pose:
    """Joint angles in radians; see :func:`sample_pose` for their limits."""

    spine: tuple[float, float, float]  # total flexion (forward +), lateral bend, twist
    head: tuple[float, float, float]  # yaw, pitch (down +), roll
    arms: tuple[tuple[float, float, float, float], tuple[float, float, float, float]]  # (abd, flex, twist, elbow)
    legs: tuple[tuple[float, float, float, float, float], tuple[float, float, float, float, float]]
    # legs: (abduction, flexion, rotation, knee flexion, ankle)


def sample_pose(rng: np.random.Generator) -> Pose:
    """A random pose inside plausible joint limits (degrees in the comments)."""
    u = rng.uniform
    spine = (u(-15, 50) * _DEG, u(-25, 25) * _DEG, u(-35, 35) * _DEG)
    head = (u(-70, 70) * _DEG, u(-35, 45) * _DEG, u(-25, 25) * _DEG)
    arms = tuple((u(0, 160) * _DEG, u(-40, 160) * _DEG, u(-60, 90) * _DEG, u(0, 145) * _DEG) for _ in range(2))
    crouch = rng.random() < 0.2  # squats and sitting-like poses: both hips and knees flexed
    legs = []
    for _ in range(2):
        flex = u(40, 115) if crouch else u(-25, 70)
        knee = u(60, 140) if crouch else u(0, 110)
        legs.append((u(-10, 40) * _DEG, flex * _DEG, u(-30, 40) * _DEG, knee * _DEG, u(-25, 25) * _DEG))
    return Pose(spine, head, arms, tuple(legs))  # type: ignore[arg-type]


def sample_standing_pose(rng: np.random.Generator) -> Pose:
    """A random upright pose of the kind spine users film (standing, walking, bending, lifting): legs near
    straight with flat feet, the spine anywhere from extension to a deep forward bend, with side bend and twist."""
    u = rng.uniform
    spine = (u(-20, 85) * _DEG, u(-35, 35) * _DEG, u(-45, 45) * _DEG)
    head = (u(-50, 50) * _DEG, u(-30, 45) * _DEG, u(-20, 20) * _DEG)
    arms = tuple((u(0, 90) * _DEG, u(-40, 120) * _DEG, u(-30, 60) * _DEG, u(0, 120) * _DEG) for _ in range(2))
    legs = tuple((u(-5, 15) * _DEG, u(-30, 35) * _DEG, u(-15, 15) * _DEG, u(0, 50) * _DEG, 0.0) for _ in range(2))
    return Pose(spine, head, arms, legs)  # type: ignore[arg-type]


def forward_kinematics(body: Body, pose: Pose, flat_feet: bool = False) -> np.ndarray:
    """Keypoints ``(37, 3)`` in the body frame (metres) for ``body`` in ``pose``.

    ``flat_feet``: the foot keeps the pelvis's pitch (turned only by the hip's rotation and the ankle angle)
    and the heel is level with the toes, as a person standing or walking on a floor; otherwise (the training
    scenes) the foot follows the leg's flexion.
    """
    out = np.zeros((NUM_KEYPOINTS, 3))
    flex, lateral, twist = pose.spine
    # spine chain: each joint takes its share of the bend; flexion bends forward (towards +z)
    frames = [np.eye(3)]
    pos = np.zeros(3)
    for offset, share, kid in zip(_SPINE_OFFSETS, _SPINE_SHARE, SPINE_IDS[1:], strict=True):
        frame = frames[-1] @ ry(twist * share) @ rz(-lateral * share) @ rx(flex * share)
        pos = pos + frame @ offset * body.scale
        out[kid] = pos
        frames.append(frame)
    chest = frames[5]  # frame of the T3 segment (spine_05)
    s5, s4, c1 = out[_K["spine_05"]], out[_K["spine_04"]], out[_K["neck_03"]]
    sc = body.scale
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out[_K[f"{side}_clavicle"]] = s5 + chest @ np.array([sign * 0.07, 0.0, 0.07]) * sc
        shoulder = s5 + chest @ np.array([sign * body.shoulder, -0.03, 0.04]) * sc
        out[_K[f"{side}_shoulder"]] = shoulder
        out[_K[f"{side}_latissimus"]] = s4 + frames[4] @ np.array([sign * 0.12, -0.04, 0.0]) * sc
        abd, aflex, atwist, elbow = pose.arms[0 if sign > 0 else 1]
        arm = chest @ rz(sign * abd) @ rx(-aflex) @ ry(sign * atwist)
        elbow_pos = shoulder + arm @ np.array([0.0, -body.upper_arm, 0.0]) * sc
        out[_K[f"{side}_elbow"]] = elbow_pos
        out[_K[f"{side}_wrist"]] = elbow_pos + arm @ np.array([0.0, -np.cos(elbow), np.sin(elbow)]) * body.forearm * sc
        # legs hang from the pelvis frame (the hip keypoint's frame is the identity)
        habd, hflex, hrot, knee, ankle = pose.legs[0 if sign > 0 else 1]
        hip = np.array([sign * body.hip, -0.03, 0.02]) * sc
        out[_K[f"{side}_hip"]] = hip
        leg = rz(sign * habd) @ rx(-hflex) @ ry(sign * hrot)
        knee_pos = hip + leg @ np.array([0.0, -body.thigh, 0.0]) * sc
        out[_K[f"{side}_knee"]] = knee_pos
        ankle_pos = knee_pos + leg @ np.array([0.0, -np.cos(knee), -np.sin(knee)]) * body.shin * sc
        out[_K[f"{side}_ankle"]] = ankle_pos
        foot = ry(sign * hrot) @ rx(-ankle) if flat_feet else leg @ rx(knee) @ rx(-ankle)
        heel_drop = -0.07 if flat_feet else -0.06
        out[_K[f"{side}_heel"]] = ankle_pos + foot @ np.array([0.0, heel_drop, -0.05]) * sc
        out[_K[f"{side}_big_toe"]] = ankle_pos + foot @ np.array([-sign * 0.02, -0.07, body.foot]) * sc
        out[_K[f"{side}_small_toe"]] = ankle_pos + foot @ np.array([sign * 0.035, -0.07, body.foot * 0.8]) * sc
    yaw, pitch, roll = pose.head
    head = frames[-1] @ ry(yaw) @ rx(pitch) @ rz(roll)
    out[_K["head"]] = c1 + head @ np.array([0.0, 0.17, 0.0]) * sc
    out[_K["nose"]] = c1 + head @ np.array([0.0, 0.05, 0.11]) * sc
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out[_K[f"{side}_eye"]] = c1 + head @ np.array([sign * 0.032, 0.085, 0.085]) * sc
        out[_K[f"{side}_ear"]] = c1 + head @ np.array([sign * 0.075, 0.06, 0.0]) * sc
    return out


def head_centre(keypoints: np.ndarray) -> np.ndarray:
    """Centre of the head sphere ``(3,)``: between C1 and the head top, a little forward (towards the nose)."""
    c1, top, nose = keypoints[_K["neck_03"]], keypoints[_K["head"]], keypoints[_K["nose"]]
    return 0.5 * (c1 + top) + 0.25 * (nose - 0.5 * (c1 + top))


def body_to_camera(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation body frame -> camera frame (x right, y down, z forward); yaw 0 faces the camera."""
    flip = np.diag([1.0, -1.0, -1.0])  # person's left -> image right, up -> -y, forward -> towards camera
    return rz(roll) @ rx(pitch) @ flip @ ry(yaw)


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera-space points ``(..., 3)`` -> pixels ``(..., 2)`` with the pinhole ``intrinsics`` (3, 3)."""
    k = np.asarray(intrinsics, dtype=np.float64)
    z = np.maximum(points[..., 2], 1e-6)
    return np.stack([k[0, 0] * points[..., 0] / z + k[0, 2], k[1, 1] * points[..., 1] / z + k[1, 2]], axis=-1)

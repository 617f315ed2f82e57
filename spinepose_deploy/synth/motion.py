"""Synthetic video with known 3D: one figure walking, bending forward, bending sideways or twisting.

The figure stands on a floor: feet flat (heel level with the toes), a standing foot does not slide (the body
moves by what the standing foot pushes). Clips are filmed by one of :data:`CAMERAS` (height, pitch -10..+30
degrees, roll +-8, yaw around the figure); ``Clip.vertical`` is the true world vertical in that camera.

A :class:`Clip` holds, per frame, the figure's keypoints in its own body frame (x left, y up, z forward,
pelvis upright), in the world (y up, ground at y = 0, feet on it) and in the camera, plus the pixels and
visibility, and the reference spine angles from the kinematic model (``truth``: the angle definitions of
:mod:`spinepose_deploy.spine.angles` evaluated in the exact body frame, float64, before any camera).
``frames()`` renders the frames with the scene renderer (one fixed background and figure colouring).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import KEYPOINT_INDEX
from ..ops.world import Vertical
from ..spine.angles import NAMES_2D, spine_angles
from . import skeleton as sk
from .render import RenderConfig, Scene, _background, _distractors, draw_figures

MOTIONS = ("walk", "bend", "side_bend", "twist")
_DEG = np.pi / 180.0
_FEET = [KEYPOINT_INDEX[n] for n in ("left_heel", "right_heel", "left_big_toe", "right_big_toe",
                                     "left_small_toe", "right_small_toe")]  # fmt: skip
# how each motion is seen: yaw of the body from facing the camera (90: the camera sees its left side)
_VIEW_DEG = {"walk": 60.0, "bend": 90.0, "side_bend": 0.0, "twist": 25.0}
_HW = (480, 640)
_DFOV_DEG = 70.0
_TARGET = np.array([0.0, 0.9, 0.0])  # where every camera aims (world metres)


@dataclass(frozen=True)
class Camera:
    """A camera aimed at the figure: ``pitch`` down +, ``roll`` about the optical axis (the world vertical then
    leans clockwise on screen, +), ``yaw`` around the figure from straight ahead, ``distance`` metres."""

    pitch: float
    roll: float = 0.0
    yaw: float = 0.0
    distance: float = 4.2


# "level" is the original benchmark camera (1.3 m high, 4.2 m away, aimed at hip height: pitched 5.4 deg)
CAMERAS: dict[str, Camera] = {
    "level": Camera(float(np.degrees(np.arctan2(0.4, 4.2)))),
    "high": Camera(30.0, 0.0, 20.0, 4.5),
    "rolled": Camera(12.0, 8.0, -25.0, 4.0),
    "low": Camera(-10.0, -5.0, 10.0, 4.0),
    "oblique": Camera(20.0, -8.0, 45.0, 5.0),
}


@dataclass(frozen=True)
class Clip:
    """``T`` frames of one figure. Points are ``(T, 37, 3)`` metres; ``pixels (T, 37, 2)``; ``truth (T, A3)``."""

    motion: str
    camera_name: str
    fps: float
    intrinsics: np.ndarray  # (3, 3)
    world_to_camera: np.ndarray  # (4, 4)
    body: np.ndarray
    world: np.ndarray
    camera: np.ndarray
    pixels: np.ndarray
    truth: np.ndarray  # the 3D angles (spine.angles.NAMES_3D order) from the kinematic model
    truth_2d: np.ndarray  # the 2D angles (NAMES_2D order) of the exact projection
    seed: int = 0

    def __len__(self) -> int:
        return len(self.body)

    @property
    def vertical(self) -> Vertical:
        """The true world vertical in this clip's camera."""
        up = self.world_to_camera[:3, 1]
        return Vertical(tuple(float(v) for v in up), "truth", 0.0)

    def frames(self, config: RenderConfig = RenderConfig()) -> Iterator[Scene]:
        """Rendered frames; the background, distractors and figure colours are the same in every frame."""
        for t in range(len(self)):
            rng = np.random.default_rng(np.random.SeedSequence([0xC11D, self.seed]))
            img = _background(rng, _HW[0], _HW[1], config)
            _distractors(img, rng, config.distractors)
            yield draw_figures(img, [self.camera[t]], self.intrinsics, rng, config, seed=t)


def _pose(motion: str, phase: float) -> sk.Pose:
    """Joint angles at ``phase`` (0..1 over the clip); two cycles of each motion."""
    s = np.sin(2 * np.pi * 2 * phase)
    c = np.sin(2 * np.pi * 2 * phase + np.pi / 2)
    hang = ((8 * _DEG, 0.0, 0.0, 15 * _DEG), (8 * _DEG, 0.0, 0.0, 15 * _DEG))
    straight = ((5 * _DEG, 0.0, 0.0, 5 * _DEG, 0.0), (5 * _DEG, 0.0, 0.0, 5 * _DEG, 0.0))
    if motion == "walk":
        spine = ((6 + 3 * c) * _DEG, 4 * s * _DEG, 12 * s * _DEG)
        arms = ((10 * _DEG, 30 * s * _DEG, 0.0, 25 * _DEG), (10 * _DEG, -30 * s * _DEG, 0.0, 25 * _DEG))
        knee = lambda x: (10 + 45 * max(0.0, x)) * _DEG  # noqa: E731
        legs = ((4 * _DEG, -25 * s * _DEG, 0.0, knee(-s), 0.0), (4 * _DEG, 25 * s * _DEG, 0.0, knee(s), 0.0))
        return sk.Pose(spine, (0.0, 8 * _DEG, 0.0), arms, legs)
    if motion == "bend":
        flex = 35 * (1 - np.cos(2 * np.pi * 2 * phase)) * _DEG  # 0 .. 70 degrees and back, twice
        arms = ((8 * _DEG, 0.7 * flex, 0.0, 15 * _DEG),) * 2
        return sk.Pose((flex, 0.0, 0.0), (0.0, 10 * _DEG, 0.0), arms, straight)  # type: ignore[arg-type]
    if motion == "side_bend":
        return sk.Pose((5 * _DEG, 30 * s * _DEG, 0.0), (0.0, 5 * _DEG, 0.0), hang, straight)  # type: ignore[arg-type]
    if motion == "twist":
        arms = ((70 * _DEG, 20 * _DEG, 0.0, 90 * _DEG),) * 2
        return sk.Pose((5 * _DEG, 0.0, 40 * s * _DEG), (0.0, 5 * _DEG, 0.0), arms, straight)  # type: ignore[arg-type]
    raise ValueError(f"motion: '{motion}' is not one of {', '.join(MOTIONS)}")


def camera_pose(camera: Camera, target: np.ndarray = _TARGET) -> np.ndarray:
    """World (y up) -> camera ``(4, 4)`` of ``camera`` aimed at ``target``."""
    yaw, pitch = camera.yaw * _DEG, camera.pitch * _DEG
    look = np.array([-np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    transform = look_at(target - camera.distance * look, target)
    transform[:3] = sk.rz(camera.roll * _DEG) @ transform[:3]  # rolled: the vertical turns clockwise on screen
    return transform


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World (y up) -> camera (x right, y down, z forward) ``(4, 4)``: a camera at ``position`` aimed at ``target``."""
    z = (target - position) / np.linalg.norm(target - position)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    transform = np.eye(4)
    transform[:3, :3] = np.stack([x, y, z])
    transform[:3, 3] = -transform[:3, :3] @ position
    return transform


def _grounded(body: np.ndarray, yaw: float, travel: bool) -> np.ndarray:
    """Body-frame keypoints ``(T, 37, 3)`` -> world: turned by ``yaw``, the lowest foot point on the ground, and
    (``travel``) moved so that the standing (lower) foot keeps its place on the floor."""
    world = body @ sk.ry(yaw).T
    world[..., 1] -= world[:, _FEET, 1].min(axis=1)[:, None]
    if travel:
        left, right = _FEET[0::2], _FEET[1::2]
        shift = np.zeros(3)
        for t in range(1, len(world)):
            stance = left if world[t, left, 1].mean() <= world[t, right, 1].mean() else right
            step = world[t - 1, stance].mean(axis=0) - (world[t, stance].mean(axis=0) + shift)
            shift = shift + np.array([step[0], 0.0, step[2]])
            world[t] += shift
        world -= world[:, 19].mean(axis=0) * np.array([1.0, 0.0, 1.0])  # the path centred on the origin
    return world


def make_clip(motion: str, frames: int = 48, fps: float = 24.0, seed: int = 0, camera: str = "level") -> Clip:
    """``frames`` frames of ``motion`` (one of :data:`MOTIONS`) by a figure of default proportions, filmed by
    ``CAMERAS[camera]``."""
    if motion not in MOTIONS:
        raise ValueError(f"motion: '{motion}' is not one of {', '.join(MOTIONS)}")
    if camera not in CAMERAS:
        raise ValueError(f"camera: '{camera}' is not one of {', '.join(CAMERAS)}")
    body_model = sk.Body()
    cam = CAMERAS[camera]
    yaw = np.pi + (_VIEW_DEG[motion] + cam.yaw) * _DEG  # pi: facing the camera
    poses = [_pose(motion, t / frames) for t in range(frames)]
    body = np.stack([sk.forward_kinematics(body_model, pose, flat_feet=True) for pose in poses])
    world = _grounded(body, yaw, travel=motion == "walk")
    extrinsics = camera_pose(cam)
    camera_pts = world @ extrinsics[:3, :3].T + extrinsics[:3, 3]
    h, w = _HW
    f = 0.5 * np.hypot(w, h) / np.tan(0.5 * _DFOV_DEG * _DEG)
    k = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
    pixels = sk.project(camera_pts, k)
    ones = np.ones(body.shape[:2])
    truth_up = Vertical(tuple(float(v) for v in extrinsics[:3, 1]), "truth", 0.0)
    angles = spine_angles(pixels, ones, body)  # in the body frame: the kinematic model's own axes
    angles_2d = spine_angles(pixels, ones, vertical=truth_up)  # the exact projection, roll taken out
    return Clip(
        motion=motion, camera_name=camera, fps=float(fps), intrinsics=k, world_to_camera=extrinsics, body=body,
        world=world, camera=camera_pts, pixels=pixels, truth=angles.values[:, len(NAMES_2D):],
        truth_2d=angles_2d.values[:, :len(NAMES_2D)], seed=int(seed),
    )  # fmt: skip

"""Training samples and the fixed held-out set built from rendered scenes.

Pose samples are person crops made by the pipeline's own :func:`~spinepose_deploy.ops.pose.crop_batch`
from ground-truth boxes, so training preprocessing equals inference preprocessing. Lifter samples need no
image: posed skeletons in camera space give normalised coordinates ``(X/Z, Y/Z)`` (what
:func:`~spinepose_deploy.ops.lifter.lifter_feed` computes from pixels and intrinsics) and root-relative
3D targets in metres.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ops.lifter import gravity_rotation
from ..ops.pose import POSE_MEAN, POSE_STD, crop_batch, image_to_crop
from ..ops.skeleton import NUM_KEYPOINTS, ROOT_ID
from ..ops.world import Vertical
from . import skeleton as sk
from .render import RenderConfig, Scene, place_figure, place_rotated, render_scene, sample_intrinsics

HELDOUT_SEED = 1_000_000  # scene seeds from here on are never used for training
HELDOUT_SCENES = 200
MIN_BOX_PX = 32.0  # people smaller than this (longer box side) are not evaluated or trained on
MIN_VISIBLE = 8  # ... nor those with fewer visible keypoints


@dataclass
class PersonSet:
    """People from a list of scenes: index into the scene list plus their ground truth.

    scene: ``(N,)`` int. boxes: ``(N, 4)``. keypoints: ``(N, 37, 2)`` image pixels. visible: ``(N, 37)``.
    keypoints_3d: ``(N, 37, 3)`` camera metres. intrinsics: ``(N, 3, 3)``.
    """

    scene: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    keypoints_3d: np.ndarray
    intrinsics: np.ndarray

    def __len__(self) -> int:
        return len(self.scene)


def usable(scene: Scene) -> np.ndarray:
    """``(N,)`` bool: people big and visible enough to evaluate (box side >= 32 px, >= 8 visible keypoints)."""
    size = (scene.boxes[:, 2:] - scene.boxes[:, :2]).max(axis=1) if len(scene.boxes) else np.zeros(0)
    return (size >= MIN_BOX_PX) & (scene.visible.sum(axis=1) >= MIN_VISIBLE)


def heldout_scenes(count: int = HELDOUT_SCENES, seed: int = HELDOUT_SEED) -> list[Scene]:
    """The fixed held-out set: scenes ``seed .. seed + count - 1`` with the default config."""
    return [render_scene(seed + i) for i in range(count)]


def people(scenes: list[Scene]) -> PersonSet:
    """Gather the usable people of ``scenes``."""
    rows = [(i, j) for i, scene in enumerate(scenes) for j in np.flatnonzero(usable(scene))]
    pick = lambda attr: np.asarray([getattr(scenes[i], attr)[j] for i, j in rows], np.float32)  # noqa: E731
    return PersonSet(
        scene=np.asarray([i for i, _ in rows], np.int64),
        boxes=pick("boxes").reshape(-1, 4),
        keypoints=pick("keypoints").reshape(-1, NUM_KEYPOINTS, 2),
        visible=np.asarray([scenes[i].visible[j] for i, j in rows], bool).reshape(-1, NUM_KEYPOINTS),
        keypoints_3d=pick("keypoints_3d").reshape(-1, NUM_KEYPOINTS, 3),
        intrinsics=np.asarray([scenes[i].intrinsics for i, _ in rows], np.float32).reshape(-1, 3, 3),
    )


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator, scale: float = 0.1, shift: float = 0.05) -> np.ndarray:
    """Boxes ``(N, 4)`` resized by up to ``scale`` and moved by up to ``shift`` of their size (detector error)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    size = size * rng.uniform(1 - scale, 1 + scale, (len(boxes), 1))
    centre = centre + size * rng.uniform(-shift, shift, (len(boxes), 2))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)


def pose_batch(
    scene: Scene, boxes: np.ndarray, rows: np.ndarray, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of people ``rows`` at ``boxes`` (RGB, normalised) and their keypoints in crop pixels.

    Returns ``(batch (M, 3, H, W) float32, keypoints (M, 37, 2) crop pixels, visible (M, 37) bool)``.
    """
    batch, centers, scales = crop_batch(scene.image, boxes, input_hw, POSE_MEAN, POSE_STD, "rgb")
    kpts = image_to_crop(scene.keypoints[rows], centers, scales, input_hw)
    return batch, kpts, scene.visible[rows]


def pose_samples(
    start_seed: int, input_hw: tuple[int, int], config: RenderConfig = RenderConfig(), jitter: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (crop (3, H, W), keypoints (37, 2) crop px, visible (37,)) for training, scene after scene."""
    seed = start_seed
    while True:
        if seed >= HELDOUT_SEED and start_seed < HELDOUT_SEED:
            raise RuntimeError(f"training seeds reached the held-out range at {HELDOUT_SEED}")
        scene = render_scene(seed, config)
        rows = np.flatnonzero(usable(scene))
        seed += 1
        if len(rows) == 0:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([0xB0C5, seed]))
        boxes = jitter_boxes(scene.boxes[rows], rng) if jitter else scene.boxes[rows]
        batch, kpts, vis = pose_batch(scene, boxes, rows, input_hw)
        yield from zip(batch, kpts, vis, strict=True)


LIFTER_PITCH_DEG = (-15.0, 35.0)  # cameras from looking up to high and pitched down (issue 22's benchmark cameras)
LEVEL_ROLL_DEG = 10.0
LEVEL_TILT_DEG = 8.0  # how far a figure's pelvis leans from the vertical in the level samples
_DEG = np.pi / 180.0


def lifter_samples(
    count: int,
    seed: int,
    config: RenderConfig = RenderConfig(),
    drop: float = 0.1,
    standing: float = 0.4,
    level: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random skeletons seen by random cameras, no rendering; a ``standing`` share of them upright
    with flat feet (``sk.sample_standing_pose``), the rest anywhere within joint limits.

    Returns ``(xy_norm (N, 37, 2), visible (N, 37) bool, target (N, 37, 3))``: normalised camera coordinates
    with invisible points zeroed (out of the image, plus a random ``drop`` share standing in for occlusion
    and low scores), and root-relative camera-space keypoints in metres. A ``level`` share is seen as the
    pipeline feeds the lifter once it knows the vertical (``ops.lifter.level_feed``): a camera pitched
    ``LIFTER_PITCH_DEG`` and rolled up to ``LEVEL_ROLL_DEG`` films a figure standing within ``LEVEL_TILT_DEG``
    of the vertical, and its rays are turned into the level virtual camera (points and target in that frame).
    """
    rng = np.random.default_rng(np.random.SeedSequence([0x11F7, int(seed)]))
    xy = np.zeros((count, NUM_KEYPOINTS, 2), np.float32)
    vis = np.zeros((count, NUM_KEYPOINTS), bool)
    target = np.zeros((count, NUM_KEYPOINTS, 3), np.float32)
    for n in range(count):
        height, width = config.image_sizes[rng.integers(len(config.image_sizes))]
        k = sample_intrinsics(rng, height, width, config)
        body_model = sk.sample_body(rng)
        upright = rng.random() < standing
        pose = sk.sample_standing_pose(rng) if upright else sk.sample_pose(rng)
        body = sk.forward_kinematics(body_model, pose, flat_feet=upright)
        if rng.random() < level:
            pitch, roll = rng.uniform(*LIFTER_PITCH_DEG), rng.uniform(-LEVEL_ROLL_DEG, LEVEL_ROLL_DEG)
            tilt = sk.rz(rng.uniform(-LEVEL_TILT_DEG, LEVEL_TILT_DEG) * _DEG) @ sk.rx(
                rng.uniform(-LEVEL_TILT_DEG, LEVEL_TILT_DEG) * _DEG
            )
            rot = sk.body_to_camera(rng.uniform(-np.pi, np.pi), pitch * _DEG, roll * _DEG) @ tilt
            pts = place_rotated(rng, body, rot, k, (height, width), config)
            up = Vertical.from_pitch_roll(pitch, roll).up
            to_level = gravity_rotation(up)
        else:
            pts = place_figure(rng, body, k, (height, width), config, LIFTER_PITCH_DEG)
            to_level = None
        uv = sk.project(pts, k)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        keep = inside & (rng.random(NUM_KEYPOINTS) >= rng.uniform(0, drop))
        if to_level is not None:
            pts = pts @ to_level.T
        xy[n] = (pts[:, :2] / pts[:, 2:3]) * keep[:, None]
        vis[n] = keep
        target[n] = pts - pts[ROOT_ID]
    return xy, vis, target

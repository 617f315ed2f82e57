"""Synthetic video with ground truth: figures walking across a fixed scene, entering and leaving the frame.

Each walker keeps one body, one set of colours and an identity (``ids``) for the whole clip; its gait is a
periodic swing of legs and arms, its path a straight line parallel to the image plane at a fixed depth, on
a ground plane ``CAMERA_HEIGHT_M`` below the camera. Start frames are staggered so people enter and leave
during the clip. Frames are drawn with the scene renderer's own figure drawing (``render._draw_figure``)
and carry the same ground truth as a :class:`~.render.Scene` (boxes, keypoints, visibility), indexed by the
walkers in view. Deterministic: the same seed gives the same clip, frame by frame (nothing is held but the
background, so a long clip costs no memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import NUM_KEYPOINTS
from . import render
from . import skeleton as sk

CAMERA_HEIGHT_M = 1.5
_DEG = np.pi / 180.0


@dataclass(frozen=True)
class Walker:
    """One person's path: enters at ``start`` from the ``direction`` side, walking at ``speed`` m/s."""

    body: sk.Body
    depth: float
    direction: int  # +1: left to right
    speed: float
    start: int
    phase: float
    colour_seed: int


@dataclass
class VideoFrame:
    """One frame and its ground truth for the ``len(ids)`` walkers in view (far first)."""

    image: np.ndarray
    ids: np.ndarray  # (N,) walker index
    boxes: np.ndarray  # (N, 4) xyxy
    keypoints: np.ndarray  # (N, 37, 2)
    visible: np.ndarray  # (N, 37)


def walking_pose(phase: float) -> sk.Pose:
    """A walking pose at gait ``phase`` (radians): legs and arms swing in opposition."""
    swing = np.sin(phase)
    legs = tuple(
        (3 * _DEG, 28 * _DEG * s * swing, 0.0, (8 + 30 * max(0.0, -s * np.cos(phase))) * _DEG, 0.0) for s in (1, -1)
    )
    arms = tuple((10 * _DEG, -24 * _DEG * s * swing, 0.0, 25 * _DEG) for s in (1, -1))
    return sk.Pose((6 * _DEG, 0.0, 0.0), (0.0, 5 * _DEG, 0.0), arms, legs)  # type: ignore[arg-type]


class WalkingClip:
    """``frames`` frames of ``people`` walkers at ``fps``; iterate for :class:`VideoFrame` s."""

    def __init__(self, seed: int = 0, frames: int = 180, people: int = 4, size: tuple[int, int] = (480, 640),
                 fps: float = 30.0, present: float = 0.5) -> None:  # fmt: skip
        """``present``: share of the walkers already part-way across at frame 0; the others enter later."""
        rng = np.random.default_rng(np.random.SeedSequence([0x3A1C, int(seed)]))
        self.size, self.frames, self.fps = size, int(frames), float(fps)
        height, width = size
        config = render.RenderConfig(image_sizes=(size,), dfov_deg=(70.0, 85.0), photo_background=0.0, distractors=4)
        self.intrinsics = render.sample_intrinsics(rng, height, width, config)
        self.background = render._background(rng, height, width, config)
        render._distractors(self.background, rng, config.distractors)
        self.walkers = []
        for i in range(people):
            body, depth, direction = sk.sample_body(rng), float(rng.uniform(3.5, 8.0)), int(rng.choice([-1, 1]))
            speed = float(rng.uniform(0.9, 1.6))
            crossing = 2 * self._half_width(depth) / speed * self.fps  # frames from one side to the other
            if i < round(present * people):  # part-way across already: entered before the clip started
                start = -int(rng.uniform(0.15, 0.6) * crossing)
            else:
                start = int((i + 1) * self.frames / (people + 1) * rng.uniform(0.3, 1.0))
            self.walkers.append(Walker(body, depth, direction, speed, start, float(rng.uniform(0, 2 * np.pi)),
                                       int(rng.integers(1 << 30))))  # fmt: skip

    def _half_width(self, depth: float) -> float:
        """Half the view's width in metres at ``depth``, plus a body's margin."""
        return depth * (self.size[1] / 2) / self.intrinsics[0, 0] + 0.6

    def _place(self, walker: Walker, index: int) -> np.ndarray | None:
        """Camera-space keypoints ``(37, 3)`` of ``walker`` at frame ``index``, or None when out of view."""
        t = (index - walker.start) / self.fps
        if t < 0:
            return None
        half = self._half_width(walker.depth)
        x = -walker.direction * half + walker.direction * walker.speed * t
        if abs(x) > half:
            return None
        stride = 1.4  # m per gait cycle
        pose = walking_pose(walker.phase + 2 * np.pi * walker.speed * t / stride)
        body = sk.forward_kinematics(walker.body, pose)
        rotation = sk.body_to_camera(walker.direction * np.pi / 2, 0.0, 0.0)
        points = body @ rotation.T
        feet = points[:, 1].max()  # lowest point (camera y points down)
        return points + np.array([x, CAMERA_HEIGHT_M - feet, walker.depth])

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[VideoFrame]:
        for index in range(self.frames):
            yield self.frame(index)

    def frame(self, index: int) -> VideoFrame:
        height, width = self.size
        placed = [(i, pts) for i, w in enumerate(self.walkers) if (pts := self._place(w, index)) is not None]
        placed.sort(key=lambda item: -float(item[1][:, 2].mean()))  # far first
        image = self.background.copy()
        mask = np.zeros((height, width), np.uint8)
        boxes, keypoints = [], []
        for label, (i, pts) in enumerate(placed, start=1):
            colours = np.random.default_rng(self.walkers[i].colour_seed)  # the same clothes every frame
            extent = render._draw_figure(image, mask, label, pts, self.intrinsics, colours)
            boxes.append(np.clip(extent, 0, [width, height, width, height]))
            keypoints.append(sk.project(pts, self.intrinsics))
        count = len(placed)
        kpts = np.asarray(keypoints, np.float32).reshape(count, NUM_KEYPOINTS, 2)
        return VideoFrame(
            image=image,
            ids=np.asarray([i for i, _ in placed], np.int64),
            boxes=np.asarray(boxes, np.float32).reshape(count, 4),
            keypoints=kpts,
            visible=render.visibility(kpts, mask),
        )


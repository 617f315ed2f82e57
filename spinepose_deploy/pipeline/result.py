"""``PoseResult``: what the pipeline returns for one frame, and its OpenPose-style JSON."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.skeleton import NUM_KEYPOINTS, SPINE_IDS
from ..ops.world import SOURCE_UPSTREAM, Vertical
from ..spine.angles import DEFAULT_THR, SpineAngles, spine_angles

OPENPOSE_VERSION = 1.0  # upstream SpinePose writes {"version": 1.0, "people": [...]}


@dataclass(frozen=True)
class PoseResult:
    """One frame's people. ``N`` people, ``K = 37`` keypoints; pixels for 2D, metres for 3D.

    Attributes:
        boxes: ``(N, 4)`` float32 x1, y1, x2, y2 the pose crops came from.
        box_scores: ``(N,)`` float32 detector scores (1.0 for boxes given by the caller).
        keypoints: ``(N, K, 2)`` float32 image pixels (smoothed in ``Pipeline.track``).
        scores: ``(N, K)`` float32 keypoint confidences.
        keypoints_3d: ``(N, K, 3)`` camera space (x right, y down, z forward) when lifting, else None.
        track_ids: ``(N,)`` int64 from ``Pipeline.track`` (-1: too small to track), else None.
        keypoints_3d_world: ``(N, K, 3)`` world space (y up, ground at y = 0) from ``track`` or
            ``Pipeline.to_world``, else None.
        standin: made with stand-in graphs: the keypoints mean nothing.
        vertical: the world frame's vertical (source, camera pitch/roll) when ``keypoints_3d_world`` is set.
    """

    boxes: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    keypoints_3d: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    keypoints_3d_world: np.ndarray | None = None
    standin: bool = False
    vertical: Vertical | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, *, lift: bool = False, standin: bool = False) -> PoseResult:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            box_scores=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
            scores=np.zeros((0, NUM_KEYPOINTS), np.float32),
            keypoints_3d=np.zeros((0, NUM_KEYPOINTS, 3), np.float32) if lift else None,
            standin=standin,
        )

    def spine_angles(self, thr: float = DEFAULT_THR) -> SpineAngles:
        """Spine angles per person (``spinepose_deploy.spine``): 2D always, 3D when world-space 3D is known."""
        return spine_angles(self.keypoints, self.scores, self.keypoints_3d_world, thr=thr, vertical=self.vertical)

    def to_openpose(self, *, spine_only: bool = False) -> dict:
        """Upstream SpinePose's OpenPose-style dict for this frame.

        ``{"version": 1.0, "people": [{"pose_keypoints_2d": [x, y, score, ...], "pose_keypoints_3d":
        [x, y, z, score, ...]}]}``; ``pose_keypoints_3d`` is present only with 3D (world space when
        known, as upstream writes it, else camera space), and with world space a ``world_vertical`` entry
        (``ops.world.Vertical.to_dict``: source, camera pitch and roll). ``spine_only`` keeps the 9 spine
        keypoints in hip -> C1 order, as upstream's ``--spine-only``.
        """
        ids = list(SPINE_IDS) if spine_only else list(range(self.keypoints.shape[1]))
        scores = np.asarray(self.scores, dtype=np.float64)[:, ids, None]
        flat_2d = np.concatenate([np.asarray(self.keypoints, dtype=np.float64)[:, ids], scores], axis=-1)
        points_3d = self.keypoints_3d_world if self.keypoints_3d_world is not None else self.keypoints_3d
        flat_3d = None
        if points_3d is not None and len(points_3d) > 0:
            flat_3d = np.concatenate([np.asarray(points_3d, dtype=np.float64)[:, ids], scores], axis=-1)
        people = []
        for i in range(len(self)):
            person = {"pose_keypoints_2d": flat_2d[i].reshape(-1).tolist()}
            if flat_3d is not None:
                person["pose_keypoints_3d"] = flat_3d[i].reshape(-1).tolist()
            people.append(person)
        out = {"version": OPENPOSE_VERSION, "people": people}
        # what the world-space 3D stands on (not under seed_compat: upstream's files exactly)
        vertical = self.vertical if self.keypoints_3d_world is not None else None
        if vertical is not None and vertical.source != SOURCE_UPSTREAM:
            out["world_vertical"] = vertical.to_dict()
        return out

"""``Lifter``: the one place the 2D -> 3D lifter graph is fed and its output turned into camera space.

Normalisation with the camera intrinsics (low-score keypoints zeroed; with a known vertical, the rays
turned into a level virtual camera) -> run -> root-relative, metric scale, per-person root translation
(``ops.lifter``), turned back into the camera when the feed was level. The metric scale is the caller's state (a stream
keeps the first subject's); ``metric_scale`` estimates it from a raw output.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ops import lifter as lift_ops
from ..ops.skeleton import NUM_KEYPOINTS
from .graph import Feed, Stage, pick


class Lifter(Stage):
    """Camera-space ``(N, 37, 3)`` from image-pixel keypoints ``(N, 37, 2)``, their scores and intrinsics."""

    def preprocess(
        self,
        keypoints: np.ndarray,
        scores: np.ndarray,
        intrinsics: np.ndarray,
        thr: float = lift_ops.LIFTING_THR,
        to_level: np.ndarray | None = None,
    ) -> tuple[Feed, np.ndarray]:
        """The feed ``(N, 37, 2)`` float32 normalised camera coordinates and ``visible`` ``(N, 37)`` bool;
        ``to_level`` (``ops.lifter.gravity_rotation``): as the level virtual camera sees them."""
        xy, visible = lift_ops.lifter_feed(keypoints, scores, intrinsics, thr)
        if to_level is not None:
            xy, visible = lift_ops.level_feed(xy, visible, to_level)
        return self.feed(np.ascontiguousarray(xy, dtype=np.float32)), visible

    def raw(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The lifter's own output ``(N, 37, 3)`` in model units (the graph has one output)."""
        return pick(outputs, None, 0)

    @staticmethod
    def metric_scale(raw: np.ndarray, subject_height: float = lift_ops.DEFAULT_HEIGHT) -> float:
        """Metres per model unit from person 0 of a raw output and that person's height."""
        return lift_ops.estimate_metric_scale(lift_ops.root_relative(raw)[0], subject_height)

    def postprocess(
        self, raw: np.ndarray, feed: Feed, visible: np.ndarray, scale: float, to_level: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw output -> camera space: root-relative x ``scale`` + each person's root translation (solved in
        the frame the feed was in, then turned back into the camera when ``to_level`` made it level)."""
        points = lift_ops.lift_postprocess(raw, feed[self.info.input_name], visible, scale)
        if to_level is None:
            return points
        return (points @ np.asarray(to_level, np.float32)).astype(np.float32)  # R.T applied to row vectors

    def empty(self) -> np.ndarray:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32)

"""``PoseEstimator``: the one place the top-down pose graph is fed and decoded.

crop (all boxes of a frame in one batch) -> run -> SimCC validation and decode -> image pixels -> the v1
(spinetrack) spine smoothing. The Pipeline, calibration, the fidelity gate, the bench and the synthetic
evaluation all go through it, so they feed the graph identical arrays for the same frame and boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..ops import pose as pose_ops
from ..ops.skeleton import NUM_KEYPOINTS
from .graph import Feed, GraphInfo, Runner, Stage


@dataclass(frozen=True)
class Crops:
    """Where a batch's crops came from: ``centers`` and aspect-fixed ``scales`` ``(N, 2)`` image pixels."""

    centers: np.ndarray
    scales: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)


class PoseEstimator(Stage):
    """Keypoints ``(N, 37, 2)`` image pixels and scores ``(N, 37)`` for person boxes ``(N, 4)`` of a frame."""

    def __init__(self, info: GraphInfo, run: Runner | None = None, *, seed_compat: bool = False) -> None:
        super().__init__(info, run)
        self.seed_compat = seed_compat

    def preprocess(self, image: np.ndarray, boxes: np.ndarray) -> tuple[Feed, Crops]:
        """All crops of ``boxes`` as one normalised ``(N, 3, h, w)`` batch (``ops.pose.crop_batch``)."""
        info = self.info
        batch, centers, scales = pose_ops.crop_batch(
            image, boxes, info.input_hw, info.mean or pose_ops.POSE_MEAN, info.std or pose_ops.POSE_STD,
            info.color, self.seed_compat,
        )  # fmt: skip
        return self.feed(batch), Crops(centers, scales)

    def postprocess(self, outputs: Mapping[str, np.ndarray], crops: Crops) -> tuple[np.ndarray, np.ndarray]:
        """SimCC outputs of ``len(crops)`` people -> image-pixel keypoints and scores (v1: spine smoothed)."""
        simcc_x, simcc_y = pose_ops.validate_simcc(dict(outputs), len(crops), NUM_KEYPOINTS)
        locs, scores = pose_ops.decode_simcc(simcc_x, simcc_y)
        keypoints = pose_ops.crop_to_image(locs, crops.centers, crops.scales, self.info.input_hw)
        if self.info.version == "v1":
            keypoints, scores = pose_ops.smooth_spine_v1(keypoints, scores)
        return keypoints, scores

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batched run for every box; no box gives empty ``(0, 37, 2)`` / ``(0, 37)``."""
        feed, crops = self.preprocess(image, boxes)
        if len(crops) == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS), np.float32)
        return self.postprocess(self.run(feed), crops)

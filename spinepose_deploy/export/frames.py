"""Frames for checking exports: ``RoleFrames`` (a graph's gate feeds, how to decode and score its outputs) and
the pieces ``calibration`` builds them from (packaged images, fixed person boxes, the lifter's input).

The one builder of gate feeds, for every precision, is ``calibration.gate_frames``: detector feeds are the
letterboxed / stretched held-out frames (with few frames: their mirror images and a varied copy of each);
pose feeds are the person crops of the FP32 detector's boxes, topped up with fixed boxes from
``person_boxes`` to ``calibration.GATE_MIN_CROPS`` per frame (a random-weight stand-in finds one person or
none); lifter feeds are the FP32 pose graph's keypoints on those crops, normalised with intrinsics from the
image size (all points kept visible).

Frames may carry ground truth (``FrameTruth``, from synthetic scenes: ``calibration.SynthSource``); then
``RoleFrames.accuracy`` scores the reference and the candidate outputs of the last ``run`` against it:
pose PCK@0.05 of box size, lifter MPJPE, detector AP50 (``synth.metrics``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnx

from ..errors import InputFileError
from ..ops import lifter as lift
from ..ops.image import IMAGE_SUFFIXES
from ..paths import package_data_dir, repo_calib_dir
from ..spine import gate as spine_gate
from ..stages import Crops, Detector, GraphInfo, Lifter, PoseEstimator
from ..stages.graph import Runner
from ..synth import metrics
from ..zoo.specs import Family
from .fidelity import accuracy_entry, ratio_se, spine_truth_entry

Feed = dict[str, np.ndarray]
CROPS_PER_IMAGE = 4


def default_image_dir() -> Path:
    return repo_calib_dir() or package_data_dir()


def load_images(source: Path | None = None, limit: int = 8) -> list[np.ndarray]:
    """BGR images from a folder (default: calib_data/ or the packaged samples), sorted by name."""
    folder = Path(source) if source else default_image_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    images = [img for img in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files) if img is not None]
    if not images:
        raise InputFileError(f"{folder}: no readable images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def person_boxes(image: np.ndarray, count: int = CROPS_PER_IMAGE, seed: int = 0) -> np.ndarray:
    """A box around the central person of a portrait-like frame, plus ``count - 1`` jittered copies."""
    h, w = image.shape[:2]
    base = np.array([0.1 * w, 0.02 * h, 0.9 * w, 0.98 * h])
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.08, 0.08, size=(count - 1, 4)) * np.array([w, h, w, h])
    return np.vstack([base, base + jitter]).astype(np.float32)


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame's people, and the pose crops made of them (to map keypoints back)."""

    boxes: np.ndarray  # (N, 4) xyxy pixels
    keypoints: np.ndarray  # (N, 37, 2) pixels
    visible: np.ndarray  # (N, 37) bool
    keypoints_3d: np.ndarray  # (N, 37, 3) camera space, metres
    intrinsics: np.ndarray  # (3, 3)
    centers: np.ndarray | None = None  # (N, 2) of the pose crops (stages.PoseEstimator.preprocess)
    scales: np.ndarray | None = None


@dataclass
class RoleFrames:
    """Feeds for one graph and what is needed to decode its outputs (and score them, with ``truth``)."""

    graph: GraphInfo
    feeds: list[Feed]
    meta: list = field(default_factory=list)  # YOLOX ratio / RF-DETR image size per frame
    outputs: tuple[list[dict], list[dict]] = field(default_factory=lambda: ([], []))
    # per frame, or empty (no ground truth); pose / lifter feeds hold those frames' people in the same order
    truth: list[FrameTruth] = field(default_factory=list)
    _reference: list[dict] | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return sum(len(next(iter(f.values()))) for f in self.feeds)

    def first_feeds(self) -> Feed:
        return self.feeds[0]

    def sha256(self) -> str:
        """Hash of every feed's bytes, in order: two gates with the same hash saw the same frames and crops."""
        digest = hashlib.sha256()
        for feed in self.feeds:
            for name in sorted(feed):
                array = np.ascontiguousarray(feed[name])
                digest.update(f"{name}{array.dtype}{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()

    def run(self, reference: Runner, candidate: Runner) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Run every feed through both; return outputs merged over frames (or the first frame's when ragged).

        The reference is the FP32 graph, the same for the life of these frames (every candidate and round of
        one graph's gate): it runs once, and later runs reuse its outputs."""
        if self._reference is None:
            self._reference = [reference(f) for f in self.feeds]
        refs, gots = self._reference, [candidate(f) for f in self.feeds]
        self.outputs = (refs, gots)
        return _merge(refs), _merge(gots)

    def decode_boxes(self, *_: object) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        """Detector boxes per frame for the reference and the candidate (None for other roles)."""
        if self.graph.family not in (Family.YOLOX, Family.RFDETR) or not self.outputs[0]:
            return None
        return tuple(
            [self._boxes(out, meta) for out, meta in zip(side, self.meta, strict=True)] for side in self.outputs
        )

    def _boxes(self, outputs: dict[str, np.ndarray], meta: object) -> np.ndarray:
        return self._detections(outputs, meta)[0]

    def _detections(self, outputs: dict[str, np.ndarray], meta: object) -> tuple[np.ndarray, np.ndarray]:
        return Detector(self.graph).postprocess(outputs, meta)

    def accuracy(self) -> dict:
        """``{"accuracy": ...}`` of the last ``run``'s reference and candidate vs the ground truth ({} without)."""
        if not self.truth or not self.outputs[0]:
            return {}
        role = self.graph.spec.role.value
        truth = self.truth
        if role == "pose":
            gt, vis = np.concatenate([t.keypoints for t in truth]), np.concatenate([t.visible for t in truth])
            boxes = np.concatenate([t.boxes for t in truth])
            hits = [metrics.pck_hits(self._keypoints(side), gt, vis, boxes) for side in self.outputs]
            total = vis.sum()
            change = (hits[1].sum(axis=1) - hits[0].sum(axis=1)).astype(np.float64)  # per person, in keypoints
            pcks = [h.sum() / total for h in hits]
            entry = accuracy_entry(
                role, *pcks, se=ratio_se(change, vis.sum(axis=1)), people=len(gt), keypoints=int(total)
            )
            return {"accuracy": entry}
        if role == "lifter":
            gt = np.concatenate([t.keypoints_3d for t in truth])
            preds = [np.concatenate([next(iter(out.values())) for out in side]) for side in self.outputs]
            mean_pose = metrics.mean_pose_mpjpe(gt)
            errors = [metrics.person_mpjpe(pred, gt) for pred in preds]
            change = errors[1] - errors[0]
            entry = accuracy_entry(
                role,
                float(errors[0].mean()),
                float(errors[1].mean()),
                se=ratio_se(change, np.ones_like(change)),
                people=len(gt),
                mean_pose_mm=round(mean_pose, 1),
            )
            entry["spine"] = spine_truth_entry(*(spine_gate.truth_angle_error(pred, gt) for pred in preds))
            return {"accuracy": entry}
        if role == "detector":  # AP has no per-frame decomposition: no standard error
            gt = [t.boxes for t in truth]
            aps = []
            for side in self.outputs:
                found = [self._detections(out, meta) for out, meta in zip(side, self.meta, strict=True)]
                aps.append(metrics.ap50([b for b, _ in found], [s for _, s in found], gt))
            return {"accuracy": accuracy_entry(role, *aps, people=sum(len(g) for g in gt))}
        return {}

    def _keypoints(self, outputs: list[dict]) -> np.ndarray:
        """Decoded pose keypoints of every person of every frame, in image pixels (N, K, 2)."""
        crops = Crops(np.concatenate([t.centers for t in self.truth]), np.concatenate([t.scales for t in self.truth]))
        return PoseEstimator(self.graph).postprocess(_merge(outputs), crops)[0]


def _merge(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    merged = {}
    for name in outputs[0]:
        arrays = [o[name] for o in outputs]
        same = all(a.shape[1:] == arrays[0].shape[1:] for a in arrays)
        merged[name] = np.concatenate(arrays, axis=0) if same else arrays[0]
    return merged


def lifter_input(pose: PoseEstimator, lifter: Lifter, image: np.ndarray, pose_feed: Feed, crops: Crops) -> Feed:
    """The lifter's feed from the pose stage's keypoints on ``crops`` of ``image`` (intrinsics from its size).

    All points visible: the pipeline zeroes low-score points, and zeros lie inside the calibrated ranges of
    visible ones; stand-in scores are meaningless and would zero everything."""
    points, _ = pose.postprocess(pose.run(pose_feed), crops)
    h, w = image.shape[:2]
    return lifter.preprocess(points, np.ones(points.shape[:2], np.float32), lift.estimate_intrinsics(w, h))[0]


def input_name(model: onnx.ModelProto) -> str:
    """The graph's (single) real input name; released graphs do not all use the same one."""
    initializers = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in initializers)

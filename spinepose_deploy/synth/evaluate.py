"""Accuracy of a detector, pose or lifter graph on held-out synthetic scenes, through any ``run(feeds) -> outputs``.

``run`` is a Session's ``run`` (any backend), an ONNX Runtime call or a torch wrapper: the feed protocol is
``dict[str, np.ndarray]``. Pose crops come from ground-truth boxes (the detector is not part of this
measurement) and go through the pipeline's own crop, decode and back-projection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..ops.lifter import lifter_feed
from ..ops.pose import POSE_MEAN, POSE_STD, crop_batch, crop_to_image, decode_simcc, validate_simcc
from ..ops.skeleton import NUM_KEYPOINTS
from . import metrics
from .dataset import PersonSet
from .dataset import people as gather_people
from .dataset import usable as dataset_usable
from .render import Scene

Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def predict_pose(run: Run, scenes: list[Scene], input_hw: tuple[int, int], persons: PersonSet,
                 input_name: str = "input", batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, 37, 2)`` image pixels and scores ``(N, 37)`` for every person of ``persons``."""
    kpts = np.zeros((len(persons), NUM_KEYPOINTS, 2), np.float32)
    scores = np.zeros((len(persons), NUM_KEYPOINTS), np.float32)
    crops, centers, scales = [], [], []
    for i in range(len(persons)):
        img = scenes[persons.scene[i]].image
        c, ce, sc = crop_batch(img, persons.boxes[i : i + 1], input_hw, POSE_MEAN, POSE_STD, "rgb")
        crops.append(c[0])
        centers.append(ce[0])
        scales.append(sc[0])
    for start in range(0, len(crops), batch):
        stop = min(start + batch, len(crops))
        outputs = dict(run({input_name: np.stack(crops[start:stop])}))
        sx, sy = validate_simcc(outputs, stop - start, NUM_KEYPOINTS)
        local, sc = decode_simcc(sx, sy)
        kpts[start:stop] = crop_to_image(local, np.asarray(centers[start:stop]), np.asarray(scales[start:stop]),
                                         input_hw)
        scores[start:stop] = sc
    return kpts, scores


def evaluate_pose(run: Run, scenes: list[Scene], input_hw: tuple[int, int], people: PersonSet | None = None,
                  input_name: str = "input", alpha: float = 0.05) -> dict:
    """PCK@``alpha`` (of box size) and per-keypoint error of a pose graph on ``scenes`` with GT boxes."""
    persons = gather_people(scenes) if people is None else people
    kpts, scores = predict_pose(run, scenes, input_hw, persons, input_name)
    result = metrics.pck(kpts, persons.keypoints, persons.visible, persons.boxes, alpha)
    result["keypoints_pred"] = kpts
    result["scores"] = scores
    return result


def evaluate_lifter(run: Run, persons: PersonSet, input_name: str | None = None,
                    keypoints: np.ndarray | None = None) -> dict:
    """MPJPE (mm, root-relative) of a lifter graph fed ground-truth 2D (or ``keypoints`` (N, 37, 2) pixels).

    Invisible keypoints are zeroed as :func:`~spinepose_deploy.ops.lifter.lifter_feed` does. Also
    reports the mean-pose baseline (the average root-relative pose of ``persons``).
    """
    pixels = persons.keypoints if keypoints is None else keypoints
    feeds = np.zeros((len(persons), NUM_KEYPOINTS, 2), np.float32)
    for i in range(len(persons)):
        feeds[i], _ = lifter_feed(pixels[i : i + 1], persons.visible[i : i + 1].astype(np.float32),
                                  persons.intrinsics[i])
    outputs = dict(run({input_name or "input": feeds}))
    pred = next(iter(outputs.values()))
    gt = persons.keypoints_3d
    rel = gt - gt[:, 19:20]
    return {
        "mpjpe_mm": metrics.mpjpe(pred, gt),
        "mean_pose_mpjpe_mm": metrics.mpjpe(np.broadcast_to(rel.mean(axis=0), rel.shape), rel),
        "people": int(len(persons)),
        "prediction": np.asarray(pred),
    }


Detect = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def evaluate_detector(predict: Detect, scenes: list[Scene], host_threshold: float = 0.3) -> dict:
    """Box AP50 and recall at the pipeline's score threshold of ``predict(image_bgr) -> (boxes, scores)``.

    Ground truth is the usable people (as for the pose metrics: box side >= 32 px, >= 8 visible keypoints);
    a prediction that best matches an unusable figure (tiny, or hidden behind others) counts neither way.
    """
    preds, confs, truths = [], [], []
    found = total = 0
    for scene in scenes:
        boxes, scores = (np.asarray(a, np.float32) for a in predict(scene.image))
        boxes = boxes.reshape(-1, 4)
        usable = dataset_usable(scene)
        gt, ignored = scene.boxes[usable], scene.boxes[~usable]
        if len(ignored) and len(boxes):
            to_ignored = metrics._iou(boxes, ignored).max(axis=1)
            to_gt = metrics._iou(boxes, gt).max(axis=1) if len(gt) else np.zeros(len(boxes))
            keep = ~((to_ignored >= 0.5) & (to_ignored > to_gt))
            boxes, scores = boxes[keep], scores[keep]
        preds.append(boxes)
        confs.append(scores)
        truths.append(gt)
        strong = boxes[scores > host_threshold]
        total += len(gt)
        if len(gt) and len(strong):
            found += int((metrics._iou(gt, strong).max(axis=1) >= 0.5).sum())
    return {"ap50": metrics.ap50(preds, confs, truths), f"recall_at_{host_threshold:g}": found / max(total, 1),
            "people": total, "scenes": len(scenes)}

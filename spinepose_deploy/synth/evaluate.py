"""Accuracy of a detector, pose or lifter graph on held-out synthetic scenes, through any ``run(feeds) -> outputs``.

``run`` is a Session's ``run`` (any backend), an ONNX Runtime call or a torch wrapper: the feed protocol is
``dict[str, np.ndarray]``. Pose crops come from ground-truth boxes (the detector is not part of this
measurement) and go through the pipeline's own stage objects (``stages.PoseEstimator``: crop, SimCC
validation and decode, back-projection, v1 smoothing; ``stages.Lifter``: normalisation). ``graph`` says how
the graph is fed (a bundle's ``GraphInfo``); without it, a released v2 pose / lifter graph is assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..ops.detector import box_iou
from ..ops.pose import POSE_MEAN, POSE_STD
from ..ops.skeleton import NUM_KEYPOINTS
from ..stages import Crops, GraphInfo, Lifter, PoseEstimator
from ..zoo.specs import Family
from . import metrics
from .dataset import PersonSet
from .dataset import people as gather_people
from .dataset import usable as dataset_usable
from .render import Scene

Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def _graph(graph: GraphInfo | None, family: Family, input_hw: tuple[int, int], input_name: str | None) -> GraphInfo:
    if graph is None:
        mean, std = (POSE_MEAN, POSE_STD) if family is Family.RTMPOSE else (None, None)
        graph = GraphInfo(family.value, family, (int(input_hw[0]), int(input_hw[1])), mean, std)
    return graph.named(input_name) if input_name else graph


def predict_pose(run: Run, scenes: list[Scene], input_hw: tuple[int, int], persons: PersonSet,
                 input_name: str = "input", batch: int = 16, graph: GraphInfo | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, 37, 2)`` image pixels and scores ``(N, 37)`` for every person of ``persons``."""
    pose = PoseEstimator(_graph(graph, Family.RTMPOSE, input_hw, input_name), run)
    kpts = np.zeros((len(persons), NUM_KEYPOINTS, 2), np.float32)
    scores = np.zeros((len(persons), NUM_KEYPOINTS), np.float32)
    made = [pose.preprocess(scenes[persons.scene[i]].image, persons.boxes[i : i + 1]) for i in range(len(persons))]
    name = pose.info.input_name
    for start in range(0, len(made), batch):
        chunk = made[start : start + batch]
        crops = Crops(np.concatenate([c.centers for _, c in chunk]), np.concatenate([c.scales for _, c in chunk]))
        outputs = pose.run({name: np.concatenate([feed[name] for feed, _ in chunk])})
        kpts[start : start + len(chunk)], scores[start : start + len(chunk)] = pose.postprocess(outputs, crops)
    return kpts, scores


def evaluate_pose(run: Run, scenes: list[Scene], input_hw: tuple[int, int], people: PersonSet | None = None,
                  input_name: str = "input", alpha: float = 0.05, graph: GraphInfo | None = None) -> dict:
    """PCK@``alpha`` (of box size) and per-keypoint error of a pose graph on ``scenes`` with GT boxes."""
    persons = gather_people(scenes) if people is None else people
    kpts, scores = predict_pose(run, scenes, input_hw, persons, input_name, graph=graph)
    result = metrics.pck(kpts, persons.keypoints, persons.visible, persons.boxes, alpha)
    result["keypoints_pred"] = kpts
    result["scores"] = scores
    return result


def evaluate_lifter(run: Run, persons: PersonSet, input_name: str | None = None,
                    keypoints: np.ndarray | None = None, graph: GraphInfo | None = None) -> dict:
    """MPJPE (mm, root-relative) of a lifter graph fed ground-truth 2D (or ``keypoints`` (N, 37, 2) pixels).

    Invisible keypoints are zeroed (``stages.Lifter.preprocess``, with each person's intrinsics). Also
    reports the mean-pose baseline (the average root-relative pose of ``persons``).
    """
    lifter = Lifter(_graph(graph, Family.LIFTER, (NUM_KEYPOINTS, 2), input_name), run)
    name = lifter.info.input_name
    pixels = persons.keypoints if keypoints is None else keypoints
    feeds = np.zeros((len(persons), NUM_KEYPOINTS, 2), np.float32)
    for i in range(len(persons)):
        visible = persons.visible[i : i + 1].astype(np.float32)
        feeds[i] = lifter.preprocess(pixels[i : i + 1], visible, persons.intrinsics[i])[0][name][0]
    pred = lifter.raw(lifter.run({name: feeds}))
    return {
        "mpjpe_mm": metrics.mpjpe(pred, persons.keypoints_3d),
        "mean_pose_mpjpe_mm": metrics.mean_pose_mpjpe(persons.keypoints_3d),
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
            to_ignored = box_iou(boxes, ignored).max(axis=1)
            to_gt = box_iou(boxes, gt).max(axis=1) if len(gt) else np.zeros(len(boxes))
            keep = ~((to_ignored >= 0.5) & (to_ignored > to_gt))
            boxes, scores = boxes[keep], scores[keep]
        preds.append(boxes)
        confs.append(scores)
        truths.append(gt)
        strong = boxes[scores > host_threshold]
        total += len(gt)
        if len(gt) and len(strong):
            found += int((box_iou(gt, strong).max(axis=1) >= 0.5).sum())
    return {"ap50": metrics.ap50(preds, confs, truths), f"recall_at_{host_threshold:g}": found / max(total, 1),
            "people": total, "scenes": len(scenes)}

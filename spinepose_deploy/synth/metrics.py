"""Accuracy against ground truth: PCK and per-keypoint error (2D), MPJPE (3D), AP50 (boxes). Pure numpy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..ops.detector import box_iou
from ..ops.skeleton import ROOT_ID


def box_size(boxes: np.ndarray) -> np.ndarray:
    """Longer side ``max(w, h)`` of boxes ``(N, 4)`` xyxy -> ``(N,)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def normalised_error(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Keypoint distance ``(N, K)`` as a fraction of each person's box size (``max(w, h)``)."""
    dist = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    return dist / np.maximum(box_size(boxes), 1e-9)[:, None]


def pck_hits(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, boxes: np.ndarray,
             alpha: float = 0.05) -> np.ndarray:
    """``(N, K)`` bool: a visible keypoint within ``alpha`` of its person's box size (what PCK counts)."""
    return (normalised_error(pred, gt, boxes) <= alpha) & np.asarray(visible, bool)


def mean_pose_mpjpe(gt: np.ndarray, root: int = ROOT_ID) -> float:
    """MPJPE (mm) of always answering the average root-relative pose of ``gt`` ``(N, K, 3)``: the no-skill floor."""
    rel = np.asarray(gt, np.float64) - np.asarray(gt, np.float64)[:, root : root + 1]
    return mpjpe(np.broadcast_to(rel.mean(axis=0), rel.shape), rel)


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, boxes: np.ndarray, alpha: float = 0.05) -> dict:
    """PCK@``alpha`` over visible keypoints, normalised by box size.

    Args:
        pred, gt: ``(N, K, 2)`` pixels. visible: ``(N, K)`` bool (only these count). boxes: ``(N, 4)`` xyxy.

    Returns:
        ``{"pck", "mean_error", "per_keypoint_pck" (K,), "per_keypoint_error" (K,), "keypoints", "people"}``;
        errors are fractions of box size, per-keypoint entries are NaN for a keypoint never visible.
    """
    vis = np.asarray(visible, bool)
    err = normalised_error(pred, gt, boxes)
    hit = pck_hits(pred, gt, vis, boxes, alpha)
    counts = vis.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pck = np.where(counts > 0, (hit & vis).sum(axis=0) / counts, np.nan)
        per_err = np.where(counts > 0, np.where(vis, err, 0.0).sum(axis=0) / counts, np.nan)
    total = int(vis.sum())
    return {
        "pck": float(hit[vis].mean()) if total else float("nan"),
        "mean_error": float(err[vis].mean()) if total else float("nan"),
        "per_keypoint_pck": per_pck,
        "per_keypoint_error": per_err,
        "keypoints": total,
        "people": int(len(vis)),
    }


def person_mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = ROOT_ID) -> np.ndarray:
    """``(N,)`` mean per-joint position error in mm per person of ``(N, K, 3)`` poses in metres, both made
    relative to ``root``."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if root is not None:
        pred = pred - pred[:, root : root + 1]
        gt = gt - gt[:, root : root + 1]
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) * 1000.0


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = ROOT_ID) -> float:
    """Mean per-joint position error in mm of ``(N, K, 3)`` poses in metres, both made relative to ``root``."""
    return float(person_mpjpe(pred, gt, root).mean())


def ap50(pred_boxes: list[np.ndarray], pred_scores: list[np.ndarray], gt_boxes: list[np.ndarray],
         iou: float = 0.5) -> float:
    """Average precision at IoU ``iou`` over frames (all-point interpolated, as VOC 2010+ / COCO AP50).

    Each list has one entry per frame: predicted ``(M, 4)`` boxes with ``(M,)`` scores, ground truth ``(G, 4)``.
    Predictions are matched greedily by score to the unmatched ground-truth box of highest IoU.
    """
    records = []  # (score, true positive)
    total = 0
    for boxes, scores, gts in zip(pred_boxes, pred_scores, gt_boxes, strict=True):
        gts = np.asarray(gts).reshape(-1, 4)
        total += len(gts)
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
        taken = np.zeros(len(gts), bool)
        overlaps = box_iou(np.asarray(boxes).reshape(-1, 4)[order], gts)
        for rank, i in enumerate(order):
            ok = False
            if len(gts):
                cand = np.where(taken, -1.0, overlaps[rank])
                j = int(np.argmax(cand))
                if cand[j] >= iou:
                    taken[j] = ok = True
            records.append((float(np.asarray(scores)[i]), ok))
    if total == 0:
        return float("nan")
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])
    tp = np.cumsum([r[1] for r in records])
    fp = np.cumsum([not r[1] for r in records])
    recall = tp / total
    precision = tp / np.maximum(tp + fp, 1)
    # precision envelope, then area under the step curve
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def match_people(gt_boxes: np.ndarray, pred_boxes: np.ndarray, iou: float = 0.3) -> list[tuple[int, int]]:
    """Greedy one-to-one (gt index, prediction index) pairs, highest IoU first, above ``iou``."""
    overlaps = box_iou(
        np.asarray(gt_boxes, np.float64).reshape(-1, 4), np.asarray(pred_boxes, np.float64).reshape(-1, 4)
    )
    pairs = []
    while overlaps.size and overlaps.max() > iou:
        g, p = np.unravel_index(int(np.argmax(overlaps)), overlaps.shape)
        pairs.append((int(g), int(p)))
        overlaps[g, :], overlaps[:, p] = -1.0, -1.0
    return pairs


def track_accuracy(truth: Iterable[Any], results: Iterable[Any], alpha: float = 0.05) -> dict:
    """PCK@``alpha`` and identity switches of tracked results against video ground truth.

    ``truth`` yields frames with ``ids`` (N,), ``boxes`` (N, 4), ``keypoints`` (N, K, 2), ``visible`` (N, K)
    (``synth.video.VideoFrame``); ``results`` yields ``PoseResult`` s with ``track_ids``. People are matched per
    frame by the IoU of their keypoint boxes with the true boxes; a true person left unmatched counts all its
    visible keypoints as misses. An identity switch is a true person matched to a different track id than
    the last time it was matched (MOT's IDSW).
    """
    hits = total = matched = people = switches = 0
    last_track: dict[int, int] = {}
    for frame, result in zip(truth, results, strict=True):
        people += len(frame.ids)
        total += int(frame.visible.sum())
        if len(result) == 0 or len(frame.ids) == 0:
            continue
        kp = np.asarray(result.keypoints, np.float64)
        boxes = np.concatenate([kp.min(axis=1), kp.max(axis=1)], axis=1)
        for g, p in match_people(frame.boxes, boxes):
            matched += 1
            err = normalised_error(kp[p : p + 1], frame.keypoints[g : g + 1], frame.boxes[g : g + 1])[0]
            hits += int(((err <= alpha) & frame.visible[g]).sum())
            track = int(result.track_ids[p]) if result.track_ids is not None else -1
            person = int(frame.ids[g])
            if track >= 0:
                if person in last_track and last_track[person] != track:
                    switches += 1
                last_track[person] = track
    return {
        "pck": hits / total if total else float("nan"),
        "recall": matched / people if people else float("nan"),
        "id_switches": switches,
        "people": people,
        "keypoints": total,
    }

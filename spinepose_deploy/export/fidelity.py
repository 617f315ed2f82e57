"""How far a lowered artifact (FP16, INT8, another runtime) is from the FP32 ONNX reference.

Metrics per role, on held-out real frames (``frames.py``):
- every graph: max / median absolute error per output (``passes.compare``);
- pose: SimCC argmax agreement (share of keypoints whose x and y bins both match) and keypoint distance in
  crop pixels (median, p95);
- detector: recall of the reference boxes at IoU 0.5 and their mean IoU;
- lifter: mean per-joint position error of the root-relative output, in the lifter's units x 1000 (mm when
  the output is in metres).
The gate (``check``) compares these with thresholds; defaults below, overridable per export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .passes import compare

ROOT_KEYPOINT = 19


@dataclass(frozen=True)
class Thresholds:
    """Fidelity gate defaults: tight enough that keypoints stay put, loose enough for FP16/INT8 rounding."""

    pose_argmax_agreement: float = 0.90
    pose_p95_px: float = 4.0
    detector_recall: float = 0.90
    detector_iou: float = 0.85
    lifter_mpjpe_mm: float = 10.0

    def to_dict(self) -> dict:
        return asdict(self)


def _simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0) -> np.ndarray:
    xs = simcc_x.argmax(-1) / split_ratio
    ys = simcc_y.argmax(-1) / split_ratio
    return np.stack([xs, ys], axis=-1)


def pose_metrics(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> dict[str, float]:
    ref_bins = (reference["simcc_x"].argmax(-1), reference["simcc_y"].argmax(-1))
    got_bins = (candidate["simcc_x"].argmax(-1), candidate["simcc_y"].argmax(-1))
    agreement = float(np.mean((ref_bins[0] == got_bins[0]) & (ref_bins[1] == got_bins[1])))
    distance = np.linalg.norm(
        _simcc_decode(reference["simcc_x"], reference["simcc_y"])
        - _simcc_decode(candidate["simcc_x"], candidate["simcc_y"]),
        axis=-1,
    )
    return {
        "argmax_agreement": agreement,
        "kpt_px_median": float(np.median(distance)),
        "kpt_px_p95": float(np.percentile(distance, 95)),
    }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N,4) and (M,4) xyxy boxes -> (N,M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def detector_metrics(reference_boxes: list[np.ndarray], candidate_boxes: list[np.ndarray]) -> dict[str, float]:
    """Recall at IoU 0.5 and mean best IoU of reference boxes, over frames (lists of (N,4) boxes)."""
    matched, total, ious = 0, 0, []
    for ref, got in zip(reference_boxes, candidate_boxes, strict=True):
        total += len(ref)
        if len(ref) == 0:
            continue
        best = box_iou(ref, got).max(axis=1) if len(got) else np.zeros(len(ref))
        matched += int(np.sum(best >= 0.5))
        ious.extend(best.tolist())
    return {
        "box_recall": matched / total if total else 1.0,
        "box_iou": float(np.mean(ious)) if ious else 1.0,
        "reference_boxes": total,
    }


def lifter_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    ref = reference - reference[:, ROOT_KEYPOINT : ROOT_KEYPOINT + 1]
    got = candidate - candidate[:, ROOT_KEYPOINT : ROOT_KEYPOINT + 1]
    return {"mpjpe_mm": float(np.linalg.norm(ref - got, axis=-1).mean() * 1000.0)}


def measure(
    role: str,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    decoded: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> dict:
    """All metrics for one graph. ``decoded`` carries (reference, candidate) detector boxes per frame."""
    result: dict = compare(reference, candidate).to_dict()
    if role == "pose":
        result.update(pose_metrics(reference, candidate))
    elif role == "lifter":
        name = next(iter(reference))
        result.update(lifter_metrics(reference[name], candidate[name]))
    elif role == "detector" and decoded is not None:
        result.update(detector_metrics(*decoded))
    return result


def check(role: str, metrics: Mapping[str, float], thresholds: Thresholds = Thresholds()) -> list[str]:
    """Return the gate failures for one graph (empty list: passed)."""
    failures = []
    if role == "pose":
        if metrics["argmax_agreement"] < thresholds.pose_argmax_agreement:
            failures.append(
                f"SimCC argmax agreement {metrics['argmax_agreement']:.3f} < {thresholds.pose_argmax_agreement}"
            )
        if metrics["kpt_px_p95"] > thresholds.pose_p95_px:
            failures.append(f"keypoint p95 {metrics['kpt_px_p95']:.2f} px > {thresholds.pose_p95_px}")
    elif role == "detector" and "box_recall" in metrics:
        if metrics["box_recall"] < thresholds.detector_recall:
            failures.append(f"box recall {metrics['box_recall']:.3f} < {thresholds.detector_recall}")
        if metrics["box_iou"] < thresholds.detector_iou:
            failures.append(f"box IoU {metrics['box_iou']:.3f} < {thresholds.detector_iou}")
    elif role == "lifter" and metrics["mpjpe_mm"] > thresholds.lifter_mpjpe_mm:
        failures.append(f"lifter MPJPE {metrics['mpjpe_mm']:.2f} mm > {thresholds.lifter_mpjpe_mm}")
    return failures

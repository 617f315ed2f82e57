"""What a precision change does to what spine users read: spine-chain error and angle change per family.

Pure numpy, used by the fidelity gate (``export.fidelity``) for the lifter (3D) and the pose graph (2D).
Families (``spine.angles.FAMILIES``): inclinations (trunk, neck), flexion (Cardan flexion and regional
flexion), lateral bending and axial rotation; per-segment turns are reported, never gated (a 15 mm point
error moves them by degrees while nothing a user reads changes). ``gate_failures`` compares the report with
the limits in ``export.fidelity.Thresholds`` (passed as a mapping, so this module stays below ``export``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ops.skeleton import ROOT_ID, SPINE_IDS
from .angles import ANGLE_NAMES, FAMILIES, SpineAngles, spine_angles

# camera (x right, y down, z forward) -> a y-up frame by a proper rotation (180 degrees about x), not a mirror
CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])
GATED_3D = ("inclination", "flexion", "lateral_axial")
GATED_2D = ("inclination2d", "flexion2d")
# family -> the Thresholds fields of its (median, p95) limits
LIMITS = {
    "inclination": ("spine_incl_median_deg", "spine_incl_p95_deg"),
    "flexion": ("spine_flex_median_deg", "spine_flex_p95_deg"),
    "lateral_axial": ("spine_lat_median_deg", "spine_lat_p95_deg"),
    "inclination2d": ("spine_incl_median_deg", "spine_incl_p95_deg"),
    "flexion2d": ("spine_flex_median_deg", "spine_flex_p95_deg"),
}


def spine_chain_mpjpe_mm(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean error (mm when in metres) of the 9 spine points ``(N, 37, 3)``, both root-relative."""
    ref = reference - reference[:, ROOT_ID : ROOT_ID + 1]
    got = candidate - candidate[:, ROOT_ID : ROOT_ID + 1]
    return float(np.linalg.norm(ref[:, list(SPINE_IDS)] - got[:, list(SPINE_IDS)], axis=-1).mean() * 1000.0)


def family_change(reference: SpineAngles, candidate: SpineAngles, families: tuple[str, ...]) -> dict[str, float]:
    """``<family>_deg_median`` / ``_p95`` of |candidate - reference| over people and the family's angles."""
    out = {}
    for family in families:
        cols = [ANGLE_NAMES.index(n) for n in FAMILIES[family]]
        diff = np.abs(180.0 - np.mod(180.0 - (candidate.values[..., cols] - reference.values[..., cols]), 360.0))
        diff = diff[np.isfinite(diff)]
        out[f"{family}_deg_median"] = float(np.median(diff)) if diff.size else 0.0
        out[f"{family}_deg_p95"] = float(np.percentile(diff, 95)) if diff.size else 0.0
    return out


def lifter_spine_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Spine-chain MPJPE and 3D angle change per family of a lifter's camera-space output ``(N, 37, 3)``."""
    ones = np.ones(reference.shape[:-1])
    zeros = np.zeros(reference.shape[:-1] + (2,))
    ref = spine_angles(zeros, ones, reference @ CAMERA_TO_Y_UP)
    got = spine_angles(zeros, ones, candidate @ CAMERA_TO_Y_UP)
    return {"spine_mpjpe_mm": spine_chain_mpjpe_mm(reference, candidate),
            **family_change(ref, got, (*GATED_3D, "segment"))}  # fmt: skip


def pose_spine_metrics(reference_xy: np.ndarray, candidate_xy: np.ndarray) -> dict[str, float]:
    """2D angle change per family of decoded keypoints ``(N, 37, 2)`` (crop pixels: a similarity of the image)."""
    ones = np.ones(reference_xy.shape[:-1])
    return family_change(spine_angles(reference_xy, ones), spine_angles(candidate_xy, ones), (*GATED_2D, "segment2d"))


def truth_angle_error(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N,)`` per person: mean |angle - truth| (degrees) over the gated 3D families, from camera-space 3D
    ``(N, 37, 3)`` (prediction and truth both turned y-up the same way)."""
    ones = np.ones(truth.shape[:-1])
    zeros = np.zeros(truth.shape[:-1] + (2,))
    names = [n for family in GATED_3D for n in FAMILIES[family]]
    cols = [ANGLE_NAMES.index(n) for n in names]
    got = spine_angles(zeros, ones, prediction @ CAMERA_TO_Y_UP).values[:, cols]
    want = spine_angles(zeros, ones, truth @ CAMERA_TO_Y_UP).values[:, cols]
    diff = np.abs(180.0 - np.mod(180.0 - (got - want), 360.0))
    return np.nanmean(np.where(np.isfinite(diff), diff, np.nan), axis=1)


def gate_failures(metrics: Mapping[str, float], limits: Mapping[str, float]) -> list[str]:
    """One line per spine limit ``metrics`` exceed (families present in ``metrics`` only)."""
    failures = []
    if "spine_mpjpe_mm" in metrics and metrics["spine_mpjpe_mm"] > limits["lifter_spine_mpjpe_mm"]:
        failures.append(f"spine-chain MPJPE {metrics['spine_mpjpe_mm']:.2f} mm > {limits['lifter_spine_mpjpe_mm']:g}")
    for family, (median_key, p95_key) in LIMITS.items():
        median, p95 = metrics.get(f"{family}_deg_median"), metrics.get(f"{family}_deg_p95")
        if median is None:
            continue
        if median > limits[median_key]:
            failures.append(f"{family} angles moved {median:.2f} deg median > {limits[median_key]:g}")
        if p95 > limits[p95_key]:
            failures.append(f"{family} angles moved {p95:.2f} deg p95 > {limits[p95_key]:g}")
    return failures

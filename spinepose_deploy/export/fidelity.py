"""How far a lowered artifact (FP16, INT8, another runtime) is from the FP32 ONNX reference.

Metrics per role, on held-out real frames (``frames.py``):
- every graph: max / median absolute error per output (``passes.compare``);
- pose: SimCC argmax agreement (share of keypoints whose x and y bins both match) and keypoint distance in
  crop pixels (median, p95) over the keypoints where the reference has one decisive peak (far moves between
  near-equal reference peaks, flat random-weight outputs, are reported as ``tie_share``);
- detector: recall of the reference boxes at IoU 0.5 and their mean IoU;
- lifter: mean per-joint position error of the root-relative output, in the lifter's units x 1000 (mm when
  the output is in metres);
- pose and lifter: how many degrees the spine angles (``spinepose_deploy.spine``) moved, median / p95 / max
  (``spine_deg_*``; 2D angles from the pose keypoints, 3D from the lifter's output), and per family
  (``spine.gate``): lifter spine-chain MPJPE and 3D inclination / flexion / lateral-axial change, pose 2D
  inclination / flexion change. Those are gated against FP32 wherever the FP32 graph has skill on the gate
  scenes' ground truth (``Thresholds.spine_*``; what spine users read, which MPJPE over 37 points cannot see;
  a graph without skill has no angles to keep); per-segment changes are reported only.
With ground truth (synthetic gate frames, ``frames.FrameTruth``) the report also gives the accuracy of the
FP32 reference and of the candidate (``accuracy_entry``): pose PCK@0.05 of box size, lifter MPJPE in mm,
detector AP50. Where the FP32 graph shows skill on that truth (``SKILL``), the accuracy decides the gate
(``pose_pck_drop``, ``lifter_gt_mpjpe_rise_mm``, ``detector_ap50_drop``) and the FP32-relative metrics are
reported only: they stand in for accuracy when there is none to measure, and are far stricter than
accuracy needs (plain INT8 of the pose-s trained on the synthetic world moved PCK@0.05 by -0.005, on the
gate scenes and on the held-out set alike, while agreeing on the exact SimCC bin for 8 % of keypoints, p95
5.4 px). The change is judged on its one-sided 95 % bound over the gate's people (``ratio_se``). A graph
without skill (random stand-in weights) is gated on the FP32-relative thresholds, as without truth.
The gate (``check``) compares these with thresholds; defaults below, overridable per export
(``ExportRequest.thresholds``, CLI ``--gate NAME=VALUE``). ``int8.build`` runs the gate in rounds (a
plain loop): when an INT8 attempt fails, more nodes are kept in float, up to a bounded number of rounds;
``GateReport`` is what the manifest and the CLI table show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ..bundle.manifest import Candidate, Fidelity, Int8Report, Int8Round
from ..errors import InvalidOptionError, suggest
from ..ops.detector import box_iou
from ..ops.pose import decode_simcc
from ..ops.skeleton import NUM_KEYPOINTS
from ..spine import gate as spine_gate
from ..spine.angles import NAMES_2D, NAMES_3D, angle_change, spine_angles
from .passes import compare

ROOT_KEYPOINT = 19
# Skill on the ground truth below which it cannot tell a good artifact from a bad one (random weights):
# pose PCK@0.05 >= 0.5, detector AP50 >= 0.5, lifter MPJPE <= 0.8 x that of predicting the mean pose.
SKILL = {"pose": 0.5, "detector": 0.5, "lifter": 0.8}
Z_95 = 1.645  # one-sided 95 % normal quantile
ACCURACY_METRIC = {"pose": "pck@0.05", "detector": "ap50", "lifter": "mpjpe_mm"}


@dataclass(frozen=True)
class Thresholds:
    """Fidelity gate defaults: tight enough that keypoints stay put, loose enough for FP16/INT8 rounding.

    Pose is judged by decoded keypoint distance in crop pixels (256x192 crop; a person's box side is about
    205 px there, so PCK@0.05's radius is ~10 px): median <= 1.5 px, p95 <= 6 px. Exact SimCC-bin agreement
    is reported but not required by default: on a trained graph INT8 moved 92 % of peaks by a bin or two
    (p95 5.4 px) while PCK@0.05 changed by 0.005, so requiring 0.9 agreement rejected every INT8 pose graph.
    """

    pose_argmax_agreement: float = 0.0
    pose_median_px: float = 1.5
    pose_p95_px: float = 6.0
    pose_tie_share: float = 0.2  # more keypoints than this on near-tie reference peaks: too flat to judge
    detector_recall: float = 0.90
    detector_iou: float = 0.85
    lifter_mpjpe_mm: float = 10.0
    # with ground truth (issue 8's criteria): accuracy may drop / error may grow by at most this much
    pose_pck_drop: float = 0.01
    lifter_gt_mpjpe_rise_mm: float = 5.0
    detector_ap50_drop: float = 0.02
    # spine (spine.gate), against FP32, always: lifter spine-chain error; angle change per family (median / p95)
    lifter_spine_mpjpe_mm: float = 3.0
    spine_incl_median_deg: float = 1.0
    spine_incl_p95_deg: float = 3.0
    spine_flex_median_deg: float = 2.0
    spine_flex_p95_deg: float = 6.0
    spine_lat_median_deg: float = 2.0
    spine_lat_p95_deg: float = 8.0
    spine_gt_rise_deg: float = 1.0  # with ground truth where the lifter has skill: 3D angle error may grow this much

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, items: Sequence[str]) -> Thresholds:
        """Apply ``NAME=VALUE`` overrides (CLI ``--gate``), e.g. ``pose_p95_px=6``."""
        names = [f.name for f in fields(self)]
        changes = {}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise InvalidOptionError(
                    f"--gate: '{item}' is not NAME=VALUE with NAME one of {', '.join(names)}{suggest(name, names)}"
                )
            try:
                changes[name] = float(value)
            except ValueError:
                raise InvalidOptionError(f"--gate: '{item}': '{value}' is not a number") from None
        return replace(self, **changes)


# A reference SimCC row whose value at the candidate's peak is within this share of the row's range (max - min)
# of its own peak has two near-equal peaks: which one wins is a coin toss for any lowered precision. Random-weight
# stand-ins are flat (measured on pose-s: far flips under OpenVINO's native FP16 sat at 0.02-1.3 % of the range),
# trained graphs are peaked, so this only removes coin tosses from the distance statistics.
TIE_SHARE_OF_RANGE = 0.02
TIE_RADIUS_PX = 6.0  # a tie only matters (and is set aside) when it moves the keypoint further than this


def _near_tie(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """``(N, K)`` True where the reference row ranks the candidate's peak within ``TIE_SHARE_OF_RANGE`` of its own."""
    peak = reference.max(-1)
    at_candidate = np.take_along_axis(reference, candidate.argmax(-1)[..., None], -1)[..., 0]
    spread = np.maximum(peak - reference.min(-1), 1e-12)
    return (peak - at_candidate) <= TIE_SHARE_OF_RANGE * spread


def pose_metrics(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> dict[str, float]:
    """SimCC agreement and keypoint distance (crop px) of ``candidate`` vs ``reference`` ``(N, K, bins)`` outputs.

    Far moves onto a near-tie of the reference (``_near_tie``) are counted in ``tie_share`` and left out of the
    distance percentiles: the reference itself cannot tell those two places apart.
    """
    ref_x, ref_y, got_x, got_y = reference["simcc_x"], reference["simcc_y"], candidate["simcc_x"], candidate["simcc_y"]
    agreement = float(np.mean((ref_x.argmax(-1) == got_x.argmax(-1)) & (ref_y.argmax(-1) == got_y.argmax(-1))))
    ref_xy = decode_simcc(ref_x, ref_y, mark_invalid=False)[0]
    got_xy = decode_simcc(got_x, got_y, mark_invalid=False)[0]
    distance = np.linalg.norm(ref_xy - got_xy, axis=-1)
    tie = (distance > TIE_RADIUS_PX) & _near_tie(ref_x, got_x) & _near_tie(ref_y, got_y)
    decisive = distance[~tie] if (~tie).any() else np.zeros(1)
    # near-ties set aside from the spine angles too (the reference cannot tell those places apart)
    kept = np.where(tie[..., None], ref_xy, got_xy)
    spine = spine_gate.pose_spine_metrics(ref_xy, kept) if _has_spine(ref_xy) else {}
    return {
        "argmax_agreement": agreement,
        "kpt_px_median": float(np.median(decisive)),
        "kpt_px_p95": float(np.percentile(decisive, 95)),
        "tie_share": float(np.mean(tie)),
        **_spine_change(ref_xy, got_xy, None, None),
        **spine,
    }


def _has_spine(points: np.ndarray) -> bool:
    return points.ndim == 3 and points.shape[1] == NUM_KEYPOINTS


def _spine_change(ref_xy, got_xy, ref_3d, got_3d) -> dict[str, float]:
    """Spine angle change in degrees (image-plane angles from crop keypoints: the crop warp is a similarity,
    so they equal the image's; 3D angles from the lifter's output with camera y flipped to point up).
    Graphs without the 37 SpineTrack keypoints (tiny test graphs) have no spine: nothing is reported."""
    if ref_xy.ndim != 3 or ref_xy.shape[1] != NUM_KEYPOINTS:
        return {}
    ones = np.ones(ref_xy.shape[:-1])
    if ref_3d is None:
        return angle_change(spine_angles(ref_xy, ones), spine_angles(got_xy, ones), NAMES_2D)
    turn = spine_gate.CAMERA_TO_Y_UP  # a rotation: a mirror would flip the signs of flexion and twist
    return angle_change(spine_angles(ref_xy, ones, ref_3d @ turn), spine_angles(got_xy, ones, got_3d @ turn), NAMES_3D)


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
    zeros = np.zeros(ref.shape[:-1] + (2,))
    spine = spine_gate.lifter_spine_metrics(ref, got) if _has_spine(ref) else {}
    return {"mpjpe_mm": float(np.linalg.norm(ref - got, axis=-1).mean() * 1000.0),
            **_spine_change(zeros, zeros, ref, got), **spine}  # fmt: skip


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


def ratio_se(change: np.ndarray, weight: np.ndarray) -> float:
    """Standard error of ``sum(change) / sum(weight)`` over independent people (ratio estimator): the
    spread of a paired accuracy change, with the keypoints of one person counted as one cluster."""
    change, weight = np.asarray(change, np.float64), np.asarray(weight, np.float64)
    n, total = len(change), weight.sum()
    if n < 2 or total <= 0:
        return 0.0
    residual = change - weight * change.sum() / total
    return float(np.sqrt(n / (n - 1) * np.sum(residual**2)) / total)


def accuracy_entry(role: str, reference: float, candidate: float, se: float = 0.0, **extra: object) -> dict:
    """Accuracy vs ground truth of the FP32 reference and the candidate, and whether it decides the gate.

    ``se`` is the standard error of the change (paired, over people); the gate judges its one-sided 95 %
    bound on the worse side (``worst``), so a gate set that happens to flatter an artifact does not pass it.
    """
    metric = ACCURACY_METRIC[role]
    change = float(candidate - reference)
    if role == "lifter":
        skilled = reference <= SKILL[role] * float(extra["mean_pose_mm"])
        floor = f"MPJPE {reference:.1f} mm > {SKILL[role]} x mean pose {extra['mean_pose_mm']} mm"
        worst = change + Z_95 * se  # error grows
    else:
        skilled = reference >= SKILL[role]
        floor = f"{metric} {reference:.3f} < {SKILL[role]}"
        worst = change - Z_95 * se  # accuracy drops
    entry = {
        "metric": metric,
        "fp32": round(float(reference), 4),
        "candidate": round(float(candidate), 4),
        "change": round(change, 4),
        "se": round(float(se), 4),
        "worst": round(worst, 4),
        "decides": bool(skilled),
        **extra,
    }
    if not skilled:
        entry["note"] = f"the FP32 graph has no skill on the ground truth ({floor}): FP32-relative thresholds decide"
    return entry


def spine_truth_entry(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """The 3D spine angles' error vs ground truth (per person, degrees) of FP32 and the candidate, and the
    one-sided 95 % bound of its rise (people without a measurable angle left out)."""
    keep = np.isfinite(reference) & np.isfinite(candidate)
    ref, got = reference[keep], candidate[keep]
    change = got - ref
    se = ratio_se(change, np.ones_like(change))
    rise = float(change.mean()) if change.size else 0.0
    return {"metric": "spine_deg", "fp32": round(float(ref.mean()) if ref.size else 0.0, 4),
            "candidate": round(float(got.mean()) if got.size else 0.0, 4), "change": round(rise, 4),
            "worst": round(rise + Z_95 * se, 4), "people": int(keep.sum())}  # fmt: skip


def _check_accuracy(role: str, accuracy: Mapping, thresholds: Thresholds) -> list[str]:
    failures = []
    change, worst = accuracy["change"], accuracy["worst"]
    limit = {
        "pose": -thresholds.pose_pck_drop,
        "lifter": thresholds.lifter_gt_mpjpe_rise_mm,
        "detector": -thresholds.detector_ap50_drop,
    }[role]
    if (worst > limit) if role == "lifter" else (worst < limit):
        label, unit = {"pose": ("PCK@0.05", ""), "lifter": ("MPJPE", " mm"), "detector": ("AP50", "")}[role]
        bound = f"95 % bound {worst:+.4g}{unit}"
        failures.append(f"{label} vs ground truth {change:+.4g}{unit} vs FP32 ({bound}) beyond {limit:+g}{unit}")
    spine = accuracy.get("spine")
    if spine and spine["worst"] > thresholds.spine_gt_rise_deg:
        failures.append(f"spine angles vs ground truth {spine['change']:+.3g} deg vs FP32 (95 % bound "
                        f"{spine['worst']:+.3g}) beyond +{thresholds.spine_gt_rise_deg:g}")  # fmt: skip
    return failures


def check(role: str, metrics: Mapping[str, float], thresholds: Thresholds = Thresholds()) -> list[str]:
    """Return the gate failures for one graph (empty list: passed)."""
    # The spine limits hold where the FP32 graph has skill on the gate scenes' ground truth, whatever decides the
    # rest (37-point accuracy does not see the spine); a graph without skill (random weights) has no angles to keep
    accuracy = metrics.get("accuracy")
    skilled = bool(accuracy and accuracy.get("decides")) and role in ("pose", "lifter")
    spine = spine_gate.gate_failures(metrics, thresholds.to_dict()) if skilled else []
    if accuracy and accuracy.get("decides"):  # ground truth decides; the FP32-relative metrics are reported
        return _check_accuracy(role, accuracy, thresholds) + spine
    failures = []
    if role == "pose":
        if metrics["argmax_agreement"] < thresholds.pose_argmax_agreement:
            failures.append(
                f"SimCC argmax agreement {metrics['argmax_agreement']:.3f} < {thresholds.pose_argmax_agreement}"
            )
        if metrics["kpt_px_median"] > thresholds.pose_median_px:
            failures.append(f"keypoint median {metrics['kpt_px_median']:.2f} px > {thresholds.pose_median_px}")
        if metrics["kpt_px_p95"] > thresholds.pose_p95_px:
            failures.append(f"keypoint p95 {metrics['kpt_px_p95']:.2f} px > {thresholds.pose_p95_px}")
        if metrics.get("tie_share", 0.0) > thresholds.pose_tie_share:
            failures.append(f"near-tie share {metrics['tie_share']:.3f} > {thresholds.pose_tie_share}")
    elif role == "detector" and "box_recall" in metrics:
        if metrics["box_recall"] < thresholds.detector_recall:
            failures.append(f"box recall {metrics['box_recall']:.3f} < {thresholds.detector_recall}")
        if metrics["box_iou"] < thresholds.detector_iou:
            failures.append(f"box IoU {metrics['box_iou']:.3f} < {thresholds.detector_iou}")
    elif role == "lifter" and metrics["mpjpe_mm"] > thresholds.lifter_mpjpe_mm:
        failures.append(f"lifter MPJPE {metrics['mpjpe_mm']:.2f} mm > {thresholds.lifter_mpjpe_mm}")
    return failures


# ------------------------------------------------------------------------------------- gate rounds


@dataclass
class Attempt:
    """One gate round: what was kept in float, the kept candidate's fidelity, and per-candidate results."""

    excluded: list[str]
    fidelity: dict  # metrics of the chosen candidate, with "gate" (passed, failures, thresholds)
    candidates: dict[str, Candidate] = field(default_factory=dict)
    chosen: str | None = None
    payload: object = None  # what the caller keeps from this round (the artifact); not reported

    @property
    def passed(self) -> bool:
        return Fidelity.from_dict(self.fidelity).passed  # one rule: the manifest's

    def to_round(self, index: int) -> Int8Round:
        """This round as the manifest's typed ``Int8Round``."""
        gate = self.fidelity.get("gate") or {}
        failures = tuple(gate.get("failures", ()))
        return Int8Round(index, len(self.excluded), self.passed, failures, self.chosen, dict(self.candidates))


@dataclass
class GateReport:
    """All rounds of one graph's gate; ``kept`` says what went into the bundle."""

    rounds: list[Attempt]
    ranking: list[dict] = field(default_factory=list)  # sensitivity ranking behind the exclusions
    kept: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.rounds) and self.rounds[-1].passed

    @property
    def final(self) -> Attempt:
        return self.rounds[-1]

    def to_report(self) -> Int8Report:
        """All rounds as the manifest's typed ``Int8Report`` (what the bundle records and the CLI shows)."""
        return Int8Report(
            tuple(a.to_round(i + 1) for i, a in enumerate(self.rounds)),
            tuple(self.final.excluded) if self.passed else (),
            self.kept,
            tuple(self.ranking),
        )

"""The one place fidelity, accuracy and gate results become text: ``export``, ``bench`` and ``infer`` tables.

Plain text (callers escape it for rich). Inputs are the manifest's own dicts: a graph's ``fidelity``
(``fidelity.measure`` + ``gate``), its ``accuracy`` entry vs ground truth (``fidelity.accuracy_entry``) and
a bench row's ``accuracy`` (``bench.accuracy.measure``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METRIC_LABEL = {"pck@0.05": "PCK@0.05", "ap50": "AP50", "mpjpe_mm": "MPJPE"}


def accuracy_text(accuracy: Mapping[str, Any]) -> str:
    """A gate's accuracy vs ground truth: 'PCK@0.05 0.912 (FP32 0.915)'."""
    metric = accuracy["metric"]
    if metric == "mpjpe_mm":
        return f"MPJPE {accuracy['candidate']:.1f} mm (FP32 {accuracy['fp32']:.1f})"
    return f"{METRIC_LABEL[metric]} {accuracy['candidate']:.3f} (FP32 {accuracy['fp32']:.3f})"


def accuracy_basis_text(accuracy: Mapping[str, Any]) -> str:
    """The accuracy entry and whether it decided the gate."""
    basis = "truth decides the gate" if accuracy.get("decides") else "FP32 has no skill there: FP32-relative gate"
    return f"vs ground truth {accuracy_text(accuracy)}, {basis}"


def measured_accuracy_text(accuracy: Mapping[str, Any] | None) -> str:
    """A bench row's accuracy: 'PCK@0.05 0.912' / 'AP50 0.975' / 'MPJPE 156.3 mm', or why there is none."""
    if not accuracy:
        return "-"
    if accuracy.get("value") is None:
        return f"not measured: {accuracy.get('error', '')}"
    metric, value = accuracy["metric"], accuracy["value"]
    if metric == "mpjpe_mm":
        return f"MPJPE {value:.1f} mm"
    return f"{METRIC_LABEL[metric]} {value:.3f}"


def fidelity_summary(fidelity: Mapping[str, Any] | None) -> str:
    """The gate verdict and the one number that matters per graph, vs the FP32 reference (bench tables)."""
    if not fidelity:
        return "-"
    if not fidelity.get("measured", True):
        return "not measured"
    gate = fidelity.get("gate") or {}
    verdict = "pass" if gate.get("passed", True) else "FAIL"
    if "argmax_agreement" in fidelity:
        return f"{verdict}: argmax {fidelity['argmax_agreement']:.3f}, p95 {fidelity['kpt_px_p95']:.1f} px"
    if "box_recall" in fidelity:
        return f"{verdict}: recall {fidelity['box_recall']:.2f}, IoU {fidelity['box_iou']:.3f}"
    if "mpjpe_mm" in fidelity:
        return f"{verdict}: MPJPE {fidelity['mpjpe_mm']:.2f} mm"
    return verdict


def fidelity_detail(fidelity: Mapping[str, Any]) -> str:
    """Every fidelity figure of one graph (the export table)."""
    if not fidelity.get("measured", True):
        return f"not measured: {fidelity['reason']}"
    parts = []
    if "argmax_agreement" in fidelity:
        parts.append(f"argmax {fidelity['argmax_agreement']:.3f}, p95 {fidelity['kpt_px_p95']:.2f} px")
    if "box_recall" in fidelity:
        parts.append(f"box recall {fidelity['box_recall']:.3f}, IoU {fidelity['box_iou']:.3f}")
    if "mpjpe_mm" in fidelity:
        parts.append(f"MPJPE {fidelity['mpjpe_mm']:.2f} mm")
    parts.append(f"max|d| {max(fidelity['max_abs'].values(), default=0):.2g}")
    if fidelity.get("accuracy"):  # vs ground truth (synthetic gate scenes)
        parts.append(accuracy_basis_text(fidelity["accuracy"]))
    return "; ".join(parts)


def gate_failures_text(fidelity: Mapping[str, Any]) -> str | None:
    """None without a gate, "" when it passed, else its failures joined."""
    gate = fidelity.get("gate")
    if gate is None:
        return None
    return "" if gate["passed"] else "; ".join(gate["failures"])

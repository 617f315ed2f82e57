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


def fidelity_summary(fidelity: Mapping[str, Any] | None, compact: bool = False) -> str:
    """The gate verdict and the one number that matters per graph, vs the FP32 reference (bench tables);
    ``compact``: only the number the gate decides on, in a few characters (narrow terminals)."""
    if not fidelity:
        return "-"
    if not fidelity.get("measured", True):
        return "n/a" if compact else "not measured"
    gate = fidelity.get("gate") or {}
    verdict = ("ok" if compact else "pass") if gate.get("passed", True) else "FAIL"
    if "argmax_agreement" in fidelity:
        p95 = fidelity["kpt_px_p95"]
        full, short = f"argmax {fidelity['argmax_agreement']:.3f}, p95 {p95:.1f} px", f"p95 {p95:.1f}px"
    elif "box_recall" in fidelity:
        recall = fidelity["box_recall"]
        full, short = f"recall {recall:.2f}, IoU {fidelity['box_iou']:.3f}", f"rec {recall:.2f}"
    elif "mpjpe_mm" in fidelity:
        full, short = f"MPJPE {fidelity['mpjpe_mm']:.2f} mm", f"{fidelity['mpjpe_mm']:.2f}mm"
    else:
        return verdict
    return f"{verdict} {short}" if compact else f"{verdict}: {full}"


def fidelity_detail(fidelity: Mapping[str, Any], compact: bool = False) -> str:
    """Every fidelity figure of one graph (the export table); ``compact``: the same metrics in fewer
    characters, no max|d| (see --json)."""
    if not fidelity.get("measured", True):
        return "not measured (--json says why)" if compact else f"not measured: {fidelity['reason']}"
    sep, px, mm, box = (" ", "px", "mm", "recall") if compact else (", ", " px", " mm", "box recall")
    parts = []
    if "argmax_agreement" in fidelity:
        p95 = f"{fidelity['kpt_px_p95']:.1f}" if compact else f"{fidelity['kpt_px_p95']:.2f}"
        parts.append(f"argmax {fidelity['argmax_agreement']:.3f}{sep}p95 {p95}{px}")
    if "box_recall" in fidelity:
        digits = 2 if compact else 3
        parts.append(f"{box} {fidelity['box_recall']:.{digits}f}{sep}IoU {fidelity['box_iou']:.{digits}f}")
    if "mpjpe_mm" in fidelity:
        parts.append(f"MPJPE {fidelity['mpjpe_mm']:.{1 if compact else 2}f}{mm}")
    if "spine_deg_p95" in fidelity:  # how far the spine angles moved (spinepose_deploy.spine)
        if compact:
            parts.append(f"spine p95 {fidelity['spine_deg_p95']:.1f}deg")
        else:
            parts.append(f"spine {fidelity['spine_deg_median']:.2f}/{fidelity['spine_deg_p95']:.2f} deg (median/p95)")
    if not compact:
        parts.append(f"max|d| {max(fidelity['max_abs'].values(), default=0):.2g}")
    if fidelity.get("accuracy"):  # vs ground truth (synthetic gate scenes)
        accuracy = fidelity["accuracy"]
        parts.append(accuracy_text(accuracy) if compact else accuracy_basis_text(accuracy))
    return "; ".join(parts) or "-"


def gate_failures_text(fidelity: Mapping[str, Any]) -> str | None:
    """None without a gate, "" when it passed, else its failures joined."""
    gate = fidelity.get("gate")
    if gate is None:
        return None
    return "" if gate["passed"] else "; ".join(gate["failures"])

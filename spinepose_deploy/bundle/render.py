"""The one place fidelity, accuracy and gate results become text: ``export``, ``bench`` and ``infer`` tables.

Plain text (callers escape it for rich). Inputs are the typed manifest (``bundle.manifest``): a graph's
``Fidelity`` (``fidelity.measure`` + gate) and its ``Accuracy`` vs ground truth; and a bench row's
``accuracy`` dict (``bench.accuracy.measure``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .manifest import Accuracy, Fidelity

METRIC_LABEL = {"pck@0.05": "PCK@0.05", "ap50": "AP50", "mpjpe_mm": "MPJPE"}


def accuracy_text(accuracy: Accuracy) -> str:
    """A gate's accuracy vs ground truth: 'PCK@0.05 0.912 (FP32 0.915)'."""
    if accuracy.metric == "mpjpe_mm":
        return f"MPJPE {accuracy.candidate:.1f} mm (FP32 {accuracy.fp32:.1f})"
    return f"{METRIC_LABEL[accuracy.metric]} {accuracy.candidate:.3f} (FP32 {accuracy.fp32:.3f})"


def accuracy_basis_text(accuracy: Accuracy) -> str:
    """The accuracy entry and whether it decided the gate."""
    basis = "truth decides the gate" if accuracy.decides else "FP32 has no skill there: FP32-relative gate"
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


def fidelity_summary(fidelity: Fidelity | None, compact: bool = False) -> str:
    """The gate verdict and the one number that matters per graph, vs the FP32 reference (bench tables);
    ``compact``: only the number the gate decides on, in a few characters (narrow terminals)."""
    if fidelity is None:
        return "-"
    if not fidelity.measured:
        return "n/a" if compact else "not measured"
    verdict = ("ok" if compact else "pass") if fidelity.gate is None or fidelity.gate.passed else "FAIL"
    m = fidelity.metrics
    if "argmax_agreement" in m:
        p95 = m["kpt_px_p95"]
        full, short = f"argmax {m['argmax_agreement']:.3f}, p95 {p95:.1f} px", f"p95 {p95:.1f}px"
    elif "box_recall" in m:
        recall = m["box_recall"]
        full, short = f"recall {recall:.2f}, IoU {m['box_iou']:.3f}", f"rec {recall:.2f}"
    elif "mpjpe_mm" in m:
        full, short = f"MPJPE {m['mpjpe_mm']:.2f} mm", f"{m['mpjpe_mm']:.2f}mm"
    else:
        return verdict
    return f"{verdict} {short}" if compact else f"{verdict}: {full}"


def fidelity_detail(fidelity: Fidelity, compact: bool = False) -> str:
    """Every fidelity figure of one graph (the export table); ``compact``: the same metrics in fewer
    characters, no max|d| (see --json)."""
    if not fidelity.measured:
        return "not measured (--json says why)" if compact else f"not measured: {fidelity.reason}"
    sep, px, mm, box = (" ", "px", "mm", "recall") if compact else (", ", " px", " mm", "box recall")
    m = fidelity.metrics
    parts = []
    if "argmax_agreement" in m:
        p95 = f"{m['kpt_px_p95']:.1f}" if compact else f"{m['kpt_px_p95']:.2f}"
        parts.append(f"argmax {m['argmax_agreement']:.3f}{sep}p95 {p95}{px}")
    if "box_recall" in m:
        digits = 2 if compact else 3
        parts.append(f"{box} {m['box_recall']:.{digits}f}{sep}IoU {m['box_iou']:.{digits}f}")
    if "mpjpe_mm" in m:
        parts.append(f"MPJPE {m['mpjpe_mm']:.{1 if compact else 2}f}{mm}")
    if "spine_deg_p95" in m:  # how far the spine angles moved (spinepose_deploy.spine)
        if compact:
            parts.append(f"spine p95 {m['spine_deg_p95']:.1f}deg")
        else:
            parts.append(f"spine {m['spine_deg_median']:.2f}/{m['spine_deg_p95']:.2f} deg (median/p95)")
    if not compact:
        parts.append(f"max|d| {max(m['max_abs'].values(), default=0):.2g}")
    if fidelity.accuracy is not None:  # vs ground truth (synthetic gate scenes)
        parts.append(accuracy_text(fidelity.accuracy) if compact else accuracy_basis_text(fidelity.accuracy))
    return "; ".join(parts) or "-"


def gate_failures_text(fidelity: Fidelity) -> str | None:
    """None without a gate, "" when it passed, else its failures joined."""
    if fidelity.gate is None:
        return None
    return "" if fidelity.gate.passed else "; ".join(fidelity.gate.failures)

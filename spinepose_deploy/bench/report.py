"""Bench output: the JSON document (written atomically), the PNG chart and the text both share with the
table (``config_text``, ``ms_text``; the rich table itself is ``cli.tables.bench_table``, with the CLI's others).

JSON (``SCHEMA``)::

    {schema, tool_version, created, wall_s, phases_s: {export, load, [accuracy,] measure}, standin,
     host: {cpu, flags, cores_logical, cores_physical, ram_gb, os, python, libraries, accelerators, key},
     settings: {mode, detector, model_version, batches, people, duration_s, bundles, weights, accuracy_scenes},
     rows: [{graph, model, backend, device, precision, batch, status, reason, load_s, first_ms, p50_ms,
             p90_ms, p99_ms, mean_ms, runs, items_per_s, rss_mb, executed, fidelity, accuracy, notes, bundle,
             standin}],
     skipped: [{config, reason}], selection: {role: {backend, precision, device, latency_ms, batch, model}},
     auto_vs_best: {auto_p50_ms, best, best_p50_ms, ratio} | null, notes: [str],
     accuracy: {scenes, people, weights: {role: real | trained | random}, note} | null}

A row's ``accuracy`` (``bench --accuracy N``, else null) is measured against the ground truth of the first N
held-out synthetic scenes: ``{metric: ap50 | pck@0.05 | mpjpe_mm, value, scenes, people, weights, ...}``
(``accuracy.py``); ``fidelity`` is the bundle's deviation from its FP32 reference.

Rows with graph ``pipeline`` are whole frames (``items_per_s`` is frames per second, ``batch`` the number
of people); the one with backend ``auto`` is the auto-selected mix, its per-graph choice in ``notes``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._atomic import write_text
from .._charts import check_matplotlib, pyplot, save_png
from .._version import __version__
from ..errors import InvalidOptionError
from .runner import EXPORT, FAILED_FIDELITY, PIPELINE, RAN, BenchRequest, BenchResult, BenchRow

SCHEMA = "spinepose-deploy-bench/1"
ROW_FIELDS = tuple(BenchRow.__dataclass_fields__)
GRAPH_ORDER = (EXPORT, "detector", "pose", "lifter", PIPELINE)


def ms_text(value: float | None) -> str:
    """A latency with the digits that matter: 0.123 / 12.34 / 123."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


_OPENVINO_TYPES = {"f32": "fp32", "f16": "fp16"}  # the compiled model's type names; "bf16" is already ours


def config_text(row: BenchRow) -> str:
    """'onnxruntime fp16', 'openvino/gpu bf16 (runs fp32)', or the auto mix with its per-graph choice."""
    if row.backend == "auto":
        return "auto (per-graph mix): " + ", ".join(row.notes)
    device = "" if row.device == "cpu" else f"/{row.device}"
    text = f"{row.backend}{device} {row.precision}"
    ran = {_OPENVINO_TYPES.get(part.lower(), part.lower()) for part in row.executed.split("/") if part}
    if ran and row.precision not in ran and row.precision != "int8":
        text += f" (runs {'/'.join(sorted(ran))})"  # e.g. fp16 on a CPU without FP16 computes in f32
    return text


def sorted_rows(rows: Sequence[BenchRow]) -> list[BenchRow]:
    """Export, detector, pose, lifter, pipeline; the auto mix after the single configs; by batch."""
    return sorted(rows, key=lambda r: (GRAPH_ORDER.index(r.graph) if r.graph in GRAPH_ORDER else 9,
                                       r.backend == "auto", r.batch))  # fmt: skip


def auto_vs_best(rows: Sequence[BenchRow]) -> tuple[BenchRow, BenchRow] | None:
    """(per-graph mix pipeline row, fastest single-config pipeline row that passes its gates), if both ran."""
    pipelines = [r for r in rows if r.graph == PIPELINE and r.status == RAN and r.p50_ms is not None]
    auto = [r for r in pipelines if r.backend == "auto"]
    others = [r for r in pipelines if r.backend != "auto"]  # "ran": every graph passed its gate
    if not auto or not others:
        return None
    return auto[0], min(others, key=lambda r: r.p50_ms or float("inf"))


def to_json(result: BenchResult, request: BenchRequest) -> dict[str, Any]:
    """The bench as one JSON-ready document (see the module docstring)."""
    selection = {
        role: {k: doc["choices"][0][k] for k in ("backend", "precision", "device", "latency_ms", "batch", "model")}
        for role, doc in result.selection.items()
    }
    return {
        "schema": SCHEMA,
        "tool_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(result.wall_s, 2),
        "phases_s": {name: round(seconds, 2) for name, seconds in result.phases.items()},
        "standin": result.standin,
        "host": result.host,
        "settings": {
            "mode": request.mode,
            "detector": request.detector,
            "model_version": request.model_version,
            "batches": list(request.batch_list),
            "people": request.people,
            "duration_s": request.duration_s,
            "bundles": [str(p) for p in request.bundles],
            "weights": request.weights,
            "accuracy_scenes": request.accuracy,
        },
        "rows": [row.to_dict() for row in sorted_rows(result.rows)],
        "skipped": [{"config": label, "reason": reason} for label, reason in result.skipped],
        "selection": selection,
        "auto_vs_best": _auto_vs_best_json(result.rows),
        "notes": list(result.notes),
        "accuracy": result.accuracy,
    }


def _auto_vs_best_json(rows: Sequence[BenchRow]) -> dict[str, Any] | None:
    pair = auto_vs_best(rows)
    if pair is None:
        return None
    auto, best = pair
    return {
        "auto_p50_ms": round(auto.p50_ms or 0, 3),
        "best": config_text(best),
        "best_p50_ms": round(best.p50_ms or 0, 3),
        "ratio": round((auto.p50_ms or 0) / (best.p50_ms or 1), 4),
    }


def write_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write atomically: a reader never sees half a file, an interrupted run leaves none."""
    return write_text(path, json.dumps(document, indent=2, default=str, allow_nan=False) + "\n")


def check_chart_available() -> None:
    """Fail up front (before minutes of benching) when --chart cannot be drawn."""
    check_matplotlib("--chart")


def _chart_label(row: BenchRow) -> str:
    return "auto-selected" if row.backend == "auto" else config_text(row)


def write_chart(rows: Sequence[BenchRow], path: str | Path, title: str = "") -> Path:
    """PNG: one panel per graph, p50 latency (p90 as the whisker) per backend x precision, grouped by batch.

    Bars of configs that failed their fidelity gate are hatched; failed rows are left out."""
    plt = pyplot("--chart")
    timed = [r for r in rows if r.p50_ms is not None]
    graphs = [g for g in GRAPH_ORDER if any(r.graph == g for r in timed)]
    if not graphs:
        raise InvalidOptionError("--chart: no row was measured, nothing to draw")
    configs = list(dict.fromkeys(_chart_label(r) for r in timed))  # one colour per config, in every panel
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(graphs), figsize=(4.2 * len(graphs) + 1.5, 4.8), squeeze=False)
    for ax, graph in zip(axes[0], graphs, strict=True):
        mine = [r for r in timed if r.graph == graph]
        batches = sorted({r.batch for r in mine})
        present = [c for c in configs if any(_chart_label(r) == c for r in mine)]
        width = 0.8 / len(present)
        top = 0.0
        for slot, config in enumerate(present):
            index = configs.index(config)
            for position, batch in enumerate(batches):
                match = [r for r in mine if r.batch == batch and _chart_label(r) == config]
                if not match:
                    continue
                row = match[0]
                x = position - 0.4 + width * (slot + 0.5)
                whisker = max((row.p90_ms or row.p50_ms) - row.p50_ms, 0.0)
                top = max(top, row.p50_ms + whisker)
                ax.bar(x, row.p50_ms, width, color=colours(index % 10), label=config if position == 0 else None,
                       hatch="//" if row.status == FAILED_FIDELITY else None, edgecolor="black", linewidth=0.4,
                       yerr=[[0], [whisker]], capsize=2, error_kw={"elinewidth": 0.8})  # fmt: skip
                ax.annotate(ms_text(row.p50_ms), (x, row.p50_ms + whisker), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 3), textcoords="offset points", rotation=90)  # fmt: skip
        label = "people" if graph == PIPELINE else "batch"
        ax.set_xticks(range(len(batches)), [f"{label} {b}" for b in batches])
        ax.set_xlim(-0.5, len(batches) - 0.5)
        ax.set_ylim(0, top * 1.3 or 1)
        ax.set_title("pipeline (one frame)" if graph == PIPELINE else graph)
        ax.set_ylabel("p50 latency, ms (whisker: p90)")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = [], []
    for ax in axes[0]:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            if text not in labels:
                handles.append(handle)
                labels.append(text)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return save_png(fig, path)

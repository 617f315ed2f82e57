"""Rich rendering of the CLI's results, in one place: bundle, INT8 gate, setup checks and accuracy headers.

Plain-text pieces (fidelity, accuracy) come from ``bundle.render``; these only lay them out as tables.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._console import compact_layout, new_table
from ..bundle import render
from ..bundle.bundle import Bundle
from ..bundle.manifest import Gate, Int8Report


def checks_table(checks: list) -> Table:
    """doctor's setup checks: one row each, the fix next to what is wrong."""
    table = new_table("Setup checks")
    for column in ("check", "status", "finding / fix"):
        table.add_column(column, overflow="fold")
    status = {True: "[green]ok[/]", False: "[red]problem[/]", None: "[dim]n/a[/]"}
    for check in checks:
        text = escape(check.finding) + (f"\n[bold]fix:[/] {escape(check.fix)}" if check.fix else "")
        table.add_row(check.name, status[check.ok], text)
    return table



def bundle_table(bundle: Bundle, console: Console) -> Table:
    """Per graph: model, size, fidelity vs FP32 and the gate; compact on narrow consoles (see _console)."""
    compact = compact_layout(console)
    table = new_table(f"{bundle.path}  ({bundle.backend} {bundle.precision})", console)
    columns = ("graph", "model", "MB", "vs FP32", "gate") if compact else (
        "graph", "model", "artifact", "size MB", "fidelity vs FP32", "gate")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column == "vs FP32")  # the gate column wraps instead
    for role, graph in bundle.info.graphs.items():
        size = sum((bundle.path / f).stat().st_size for f in graph.files) / 1e6
        model = graph.model + ((" *" if compact else " (stand-in)") if graph.standin else "")
        fidelity = render.fidelity_detail(graph.fidelity, compact) if graph.fidelity else "-"
        artifact = [] if compact else [graph.artifact]
        gate = graph.fidelity.gate if graph.fidelity else None
        table.add_row(role, model, *artifact, f"{size:.1f}", fidelity, _gate_text(gate, compact))
    if compact:
        table.caption = "* stand-in. Every metric: --json (or -v for the wide table)"
        table.caption_justify = "left"
    return table


def _gate_text(gate: Gate | None, compact: bool = False) -> str:
    if gate is None:
        return "-"
    failures = [_short_failure(f) for f in gate.failures] if compact else list(gate.failures)
    return "[green]pass[/]" if gate.passed else "[red]fail[/]: " + "; ".join(failures)


_SHORTER = (("SimCC argmax agreement", "argmax"), ("keypoint ", ""), ("box recall", "recall"), ("box IoU", "IoU"),
            ("lifter MPJPE", "MPJPE"), (" px", "px"), (" mm", "mm"), (" > ", ">"), (" < ", "<"))


def _short_failure(failure: str) -> str:
    """'keypoint p95 23.74 px > 6.0' -> 'p95 23.74px>6.0': the same numbers, in the compact layout."""
    for long, short in _SHORTER:
        failure = failure.replace(long, short)
    return failure


def int8_table(reports: dict[str, Int8Report], console: Console) -> Table:
    """INT8 gate rounds per graph: what was kept float, each candidate's result and latency, what was kept."""
    compact = compact_layout(console)
    table = new_table("INT8 fidelity gate (held-out frames)", console)
    columns = ("graph", "rnd", "float", "candidates", "result") if compact else (
        "graph", "round", "kept float", "candidates", "result")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for role, report in reports.items():
        for entry in report.rounds:
            cells = []
            for name, cand in entry.candidates.items():
                latency = f", {cand.latency_ms:.1f} ms" if cand.latency_ms is not None else ""
                failures = [_short_failure(f) for f in cand.failures] if compact else cand.failures
                verdict = "pass" if cand.passed else "; ".join(failures)
                if cand.accuracy:
                    text = render.accuracy_text if compact else render.accuracy_basis_text
                    verdict += f" ({text(cand.accuracy)})"
                cells.append(f"{name}: {verdict}{latency}")
            last = entry is report.rounds[-1]
            result = ("[green]pass[/]" if entry.passed else "[red]fail[/]") + (
                f" -> {escape(report.kept)}" if last and report.kept else ""
            )
            kept = f"{entry.excluded}" if compact else f"{entry.excluded} nodes"
            table.add_row(role, str(entry.index), kept, escape("\n".join(cells)), result)
    return table



def accuracy_header(kinds: dict[str, str], scenes: int) -> str:
    """One line: what the accuracy column is measured on, and whether it means anything."""
    trained = [role for role, kind in kinds.items() if kind == "trained"]
    real = [role for role, kind in kinds.items() if kind == "real"]
    random = [role for role, kind in kinds.items() if kind == "random"]
    parts = [f"{', '.join(roles)} {label}" for roles, label in (
        (trained, "trained stand-ins (meaningful on these scenes)"), (real, "real weights"),
        (random, "[yellow]random stand-ins: no skill, accuracy not measured[/]")) if roles]  # fmt: skip
    return f"accuracy vs ground truth on the first {scenes} held-out synthetic scenes: " + "; ".join(parts)

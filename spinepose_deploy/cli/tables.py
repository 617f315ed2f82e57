"""Every rich table the CLI prints, in one place: host capabilities and setup checks (doctor), the model zoo
(models), bundle and INT8 gate (export), bench rows and the accuracy header (bench), the spine summary (infer).

Plain-text pieces come from the layers that own them (``bundle.render``: fidelity and accuracy;
``bench.report``: a row's config and latency text, shared with its JSON and chart; ``spine.summary``: the
summary's cells); these only lay them out. Only the CLI prints tables, so they live at its layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._console import compact_layout, new_table
from ..bench.report import config_text, ms_text, sorted_rows
from ..bench.runner import FAILED, FAILED_FIDELITY, PIPELINE, RAN, BenchRow
from ..bundle import render
from ..bundle.bundle import Bundle
from ..bundle.manifest import Fidelity, Gate, Int8Report

_STATUS_STYLE = {RAN: "green", FAILED_FIDELITY: "yellow", FAILED: "red"}


def capabilities_table(rows: list) -> Table:
    """doctor's backend x device rows: the precisions that run, the version, why the others do not."""
    table = new_table("What this host can run")
    for column in ("backend", "device", "runs", "version", "why not"):
        table.add_column(column, overflow="fold")
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        grouped.setdefault((row.backend, row.device), []).append(row)
    for (backend, device), cells in grouped.items():
        runs = " ".join(c.precision for c in cells if c.ok) or "[red]no[/]"
        reasons = "; ".join(
            dict.fromkeys(
                f"{c.precision}: {c.reason}" if any(x.ok for x in cells) else c.reason for c in cells if not c.ok
            )
        )
        table.add_row(
            backend, device, f"[green]{runs}[/]" if "no" not in runs else runs, cells[0].version or "-", escape(reasons)
        )
    return table


def zoo_table(specs: list, local: dict, wide: bool) -> Table:
    """models: every released graph, its contract and size, and what this machine has of it (``local``:
    name -> ``zoo.inventory`` entry); ``wide`` adds the outputs and longer headings."""
    table = new_table("SpinePose model zoo: what this machine has" if wide else "Model zoo: what you have")
    columns = ["name", "role", "input", *(["outputs"] if wide else []), "params M" if wide else "Mparam",
               "GFLOPs", "real weights" if wide else "real", "stand-in", "MB"]  # fmt: skip
    for column in columns:
        numeric = column in ("params M", "Mparam", "GFLOPs", "MB")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "name")
    for spec in specs:
        copy = local[spec.name]
        real = ("pinned" if copy.pinned else "cached") if copy.cached else ("pin only" if copy.pinned else "-")
        table.add_row(
            spec.name,
            spec.role.value,
            "x".join(map(str, spec.input_size)),
            *([", ".join(o.name or "?" for o in spec.outputs)] if wide else []),
            f"{spec.params_m:.2f}" if spec.params_m else "-",
            f"{spec.gflops:.2f}" if spec.gflops else "-",
            real,
            "built" if copy.standins else "-",
            f"{copy.size_bytes / 1e6:.1f}" if copy.size_bytes else "-",
        )
    return table


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
            ("lifter MPJPE", "MPJPE"), (" px", "px"), (" mm", "mm"), (" > ", ">"), (" < ", "<"))  # fmt: skip


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


_WIDE = [("graph", "left"), ("config", "left"), ("batch", "right"), ("status", "left"), ("load s", "right"),
         ("first ms", "right"), ("p50 / p90 / p99 ms", "right"), ("items/s", "right"), ("ΔRSS MB", "right"),
         ("fidelity vs FP32", "left")]  # fmt: skip
_COMPACT = [("graph", "left"), ("config", "left"), ("b", "right"), ("status", "left"), ("p50 ms", "right"),
            ("p99 ms", "right"), ("items/s", "right"), ("vs FP32", "left")]  # fmt: skip
_SHORT_STATUS = {RAN: RAN, FAILED_FIDELITY: "gate fail", FAILED: FAILED}


def bench_table(rows: Sequence[BenchRow], title: str = "spinepose-deploy bench", compact: bool = False) -> Table:
    """One line per graph x config x batch (status in colour, reason when it failed); an accuracy column
    when any row was scored against ground truth (``--accuracy``).

    ``compact`` (~80 columns: pipes, CI logs, laptops): what picks the winner stays (p50, p99, throughput, the
    gate's number); load time, first run, p90, memory and the full fidelity go to ``--json`` / ``-v``, and
    failure reasons become numbered notes under the table instead of a wrapped column."""
    table = new_table(title) if compact else Table(title=title, show_lines=False)
    scored = any(row.accuracy for row in rows)
    columns = (_COMPACT if compact else _WIDE) + ([("vs truth" if compact else "accuracy vs truth", "left")]
                                                  if scored else [])  # fmt: skip
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    notes: list[str] = []
    previous = None
    for row in sorted_rows(rows):
        if previous is not None and row.graph != previous:
            table.add_section()
        previous = row.graph
        cells = _compact_cells(row, notes) if compact else _wide_cells(row)
        table.add_row(*cells, *([escape(render.measured_accuracy_text(row.accuracy))] if scored else []))
    if notes:
        table.caption = escape("\n".join(notes))
        table.caption_justify = "left"
    return table


def _wide_cells(row: BenchRow) -> list[str]:
    style = _STATUS_STYLE.get(row.status, "white")
    status = f"[{style}]{row.status}[/]" + (f": {escape(row.reason)}" if row.reason else "")
    timing = "-" if row.p50_ms is None else f"{ms_text(row.p50_ms)} / {ms_text(row.p90_ms)} / {ms_text(row.p99_ms)}"
    unit = " f/s" if row.graph == PIPELINE else ""
    return [
        row.graph,
        escape(config_text(row)),
        str(row.batch),
        status,
        "-" if row.load_s is None else f"{row.load_s:.2f}",
        ms_text(row.first_ms),
        timing,
        "-" if row.items_per_s is None else f"{row.items_per_s:.1f}{unit}",
        "-" if row.rss_mb is None else f"{row.rss_mb:.0f}",
        escape(render.fidelity_summary(_row_fidelity(row))) if row.graph != PIPELINE else "-",
    ]


def _row_fidelity(row: BenchRow) -> Fidelity | None:
    return Fidelity.from_dict(row.fidelity) if row.fidelity else None


def _compact_cells(row: BenchRow, notes: list[str]) -> list[str]:
    """The compact row; a failure's reason is appended to ``notes`` and referenced by its number."""
    style = _STATUS_STYLE.get(row.status, "white")
    status = f"[{style}]{_SHORT_STATUS.get(row.status, row.status)}[/]"
    if row.reason:
        notes.append(f"[{len(notes) + 1}] {row.graph} {config_text(row)}: {row.reason}")
        status += f" \\[{len(notes)}]"
    config = "auto (mix)" if row.backend == "auto" else config_text(row)
    return [
        row.graph,
        escape(config.replace("onnxruntime", "ort").replace("openvino", "ov")),
        str(row.batch),
        status,
        ms_text(row.p50_ms),
        ms_text(row.p99_ms),
        "-" if row.items_per_s is None else f"{row.items_per_s:.1f}",
        "-" if row.graph == PIPELINE else escape(render.fidelity_summary(_row_fidelity(row), compact=True)),
    ]


def spine_summary_table(header: list[str], rows: list[list[str]], standin: bool) -> Table:
    """infer's per-track spine summary (zones, peaks, ROM, CVA; cells from ``spine.summary.table_rows``)."""
    title = "spine summary" + (" (STAND-IN weights: the angles mean nothing)" if standin else "")
    table = Table(*header, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table

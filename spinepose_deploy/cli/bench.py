"""``spinepose-deploy bench``: time every configuration here, per graph and end to end; store the fastest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .._console import STANDIN_BANNER, compact_layout, err_console, out_console
from .._progress import ProgressEvent
from ..errors import InvalidOptionError
from .app import app
from .options import Detector, Mode, ModelVersion, Weights, given
from .tables import accuracy_header, bench_table


def _csv(option: str, text: str | None, cast: type = str) -> tuple | None:
    """``a,b,c`` -> tuple (None stays None); a bad item names the option."""
    if text is None:
        return None
    try:
        return tuple(cast(item.strip()) for item in text.split(",") if item.strip())
    except ValueError:
        raise InvalidOptionError(f"{option}: '{text}' is not a comma-separated list of {cast.__name__}") from None


@app.command()
def bench(
    bundles: Annotated[
        list[Path] | None, typer.Argument(help="Bundles to bench (default: export the mode for every backend here).")
    ] = None,
    mode: Mode = None,
    detector: Detector = None,
    model_version: ModelVersion = None,
    backends: Annotated[str | None, typer.Option(help="Comma list (default: every backend this host runs).")] = None,
    precisions: Annotated[
        str | None,
        typer.Option(help="Comma list: fp32,bf16,fp16,int8 (default: every one this host runs without "
                     "calibration; int8 only when already exported)."),
    ] = None,
    batch: Annotated[
        str | None, typer.Option(help="Pose/lifter batch sizes, e.g. 1,4,8 (default: 1 and --people).")
    ] = None,
    people: Annotated[int, typer.Option(help="People per frame for the pipeline rows and the auto-selection.")] = 6,
    duration: Annotated[
        float, typer.Option(help="Seconds timed per graph, batch and config (p99 needs >= 2 s to mean much).")
    ] = 0.25,
    weights: Weights = None,
    accuracy: Annotated[
        int,
        typer.Option(help="Also score each graph against ground truth on the first N held-out synthetic scenes "
                     "(AP50, PCK@0.05, MPJPE; e.g. 20, ~2 s per config). 0: off."),
    ] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results (with host info) here.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG chart here (needs the 'chart' extra).")] = None,
) -> None:
    """Time every backend x precision this host runs, per graph and end to end, and store the fastest that passes."""
    # lazy: the CLI starts without loading what this command needs
    from .._console import steps
    from ..backends.host import describe, fingerprint
    from ..bench import report, runner

    start = time.perf_counter()
    request = runner.BenchRequest(
        bundles=tuple(bundles or ()), backends=_csv("--backends", backends),
        precisions=_csv("--precisions", precisions), batches=_csv("--batch", batch, int), people=people,
        duration_s=duration, accuracy=accuracy,
        **given(mode=mode, detector=detector, model_version=model_version, weights=weights),
    )  # fmt: skip
    request.validate()
    if chart is not None:
        report.check_chart_available()
    console = out_console
    compact = compact_layout(console)  # narrow terminals, pipes, CI logs: the deciding numbers, unfolded
    host = fingerprint()
    zoo = f"{request.mode} mode ({request.detector}, {request.model_version})"
    title = f"bench: {'bundles' if bundles else zoo}, {people} people"
    console.print(f"[bold]{escape(title)}[/]\nhost: {escape(describe(host))}", highlight=False, soft_wrap=True)
    standin = runner.uses_standins(request)
    if standin:
        console.print(STANDIN_BANNER, soft_wrap=True)
    if accuracy:
        console.print(accuracy_header(runner.weights_kinds(request), accuracy), highlight=False, soft_wrap=True)
    rows: list = []
    try:
        with steps() as progress:
            task = progress.add_task("planning", total=None)

            def say(event: ProgressEvent) -> None:
                progress.update(task, description=f"{escape(event.message)} ({len(rows)} rows)")

            result = runner.run_bench(request, on_row=rows.append, progress=say)
    except KeyboardInterrupt:
        console.print(bench_table(rows, title=f"{title} (interrupted)", compact=compact))
        err_console.print(f"[yellow]interrupted[/]: {len(rows)} rows finished; no JSON or chart written")
        raise typer.Exit(130) from None
    console.print(bench_table(result.rows, title=title, compact=compact))
    for label, reason in result.skipped:
        console.print(f"[dim]skipped {escape(label)}: {escape(reason)}[/]", highlight=False, soft_wrap=True)
    for role, document in result.selection.items():
        best = document["choices"][0]
        console.print(
            f"auto-select {role}: [bold]{best['backend']} {best['precision']}[/] "
            f"({best['latency_ms']:.2f} ms at batch {best['batch']})",
            highlight=False,
            soft_wrap=True,
        )
    document = report.to_json(result, request)
    document["wall_s"] = round(time.perf_counter() - start, 2)
    versus = document["auto_vs_best"]
    if versus:
        console.print(
            f"per-graph mix pipeline: {versus['auto_p50_ms']:.1f} ms/frame, {versus['ratio']:.2f}x the fastest "
            f"single configuration ({escape(versus['best'])}, {versus['best_p50_ms']:.1f} ms)",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"auto-select: {escape(note)}", highlight=False, soft_wrap=True)
    if result.accuracy and result.accuracy["note"]:
        console.print(f"[yellow]accuracy[/]: {escape(result.accuracy['note'])}", highlight=False, soft_wrap=True)
    if json_out is not None:
        report.write_json(json_out, document)
        console.print(f"JSON: {json_out}")
    if chart is not None:
        report.write_chart(result.rows, chart, title=f"{title}; {host.get('cpu')}" + (" (STAND-IN)" if standin else ""))
        console.print(f"chart: {chart}")
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases.items())
    console.print(f"bench took {document['wall_s']:.0f} s ({phases})", highlight=False, soft_wrap=True)

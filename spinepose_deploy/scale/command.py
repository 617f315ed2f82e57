"""``spinepose-deploy infer SOURCE --ray``: the CLI's options -> ``infer_on_ray`` -> a few lines of report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from .._console import STANDIN_BANNER, err_console, out_console
from ..errors import InvalidOptionError
from ..pipeline.spec import PipelineSpec
from ..pipeline.spine_outputs import SpineRequest
from .objstore import as_url
from .ray_infer import infer_on_ray
from .segments import DEFAULT_SEGMENT_SECONDS

SHOWN_FAILURES = 10


def ray_infer_command(
    source: str,
    address: str | None,
    *,
    bundle: Path | None,
    zoo: dict[str, str | None],
    backend: str | None,
    options: dict[str, Any],
    spine_only: bool,
    json_out: Path | None,
    vis: Path | None,
    show: bool,
    spine: SpineRequest | None = None,
    segment_seconds: float | None = None,
) -> int:
    """Run ``infer`` on Ray; returns the exit code (0 all done, 1 some input failed, 130 interrupted).

    ``zoo`` maps the zoo options as spelled on the command line (``--mode`` ...) to their values;
    ``segment_seconds`` None: the default (``segments.DEFAULT_SEGMENT_SECONDS``).
    """
    if show:
        raise InvalidOptionError("--show: not available with --ray (the workers have no screen)")
    if options.get("calibration") is not None:  # workers run in their own folder: the same file, by absolute path
        options = {**options, "calibration": str(Path(options["calibration"]).absolute())}
    fields = {name.removeprefix("--").replace("-", "_"): value for name, value in zoo.items()}
    spec = PipelineSpec.from_cli(bundle, backend, "auto", options=options, **fields)  # auto: per node
    # typer made s3://b/out a Path (s3:/b/out): as_url gives the URL back
    summary = infer_on_ray(source, pipeline=spec, out_json=as_url(json_out) or json_out, out_vis=as_url(vis) or vis,
                           spine_only=spine_only, address=address, spine=spine,
                           segment_seconds=DEFAULT_SEGMENT_SECONDS if segment_seconds is None else segment_seconds)
    if summary.standin:
        err_console.print(STANDIN_BANNER)
    for outcome in summary.failed[:SHOWN_FAILURES]:
        err_console.print(f"[red]failed[/] {escape(outcome.name)}: {escape(outcome.error or '')}", highlight=False)
    if len(summary.failed) > SHOWN_FAILURES:
        err_console.print(f"... and {len(summary.failed) - SHOWN_FAILURES} more failures (see the summary)")
    where = "; ".join(summary.pipelines) or "no workers needed"
    out_console.print(
        f"{len(summary.done)} done, {len(summary.skipped)} skipped, {len(summary.failed)} failed: "
        f"{summary.frames} frames, {summary.fps:.1f} fps on {summary.actors} Ray actors ({escape(where)})"
        + (f", {summary.segments} video segments" if summary.segments else "")
        + (" [yellow]STAND-IN[/]" if summary.standin else "")
        + (f" [yellow]interrupted[/], {summary.pending} pending: rerun to resume" if summary.interrupted else ""),
        highlight=False,
    )
    for path in summary.spine_files:
        out_console.print(f"spine: {escape(str(path))}", highlight=False)
    out_console.print(f"summary: {escape(str(summary.path))}", highlight=False)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0

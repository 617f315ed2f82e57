"""The ``spinepose-deploy`` command: parse options, call the API, render with rich. No logic of its own."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import paths
from ._console import STANDIN_BANNER, compact_layout, err_console, new_table, out_console, show_wide_tables
from ._version import __version__
from .backends.formats import FORMATS
from .errors import InvalidOptionError, SpinePoseDeployError, check_choice
from .export import render
from .export.manifest import Gate, Int8Report

if TYPE_CHECKING:
    from .export.bundle import Bundle

app = typer.Typer(
    help="Run SpinePose (spine-aware 2D/3D pose) fast on ONNX Runtime, OpenVINO, Core ML and TensorRT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List, fetch and build the model graphs (detector, pose, lifter).")
app.add_typer(models_app, name="models")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")]


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    show_wide_tables(verbose)  # the full tables, however narrow the terminal
    if version:
        out_console.print(f"spinepose-deploy {__version__}")
        raise typer.Exit()


# -- models ----------------------------------------------------------------------------------------
@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every released graph with its role, input, contract and published size."""
    if ctx.invoked_subcommand is not None:
        return
    # lazy: the CLI starts without loading what this command needs
    from .zoo.inventory import cache_size, inventory
    from .zoo.specs import MODELS, MODES, SPINEPOSE_LICENSE

    local = {copy.name: copy for copy in inventory(list(MODELS.values()))}
    if as_json:
        _print_json(
            {
                "models": [{**s.to_dict(), "local": local[s.name].to_dict()} for s in MODELS.values()],
                "modes": {
                    m.name: {"pose": m.pose_variant, "detectors": m.detectors, "versions": m.versions}
                    for m in MODES.values()
                },
                "cache": {"path": str(paths.cache_dir()), "size_bytes": cache_size()},
            }
        )
        return
    wide = not compact_layout()
    table = new_table("SpinePose model zoo: what this machine has" if wide else "Model zoo: what you have")
    columns = ["name", "role", "input", *(["outputs"] if wide else []), "params M" if wide else "Mparam",
               "GFLOPs", "real weights" if wide else "real", "stand-in", "MB"]  # fmt: skip
    for column in columns:
        numeric = column in ("params M", "Mparam", "GFLOPs", "MB")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "name")
    for spec in MODELS.values():
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
    out_console.print(table)
    modes = ", ".join(
        f"{m.name}: {m.detectors['yolox']}|{m.detectors['rfdetr']} + pose-{m.pose_variant}" for m in MODES.values()
    )
    out_console.print(f"Modes: {modes}")
    shipped = ", ".join(copy.name for copy in local.values() if copy.trained)
    out_console.print(f"Trained stand-ins ship with the package for: {shipped or 'none'} (--weights trained).")
    out_console.print(
        f"Cache: {paths.cache_dir()} ({cache_size() / 1e6:.1f} MB in all, bundles included); "
        "'models fetch NAME' downloads real weights, 'models build NAME' builds a stand-in."
    )
    out_console.print(f"SpinePose weights are {SPINEPOSE_LICENSE}; detectors carry their own licences.")


@models_app.command("build")
def models_build(
    names: Annotated[list[str], typer.Argument(help="Model names (see 'spinepose-deploy models'), or 'all'.")],
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached stand-in exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build architecture-faithful stand-in graphs (seeded weights) into the cache."""
    from .zoo.specs import MODELS, get_spec  # lazy: the CLI starts without loading what this command needs

    specs = list(MODELS.values()) if names == ["all"] else [get_spec(n) for n in names]
    from .zoo.standins import build_standin  # lazy: the CLI starts without loading what this command needs

    err_console.print(STANDIN_BANNER)
    rows = []
    for spec in specs:
        start = time.perf_counter()
        path = build_standin(spec, force=force, progress=not as_json)
        rows.append(
            {
                "name": spec.name,
                "path": str(path),
                "size_mb": round(path.stat().st_size / 1e6, 2),
                "seconds": round(time.perf_counter() - start, 2),
                "standin": True,
            }
        )
        if not as_json:
            err_console.print(f"built {spec.name}: {path} ({rows[-1]['size_mb']} MB, {rows[-1]['seconds']} s)")
    if as_json:
        _print_json(rows)


@models_app.command("fetch")
def models_fetch(
    names: Annotated[list[str], typer.Argument(help="Model names to download (see 'spinepose-deploy models').")],
    repin: Annotated[
        bool, typer.Option(help="Fetch afresh and pin the new file's sha256 (after a legitimate update).")
    ] = False,
    offline: Annotated[bool, typer.Option(help="Never touch the network; fail naming the missing file.")] = False,
) -> None:
    """Download released graphs into the cache (sha256 pinned, I/O contract checked)."""
    # lazy: the CLI starts without loading what this command needs
    from .zoo import fetch
    from .zoo.specs import get_spec

    for name in names:
        spec = get_spec(name)
        get = fetch.repin if repin else fetch.fetch_model
        path = get(spec, offline=offline or None, progress=True)
        out_console.print(f"{spec.name}: {path}")


# -- doctor ----------------------------------------------------------------------------------------
@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Show which backend x device x precision this host can run, with versions and the reason for each 'no'."""
    from .backends import capabilities  # lazy: the CLI starts without loading what this command needs
    from .backends.checks import setup_checks

    rows, checks = capabilities(), setup_checks()
    if as_json:
        _print_json({"capabilities": [row.__dict__ for row in rows], "checks": [c.to_dict() for c in checks]})
        return
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
    out_console.print(table)
    out_console.print(_checks_table(checks))


def _checks_table(checks: list) -> Table:
    """doctor's setup checks: one row each, the fix next to what is wrong."""
    table = new_table("Setup checks")
    for column in ("check", "status", "finding / fix"):
        table.add_column(column, overflow="fold")
    status = {True: "[green]ok[/]", False: "[red]problem[/]", None: "[dim]n/a[/]"}
    for check in checks:
        text = escape(check.finding) + (f"\n[bold]fix:[/] {escape(check.fix)}" if check.fix else "")
        table.add_row(check.name, status[check.ok], text)
    return table


# -- export ----------------------------------------------------------------------------------------
@app.command()
def export(
    backend: Annotated[str, typer.Option(help=" | ".join(FORMATS))],
    out: Annotated[Path, typer.Option(help="Bundle directory to write (must be new or empty unless --force).")],
    precision: Annotated[
        str, typer.Option(help=" | ".join(dict.fromkeys(p for f in FORMATS.values() for p in f.precisions))
                          + " (bf16: openvino on CPUs with BF16; int8: see --calib)")
    ] = "fp32",
    mode: Annotated[str, typer.Option(help="small | medium | large | xlarge")] = "small",
    detector: Annotated[str, typer.Option(help="yolox | rfdetr")] = "yolox",
    model_version: Annotated[str, typer.Option("--model-version", help="v2 (latest) | v1")] = "v2",
    batch: Annotated[
        str, typer.Option(help="Pose/lifter batch range MIN:OPT:MAX (TensorRT profile, Core ML range).")
    ] = "1:4:16",
    weights: Annotated[
        str,
        typer.Option(
            help="auto (cached real weights, else stand-ins) | real | standin | trained (the packaged stand-ins "
            "trained on the synthetic world, random stand-ins for the others)"
        ),
    ] = "auto",
    models_dir: Annotated[
        Path | None, typer.Option(help="Folder with local ONNX files that override downloads.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing non-empty --out (only once the new bundle is complete).")
    ] = False,
    calib: Annotated[
        str | None,
        typer.Option(
            help="INT8 calibration: a folder of images (person boxes from an optional boxes.json), a video, or "
            "synth[:N] (N rendered scenes; the gate then also scores against ground truth). "
            "Default: calib_data/ (synth with --weights trained)."
        ),
    ] = None,
    calib_method: Annotated[
        str | None,
        typer.Option(help="INT8: minmax | entropy | percentile (default: percentile for tensorrt/tensorrt-rtx, "
                     "whose symmetric activations failed the gate with minmax; minmax otherwise)"),
    ] = None,
    calib_samples: Annotated[
        int | None, typer.Option(help="INT8: calibration samples (frames; augmented when fewer). Default 64.")
    ] = None,
    fallback: Annotated[
        str, typer.Option(help="INT8: none (stop with a report) | fp16 (keep FP16 for graphs failing the gate)")
    ] = "none",
    gate: Annotated[
        list[str] | None,
        typer.Option(help="Fidelity gate threshold NAME=VALUE (repeatable), e.g. pose_p95_px=6."),
    ] = None,
    onnx_only: Annotated[
        bool,
        typer.Option(
            "--onnx-only",
            help="TensorRT: write the exact ONNX graphs and trtexec lines, no engines (no TensorRT needed); "
            "engines are built on the GPU on first use.",
        ),
    ] = False,
    compute_capability: Annotated[
        str | None,
        typer.Option(
            "--compute-capability",
            help="TensorRT-RTX: GPU compute capabilities to build for, e.g. 8.6,8.9,12.0 (7.5 for Turing). "
            "Default: TensorRT-RTX's own set (Ampere and later).",
        ),
    ] = None,
    coreml_shapes: Annotated[
        str,
        typer.Option(
            "--coreml-shapes",
            help="Core ML pose/lifter batch: enumerated (1,2,4,8,16 within --batch; the Neural Engine runs them) "
            "| range (RangeDim: only its default size on the Neural Engine).",
        ),
    ] = "enumerated",
    as_json: JsonFlag = False,
) -> None:
    """Export a mode's detector, pose and lifter graphs as a verified bundle for one backend and precision."""
    # lazy: the CLI starts without loading what this command needs
    from ._console import steps
    from .backends.tensorrt_build import target_names
    from .errors import GateFailedError
    from .export.base import BatchRange
    from .export.exporter import ExportRequest, export_bundle
    from .export.fidelity import Thresholds

    request = ExportRequest(
        backend=backend,
        out=out,
        precision=precision,
        mode=mode,
        detector=detector,
        model_version=model_version,
        batch=BatchRange.parse(batch),
        weights=weights,
        models_dir=models_dir,
        force=force,
        thresholds=Thresholds().with_overrides(gate or []),
        calib=calib,
        calib_method=calib_method,
        calib_samples=calib_samples,
        fallback=fallback,
        onnx_only=onnx_only,
        compute_capabilities=target_names(compute_capability),
        coreml_shapes=coreml_shapes,
    )
    source = request.validate()  # the calibration data is checked and opened once, here
    try:
        with steps(enabled=not as_json) as progress:
            task = progress.add_task("export", total=12)

            def advance(message: str) -> None:
                if message.startswith("calibration data: "):  # which data was used: always said
                    err_console.print(escape(message), highlight=False)
                progress.update(task, description=message, advance=1)

            bundle = export_bundle(request, progress=advance, source=source)
            progress.update(task, completed=12, description="done")
    except GateFailedError as exc:  # the report first, then main() prints the one-line error
        err_console.print(_int8_table({exc.role: Int8Report.from_dict(exc.report.to_dict())}, err_console))
        raise
    if as_json:
        _print_json(bundle.manifest)
        return
    if bundle.standin:
        err_console.print(STANDIN_BANNER)
    reports = {role: entry.int8 for role, entry in bundle.info.graphs.items() if entry.int8}
    if reports:
        out_console.print(_int8_table(reports, out_console))
    out_console.print(_bundle_table(bundle, out_console))
    if bundle.info.onnx_only:  # what a Jetson / GPU owner runs in the bundle directory
        out_console.print("Engines are built on the GPU on first use (Pipeline.from_bundle), or with:", highlight=False)
        for role in bundle.roles:
            out_console.print(escape(bundle.entry(role).extra["trtexec"]), highlight=False, soft_wrap=True)


def _bundle_table(bundle: Bundle, console: Console) -> Table:
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


def _int8_table(reports: dict[str, Int8Report], console: Console) -> Table:
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


# -- infer -----------------------------------------------------------------------------------------
@app.command()
def infer(
    input: Annotated[str, typer.Argument(help="An image, a folder of images/videos, a video file, or a webcam index.")],
    bundle: Annotated[Path | None, typer.Option(help="Bundle directory from 'spinepose-deploy export'.")] = None,
    mode: Annotated[str | None, typer.Option(help="small | medium | large | xlarge (default small)")] = None,
    detector: Annotated[str | None, typer.Option(help="yolox | rfdetr (default yolox)")] = None,
    model_version: Annotated[str | None, typer.Option("--model-version", help="v2 (default) | v1")] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="auto (default: the fastest measured here) | onnxruntime | openvino | coreml | tensorrt; "
                     "--backend onnxruntime --precision fp32 is the strict reference"),
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="fp32 | bf16 | fp16 | int8 (default: fp32, or auto's measured choice)")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="auto (default) | real | standin | trained (stand-ins trained on 'synth' scenes)")
    ] = None,
    lift: Annotated[bool, typer.Option(help="Lift to 3D (camera space; world space for video/images).")] = False,
    spine_only: Annotated[bool, typer.Option(help="Keep only the 9 spine keypoints in JSON and overlays.")] = False,
    max_people: Annotated[int | None, typer.Option(help="At most N people per frame (highest scores).")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="OpenPose JSON: a .json file for one image, else a folder.")
    ] = None,
    vis: Annotated[Path | None, typer.Option(help="Overlay: an image/video file, or a folder.")] = None,
    show: Annotated[bool, typer.Option(help="Show overlays in a window (q quits).")] = False,
    fov: Annotated[float, typer.Option(help="Diagonal field of view in degrees, for lifting.")] = 84.0,
    subject_height: Annotated[float, typer.Option(help="Height of person 0 in metres (metric scale).")] = 1.84,
    smooth: Annotated[bool, typer.Option(help="One-Euro smoothing of video keypoints.")] = True,
    det_every: Annotated[
        str | None,
        typer.Option("--det-every", help="Video: run the detector every N frames, boxes from the keypoints in "
                     "between (default 5, detect_policy.DEFAULT_DET_EVERY; 1 = every frame)."),
    ] = None,
    det_adaptive: Annotated[
        bool, typer.Option(help="Video: re-detect at once on a lost track, low pose score, box at the edge, scene cut.")
    ] = True,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run on Ray (INPUT may be a glob or a list file too); resumable: docs/ray.md.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray address (implies --ray); default: RAY_ADDRESS, else a local instance.")
    ] = None,
    spine: Annotated[
        Path | None, typer.Option("--spine", help="Spine angles CSV: one row per frame x person (docs/spine.md).")
    ] = None,
    spine_plot: Annotated[
        Path | None, typer.Option(help="PNG of each track's spine angles over time (needs the 'chart' extra).")
    ] = None,
    trc: Annotated[
        Path | None, typer.Option(help="Folder: OpenSim TRC per track of world-space markers (needs --lift).")
    ] = None,
    c3d: Annotated[
        Path | None, typer.Option(help="Folder: C3D per track of world-space markers (needs --lift, 'biomech').")
    ] = None,
    vis_angles: Annotated[bool, typer.Option(help="Write trunk/neck angles beside each person on --vis.")] = False,
) -> None:
    """Run pose estimation on an image, folder, video or webcam; write OpenPose JSON and overlays."""
    from .pipeline.spine_outputs import SpineRequest  # lazy: the CLI starts without loading what this command needs

    spine_request = SpineRequest(csv=spine, plot=spine_plot, trc=trc, c3d=c3d, vis_angles=vis_angles)
    from .pipeline.detect_policy import check_det_every  # lazy, as above

    interval = dict(det_every=None if det_every is None else check_det_every(det_every), det_adaptive=det_adaptive)
    if ray or ray_address is not None:  # scale-out: spinepose_deploy/scale (backend defaults to auto per node)
        if spine_request.wanted:
            raise InvalidOptionError("--spine/--spine-plot/--trc/--c3d/--vis-angles: not available with --ray yet")
        from .scale.command import ray_infer_command  # lazy: the CLI starts without loading what this command needs

        raise typer.Exit(ray_infer_command(
            input, ray_address, bundle=bundle, backend=backend, spine_only=spine_only, json_out=json_out, vis=vis,
            show=show, zoo={"--mode": mode, "--detector": detector, "--model-version": model_version,
                            "--precision": precision, "--weights": weights},
            options=dict(lift=lift, max_people=max_people, fov=fov, subject_height=subject_height, smoothing=smooth,
                         **interval),
        ))  # fmt: skip
    # lazy: the CLI starts without loading what this command needs
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # lazy: the CLI starts without loading what this command needs
    from .pipeline.infer import OutputPlan, check_show, run_infer
    from .pipeline.io import resolve_input
    from .pipeline.spec import PipelineSpec
    from .pipeline.spine_outputs import SpineRecorder

    plan = OutputPlan(resolve_input(input), json_out, vis)  # input and output checks before any model loads
    spine_request.check(lift=lift, vis=vis is not None or show)
    if show:
        check_show()
    options = dict(lift=lift, max_people=max_people, fov=fov, subject_height=subject_height, smoothing=smooth,
                   **interval)  # fmt: skip
    spec = PipelineSpec.from_cli(
        bundle, backend, "auto", mode=mode, detector=detector, model_version=model_version, precision=precision,
        weights=weights, options=options,
    )  # fmt: skip
    pipeline = spec.build()
    if pipeline.standin:
        err_console.print(STANDIN_BANNER)
    if pipeline.auto_choice:
        err_console.print(
            f"backend auto picked {escape(pipeline.auto_choice)}; --backend onnxruntime --precision fp32 gives the "
            "strict reference, 'spinepose-deploy bench' re-measures",
            highlight=False,
        )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} fps"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    images = sum(source.kind == "image" for source in plan.spec.sources)
    tasks: dict[str, list] = {}  # bar name -> [task id, start time, frames done]
    current: list[str] = []

    def start(name: str, total: int | None) -> None:
        key = "images" if images > 1 and total == 1 else name  # the images of a folder share one bar
        if key not in tasks:
            label = f"{images} images" if key == "images" else escape(name)
            count = images if key == "images" else total
            tasks[key] = [progress.add_task(label, total=count, fps=0.0), time.perf_counter(), 0]
        current[:] = [key]

    def step() -> None:
        task = tasks[current[0]]
        task[2] += 1
        progress.update(task[0], advance=1, fps=task[2] / max(time.perf_counter() - task[1], 1e-9))

    with pipeline, progress:
        recorder = SpineRecorder(spine_request) if spine_request.wanted else None
        summary = run_infer(pipeline, plan, spine_only=spine_only, show=show, progress=(start, step), spine=recorder)
    where = ", ".join(pipeline.describe().values())
    out_console.print(
        f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} fps, "
        f"{len(summary.files)} files written ({escape(where)})"
        + (" [yellow]STAND-IN[/]" if summary.standin else "")
        + (" (stopped early)" if summary.stopped else ""),
        highlight=False,
    )


# -- bench -----------------------------------------------------------------------------------------
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
    mode: Annotated[str, typer.Option(help="small | medium | large | xlarge")] = "small",
    detector: Annotated[str, typer.Option(help="yolox | rfdetr")] = "yolox",
    model_version: Annotated[str, typer.Option("--model-version", help="v2 (latest) | v1")] = "v2",
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
    weights: Annotated[
        str,
        typer.Option(help="auto (cached real weights, else stand-ins) | real | standin | trained (stand-ins trained "
                     "on the synthetic world where the package has them)"),
    ] = "auto",
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
    from ._console import steps
    from .backends.host import describe, fingerprint
    from .bench import report, runner

    start = time.perf_counter()
    request = runner.BenchRequest(
        bundles=tuple(bundles or ()), mode=mode, detector=detector, model_version=model_version,
        backends=_csv("--backends", backends), precisions=_csv("--precisions", precisions),
        batches=_csv("--batch", batch, int), people=people, duration_s=duration, weights=weights, accuracy=accuracy,
    )  # fmt: skip
    request.validate()
    if chart is not None:
        report.check_chart_available()
    console = out_console
    compact = compact_layout(console)  # narrow terminals, pipes, CI logs: the deciding numbers, unfolded
    host = fingerprint()
    title = f"bench: {'bundles' if bundles else f'{mode} mode ({detector}, {model_version})'}, {people} people"
    console.print(f"[bold]{escape(title)}[/]\nhost: {escape(describe(host))}", highlight=False, soft_wrap=True)
    standin = runner.uses_standins(request)
    if standin:
        console.print(STANDIN_BANNER, soft_wrap=True)
    if accuracy:
        console.print(_accuracy_header(runner.weights_kinds(request), accuracy), highlight=False, soft_wrap=True)
    rows: list = []
    try:
        with steps() as progress:
            task = progress.add_task("planning", total=None)

            def say(message: str) -> None:
                progress.update(task, description=f"{escape(message)} ({len(rows)} rows)")

            result = runner.run_bench(request, on_row=rows.append, progress=say)
    except KeyboardInterrupt:
        console.print(report.bench_table(rows, title=f"{title} (interrupted)", compact=compact))
        err_console.print(f"[yellow]interrupted[/]: {len(rows)} rows finished; no JSON or chart written")
        raise typer.Exit(130) from None
    console.print(report.bench_table(result.rows, title=title, compact=compact))
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


def _accuracy_header(kinds: dict[str, str], scenes: int) -> str:
    """One line: what the accuracy column is measured on, and whether it means anything."""
    trained = [role for role, kind in kinds.items() if kind == "trained"]
    real = [role for role, kind in kinds.items() if kind == "real"]
    random = [role for role, kind in kinds.items() if kind == "random"]
    parts = [f"{', '.join(roles)} {label}" for roles, label in (
        (trained, "trained stand-ins (meaningful on these scenes)"), (real, "real weights"),
        (random, "[yellow]random stand-ins: no skill, accuracy not measured[/]")) if roles]  # fmt: skip
    return f"accuracy vs ground truth on the first {scenes} held-out synthetic scenes: " + "; ".join(parts)


# -- synth -----------------------------------------------------------------------------------------
@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder for scene_SEED.png + scene_SEED.json (ground truth).")],
    count: Annotated[int, typer.Option(min=1, help="How many scenes.")] = 4,
    seed: Annotated[int, typer.Option(help="First seed (from 1000000: the held-out evaluation set).")] = 1_000_000,
    motion: Annotated[
        str | None, typer.Option(help="Instead: a video of one figure: walk | bend | side_bend | twist.")
    ] = None,
    frames: Annotated[int, typer.Option(min=2, help="Frames of the --motion clip (24 fps).")] = 48,
) -> None:
    """Render synthetic scenes with ground truth (boxes, 2D/3D keypoints, intrinsics) to try 'infer --weights trained'.

    The figures come from spinepose_deploy.synth, the world the packaged trained stand-ins learned on.
    """
    from .synth.files import write_clip, write_scenes  # lazy: the CLI starts without loading what this command needs

    if motion is not None:
        from .synth.motion import MOTIONS, make_clip  # lazy, as above

        video = write_clip(out, make_clip(check_choice("--motion", motion, MOTIONS), frames))
        out_console.print(f"wrote {video} (+ ground-truth JSON); try: spinepose-deploy infer {video} --weights trained "
                          f"--lift --spine angles.csv --spine-plot angles.png --trc trc/", soft_wrap=True)
        return

    paths = write_scenes(out, range(seed, seed + count))
    out_console.print(f"wrote {len(paths)} scenes to {out} (PNG + ground-truth JSON); try: spinepose-deploy infer "
                      f"{paths[0]} --weights trained --lift --vis overlay.jpg", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: our errors become one line on stderr (exit 2 for user errors)."""
    try:
        app(args=argv, prog_name="spinepose-deploy")
    except SystemExit as exc:  # typer/click standalone mode always exits
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SpinePoseDeployError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, markup=True)
        return exc.exit_code
    return 0


def run() -> None:
    """setuptools console-script shim."""
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())

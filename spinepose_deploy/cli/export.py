"""``spinepose-deploy export``: a mode's graphs as a verified bundle for one backend and precision."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .._console import STANDIN_BANNER, err_console, out_console
from .app import app
from .options import BACKEND_CHOICES, Detector, JsonFlag, Mode, ModelVersion, Precision, Weights, given, print_json
from .tables import bundle_table, int8_table


@app.command()
def export(
    backend: Annotated[str, typer.Option(help=BACKEND_CHOICES)],
    out: Annotated[Path, typer.Option(help="Bundle directory to write (must be new or empty unless --force).")],
    precision: Precision = None,
    mode: Mode = None,
    detector: Detector = None,
    model_version: ModelVersion = None,
    batch: Annotated[
        str, typer.Option(help="Pose/lifter batch range MIN:OPT:MAX (TensorRT profile, Core ML range).")
    ] = "1:4:16",
    weights: Weights = None,
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
    from .._console import steps
    from .._progress import ProgressEvent
    from ..backends.tensorrt_build import target_names
    from ..errors import GateFailedError
    from ..export.base import BatchRange
    from ..export.exporter import ExportRequest, export_bundle
    from ..export.fidelity import Thresholds

    request = ExportRequest(
        backend=backend,
        out=out,
        **given(precision=precision, mode=mode, detector=detector, model_version=model_version, weights=weights),
        batch=BatchRange.parse(batch),
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
            task = progress.add_task("export", total=None)

            def advance(event: ProgressEvent) -> None:
                if event.kind == "data":  # which data was used: always said
                    err_console.print(escape(event.message), highlight=False)
                progress.update(task, description=escape(event.message), completed=event.step, total=event.total)

            bundle = export_bundle(request, progress=advance, source=source)
            progress.update(task, completed=progress.tasks[0].total, description="done")
    except GateFailedError as exc:  # the report first, then main() prints the one-line error
        err_console.print(int8_table({exc.role: exc.report.to_report()}, err_console))
        raise
    if as_json:
        print_json(bundle.manifest)
        return
    if bundle.standin:
        err_console.print(STANDIN_BANNER)
    reports = {role: entry.int8 for role, entry in bundle.info.graphs.items() if entry.int8}
    if reports:
        out_console.print(int8_table(reports, out_console))
    out_console.print(bundle_table(bundle, out_console))
    if bundle.info.onnx_only:  # what a Jetson / GPU owner runs in the bundle directory
        out_console.print("Engines are built on the GPU on first use (Pipeline.from_bundle), or with:", highlight=False)
        for role in bundle.roles:
            out_console.print(escape(bundle.entry(role).extra["trtexec"]), highlight=False, soft_wrap=True)

"""The ``spinepose-deploy`` command: parse options, call the API, render with rich. No logic of its own."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from . import __version__
from ._console import STANDIN_BANNER, err_console, out_console
from .errors import SpinePoseDeployError

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
    if version:
        out_console.print(f"spinepose-deploy {__version__}")
        raise typer.Exit()


# -- models ----------------------------------------------------------------------------------------
@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every released graph with its role, input, contract and published size."""
    if ctx.invoked_subcommand is not None:
        return
    from .zoo.specs import MODELS, MODES, SPINEPOSE_LICENSE

    if as_json:
        _print_json(
            {
                "models": [s.to_dict() for s in MODELS.values()],
                "modes": {
                    m.name: {"pose": m.pose_variant, "detectors": m.detectors, "versions": m.versions}
                    for m in MODES.values()
                },
            }
        )
        return
    table = Table(title="SpinePose model zoo")
    for column in ("name", "role", "input", "outputs", "params M", "GFLOPs", "licence"):
        table.add_column(column, overflow="fold")
    for spec in MODELS.values():
        outputs = ", ".join(o.name or "?" for o in spec.outputs)
        table.add_row(
            spec.name,
            spec.role.value,
            "x".join(map(str, spec.input_size)),
            outputs,
            f"{spec.params_m:.2f}" if spec.params_m else "-",
            f"{spec.gflops:.2f}" if spec.gflops else "-",
            spec.license.split(" ")[0],
        )
    modes = ", ".join(
        f"{m.name}: {m.detectors['yolox']}|{m.detectors['rfdetr']} + pose-{m.pose_variant}" for m in MODES.values()
    )
    out_console.print(f"Modes: {modes}")
    out_console.print(f"SpinePose weights are {SPINEPOSE_LICENSE}; detectors carry their own licences.")


@models_app.command("build")
def models_build(
    names: Annotated[list[str], typer.Argument(help="Model names (see 'spinepose-deploy models'), or 'all'.")],
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached stand-in exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build architecture-faithful stand-in graphs (seeded weights) into the cache."""
    import time

    from .zoo.specs import MODELS, get_spec

    specs = list(MODELS.values()) if names == ["all"] else [get_spec(n) for n in names]
    from .zoo.standins import build_standin

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
    from .backends import capabilities

    rows = capabilities()
    if as_json:
        _print_json([row.__dict__ for row in rows])
        return
    table = Table(title="What this host can run")
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


# -- export ----------------------------------------------------------------------------------------
@app.command()
def export(
    backend: Annotated[str, typer.Option(help="onnxruntime | openvino | coreml | tensorrt")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write (must be new or empty unless --force).")],
    precision: Annotated[str, typer.Option(help="fp32 | fp16 (int8: see --calib)")] = "fp32",
    mode: Annotated[str, typer.Option(help="small | medium | large | xlarge")] = "small",
    detector: Annotated[str, typer.Option(help="yolox | rfdetr")] = "yolox",
    model_version: Annotated[str, typer.Option("--model-version", help="v2 (latest) | v1")] = "v2",
    batch: Annotated[
        str, typer.Option(help="Pose/lifter batch range MIN:OPT:MAX (TensorRT profile, Core ML range).")
    ] = "1:4:16",
    weights: Annotated[str, typer.Option(help="auto (cached real weights, else stand-ins) | real | standin")] = "auto",
    models_dir: Annotated[
        Path | None, typer.Option(help="Folder with local ONNX files that override downloads.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing non-empty --out (only once the new bundle is complete).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Export a mode's detector, pose and lifter graphs as a verified bundle for one backend and precision."""
    from ._console import steps
    from .export.base import BatchRange
    from .export.exporter import ExportRequest, export_bundle

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
    )
    request.validate()
    with steps(enabled=not as_json) as progress:
        task = progress.add_task("export", total=12)

        def advance(message: str) -> None:
            progress.update(task, description=message, advance=1)

        bundle = export_bundle(request, progress=advance)
        progress.update(task, completed=12, description="done")
    if as_json:
        _print_json(bundle.manifest)
        return
    if bundle.standin:
        err_console.print(STANDIN_BANNER)
    table = Table(title=f"{bundle.path}  ({bundle.backend} {bundle.precision})")
    for column in ("graph", "model", "artifact", "size MB", "fidelity vs FP32", "gate"):
        table.add_column(column, overflow="fold")
    for role in bundle.roles:
        graph = bundle.graph(role)
        size = sum((bundle.path / f).stat().st_size for f in graph["files"]) / 1e6
        table.add_row(
            role,
            graph["model"] + (" (stand-in)" if graph["standin"] else ""),
            graph["artifact"],
            f"{size:.1f}",
            _fidelity_text(graph["fidelity"]),
            _gate_text(graph["fidelity"]),
        )
    out_console.print(table)


def _fidelity_text(fidelity: dict) -> str:
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
    return "; ".join(parts)


def _gate_text(fidelity: dict) -> str:
    gate = fidelity.get("gate")
    if gate is None:
        return "-"
    return "[green]pass[/]" if gate["passed"] else "[red]fail[/]: " + "; ".join(gate["failures"])


def main(argv: list[str] | None = None) -> int:
    """Console entry point: our errors become one line on stderr (exit 2 for user errors)."""
    try:
        app(args=argv, prog_name="spinepose-deploy")
    except SystemExit as exc:  # typer/click standalone mode always exits
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SpinePoseDeployError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True, markup=True)
        return exc.exit_code
    return 0


def run() -> None:
    """setuptools console-script shim."""
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())

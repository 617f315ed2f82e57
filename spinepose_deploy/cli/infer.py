"""``spinepose-deploy infer``: pose estimation on images, folders, videos or a webcam; JSON and overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .._console import STANDIN_BANNER, FrameBars, err_console, out_console
from ..errors import InvalidOptionError
from .app import app
from .options import BACKEND_CHOICES, Detector, Mode, ModelVersion, Precision, Weights


@app.command()
def infer(
    input: Annotated[str, typer.Argument(help="An image, a folder of images/videos, a video file, or a webcam index.")],
    bundle: Annotated[Path | None, typer.Option(help="Bundle directory from 'spinepose-deploy export'.")] = None,
    mode: Mode = None,
    detector: Detector = None,
    model_version: ModelVersion = None,
    backend: Annotated[
        str | None,
        typer.Option(help=f"auto (default: the fastest measured here) | {BACKEND_CHOICES}; "
                     "--backend onnxruntime --precision fp32 is the strict reference"),
    ] = None,
    precision: Precision = None,
    weights: Weights = None,
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
    segment_seconds: Annotated[
        float | None,
        typer.Option(help="--ray: split videos longer than this across workers, stitched exactly (default 60; "
                     "0 = never split): docs/ray.md."),
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
    from ..pipeline.spine_outputs import SpineRequest  # lazy: the CLI starts without loading what this command needs

    spine_request = SpineRequest(csv=spine, plot=spine_plot, trc=trc, c3d=c3d, vis_angles=vis_angles)
    from ..pipeline.detect_policy import check_det_every  # lazy, as above

    options = dict(lift=lift, max_people=max_people, fov=fov, subject_height=subject_height, smoothing=smooth,
                   det_every=None if det_every is None else check_det_every(det_every), det_adaptive=det_adaptive)
    zoo = dict(mode=mode, detector=detector, model_version=model_version, precision=precision, weights=weights)
    if ray or ray_address is not None:  # scale-out: spinepose_deploy/scale (backend defaults to auto per node)
        from ..scale.command import ray_infer_command  # lazy: the CLI starts without loading what this command needs

        raise typer.Exit(ray_infer_command(
            input, ray_address, bundle=bundle, backend=backend, spine_only=spine_only, json_out=json_out, vis=vis,
            show=show, zoo={f"--{name.replace('_', '-')}": value for name, value in zoo.items()}, options=options,
            spine=spine_request, segment_seconds=segment_seconds,
        ))  # fmt: skip
    if segment_seconds is not None:
        raise InvalidOptionError("--segment-seconds: splits videos across Ray workers; add --ray")
    # lazy: the CLI starts without loading what this command needs
    from ..pipeline.infer import OutputPlan, check_show, run_infer
    from ..pipeline.io import resolve_input
    from ..pipeline.spec import PipelineSpec
    from ..pipeline.spine_outputs import SpineRecorder

    plan = OutputPlan(resolve_input(input), json_out, vis)  # input and output checks before any model loads
    spine_request.check(lift=lift, vis=vis is not None or show)
    if show:
        check_show()
    spec = PipelineSpec.from_cli(bundle, backend, "auto", **zoo, options=options)
    pipeline = spec.build()
    if pipeline.standin:
        err_console.print(STANDIN_BANNER)
    if pipeline.auto_choice:
        err_console.print(
            f"backend auto picked {escape(pipeline.auto_choice)}; --backend onnxruntime --precision fp32 gives the "
            "strict reference, 'spinepose-deploy bench' re-measures",
            highlight=False,
        )
    progress = FrameBars(images=sum(source.kind == "image" for source in plan.spec.sources))
    with pipeline, progress:
        recorder = SpineRecorder(spine_request) if spine_request.wanted else None
        summary = run_infer(pipeline, plan, spine_only=spine_only, show=show, progress=(progress.start, progress.step),
                             spine=recorder)  # fmt: skip
    where = ", ".join(pipeline.describe().values())
    out_console.print(
        f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} fps, "
        f"{len(summary.files)} files written ({escape(where)})"
        + (" [yellow]STAND-IN[/]" if summary.standin else "")
        + (" (stopped early)" if summary.stopped else ""),
        highlight=False,
    )

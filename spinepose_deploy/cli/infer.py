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
from .tables import spine_summary_table


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
    mot: Annotated[
        Path | None, typer.Option(help="Folder: OpenSim .mot of each track's angles, time on the video clock.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Folder: per input a summary JSON and a self-contained HTML report.")
    ] = None,
    neutral: Annotated[
        str | None, typer.Option(help="Neutral posture subtracted per track: START:END frames (0:30), seconds "
                                 "(0s:1.5s) or auto (quiet upright stretch); absolute and relative angles are kept.")
    ] = None,
    filter: Annotated[
        str, typer.Option("--filter", help="Offline filter of files and plots: butterworth (gaps, Hampel, zero-lag "
                          "low-pass; needs scipy) | none (raw). The live path keeps One-Euro.")
    ] = "butterworth",
    filter_order: Annotated[int, typer.Option(help="Butterworth order (zero-lag, even; Pose2Sim default 4).")] = 4,
    filter_cutoff: Annotated[float, typer.Option(help="Butterworth cut-off in Hz (below fps / 2; default 6).")] = 6.0,
    max_gap: Annotated[int, typer.Option(help="Fill gaps up to N frames by interpolation; longer stay empty.")] = 10,
    marker_names: Annotated[
        str, typer.Option(help="TRC/C3D marker names: opensim (upstream's 33 OpenSim markers) | keypoints (all 37).")
    ] = "opensim",
    lift_filtered: Annotated[
        bool, typer.Option(help="Files: lift each track again from its offline-filtered 2D (needs --lift, --filter).")
    ] = False,
) -> None:
    """Run pose estimation on an image, folder, video or webcam; write OpenPose JSON and overlays."""
    from ..pipeline.spine_outputs import SpineRequest  # lazy: the CLI starts without loading what this command needs
    from ..spine.options import spine_options  # lazy, as above

    processing = spine_options(filter, filter_order, filter_cutoff, max_gap, neutral, marker_names)
    spine_request = SpineRequest(csv=spine, plot=spine_plot, trc=trc, c3d=c3d, vis_angles=vis_angles, mot=mot,
                                 report=report, lift_filtered=lift_filtered, **processing)  # fmt: skip
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
    spine_request.check_inputs(plan.spec)
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
        recorder = None
        if spine_request.wanted:
            relift = pipeline.relift if lift_filtered else None
            recorder = SpineRecorder(spine_request, standin=pipeline.standin, relift=relift)
        summary = run_infer(pipeline, plan, spine_only=spine_only, show=show, progress=(progress.start, progress.step),
                             spine=recorder)  # fmt: skip
    if recorder is not None and recorder.summaries and (report is not None or neutral is not None):
        _print_spine_summary(recorder.summaries, pipeline.standin)
    where = ", ".join(pipeline.describe().values())
    out_console.print(
        f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} fps, "
        f"{len(summary.files)} files written ({escape(where)})"
        + (" [yellow]STAND-IN[/]" if summary.standin else "")
        + (" (stopped early)" if summary.stopped else ""),
        highlight=False,
    )


def _print_spine_summary(summaries: list, standin: bool) -> None:
    """The per-track summary (zones, peaks, ROM, CVA) as a rich table on stdout."""
    from ..spine.summary import table_rows

    out_console.print(spine_summary_table(*table_rows(summaries), standin))

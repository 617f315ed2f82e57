"""``spinepose-deploy infer``: pose estimation on images, folders, videos or a webcam; JSON and overlays.

The options are declared in ``infer_options`` and grouped there into frozen dataclasses (models, outputs,
run options, spine outputs, Ray), built and checked once at the top of the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from .._console import STANDIN_BANNER, FrameBars, err_console, out_console
from ..ops.world import SOURCE_CALIBRATION, SOURCE_USER
from . import infer_options as o
from .app import app
from .options import Detector, Mode, ModelVersion, Precision, Weights
from .tables import spine_summary_table

if TYPE_CHECKING:  # only for annotations: the CLI starts without loading the pipeline
    from ..pipeline.spine_outputs import SpineRequest


@app.command()
def infer(
    input: o.Input,
    bundle: o.BundleDir = None,
    mode: Mode = None,
    detector: Detector = None,
    model_version: ModelVersion = None,
    backend: o.Backend = None,
    precision: Precision = None,
    weights: Weights = None,
    lift: o.Lift = False,
    spine_only: o.SpineOnly = False,
    max_people: o.MaxPeople = None,
    json_out: o.JsonOut = None,
    vis: o.Vis = None,
    show: o.Show = False,
    fov: o.Fov = 84.0,
    subject_height: o.SubjectHeight = 1.84,
    smooth: o.Smooth = True,
    det_every: o.DetEvery = None,
    det_adaptive: o.DetAdaptive = True,
    ray: o.Ray = False,
    ray_address: o.RayAddress = None,
    segment_seconds: o.SegmentSeconds = None,
    spine: o.SpineCsv = None,
    spine_plot: o.SpinePlot = None,
    trc: o.Trc = None,
    c3d: o.C3d = None,
    vis_angles: o.VisAngles = False,
    mot: o.Mot = None,
    report: o.Report = None,
    neutral: o.Neutral = None,
    filter: o.Filter = "butterworth",
    filter_order: o.FilterOrder = 4,
    filter_cutoff: o.FilterCutoff = 6.0,
    max_gap: o.MaxGap = 10,
    marker_names: o.MarkerNames = "opensim",
    lift_filtered: o.LiftFiltered = False,
    camera_pitch: o.CameraPitch = None,
    camera_roll: o.CameraRoll = None,
    calibration: o.CalibrationToml = None,
) -> None:
    """Run pose estimation on an image, folder, video or webcam; write OpenPose JSON and overlays."""
    paths = dict(csv=spine, plot=spine_plot, trc=trc, c3d=c3d, mot=mot, report=report)
    spine_request = o.spine_request(paths, vis_angles, lift_filtered, filter=filter, order=filter_order,
                                    cutoff=filter_cutoff, max_gap=max_gap, neutral=neutral,
                                    marker_names=marker_names)  # fmt: skip
    camera = o.Camera(camera_pitch, camera_roll, calibration)
    run = o.RunOptions.from_cli(lift, max_people, fov, subject_height, smooth, det_every, det_adaptive, camera)
    models = o.Models(bundle, backend, mode, detector, model_version, precision, weights)
    outputs = o.Outputs(json_out, vis, show, spine_only)
    scale = o.ScaleOut(ray, ray_address, segment_seconds)
    if scale.enabled:  # scale-out: spinepose_deploy/scale (backend defaults to auto per node)
        from ..scale.command import ray_infer_command  # lazy: the CLI starts without loading what this command needs

        raise typer.Exit(ray_infer_command(
            input, scale.address, bundle=models.bundle, backend=models.backend, spine_only=outputs.spine_only,
            json_out=outputs.json_out, vis=outputs.vis, show=outputs.show, zoo=models.flags(),
            options=run.as_dict(), spine=spine_request, segment_seconds=scale.segment_seconds,
        ))  # fmt: skip
    _run_here(input, models, outputs, run, spine_request)


def _run_here(input: str, models: o.Models, outputs: o.Outputs, run: o.RunOptions, spine_request: SpineRequest) -> None:
    """``infer`` on this machine: check inputs and outputs, build the pipeline, run, summarise."""
    # lazy: the CLI starts without loading what this command needs
    from ..pipeline.infer import OutputPlan, check_show, run_infer
    from ..pipeline.io import resolve_input
    from ..pipeline.spec import PipelineSpec
    from ..pipeline.spine_outputs import SpineRecorder

    plan = OutputPlan(resolve_input(input), outputs.json_out, outputs.vis)  # checked before any model loads
    spine_request.check(lift=run.lift, vis=outputs.vis is not None or outputs.show)
    spine_request.check_inputs(plan.spec)
    if outputs.show:
        check_show()
    spec = PipelineSpec.from_cli(models.bundle, models.backend, "auto", **models.zoo(), options=run.as_dict())
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
            relift = pipeline.relift if spine_request.lift_filtered else None
            recorder = SpineRecorder(spine_request, standin=pipeline.standin, relift=relift)
        summary = run_infer(pipeline, plan, spine_only=outputs.spine_only, show=outputs.show,
                            progress=(progress.start, progress.step), spine=recorder)  # fmt: skip
    summarised = spine_request.report is not None or spine_request.neutral is not None
    if recorder is not None and recorder.summaries and summarised:
        from ..spine.summary import table_rows  # lazy, as above

        out_console.print(spine_summary_table(*table_rows(recorder.summaries), pipeline.standin))
    if recorder is not None and recorder.vertical is not None:
        vertical = recorder.vertical
        hint = "" if vertical.source in (SOURCE_CALIBRATION, SOURCE_USER) else (
            " (estimated: give --camera-pitch/--camera-roll or --calibration and the lifter sees a level camera)")
        out_console.print(vertical.line() + hint, highlight=False)
    where = ", ".join(pipeline.describe().values())
    out_console.print(
        f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} fps, "
        f"{len(summary.files)} files written ({escape(where)})"
        + (" [yellow]STAND-IN[/]" if summary.standin else "")
        + (" (stopped early)" if summary.stopped else ""),
        highlight=False,
    )

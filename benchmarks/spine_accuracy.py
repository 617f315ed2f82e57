"""Spine angle error against ground truth on synthetic clips filmed by varied cameras, and the vertical's error.

    python benchmarks/spine_accuracy.py                       # 24 frames per clip, every camera, writes results/
    python benchmarks/spine_accuracy.py --frames 12 --no-int8 --no-auto --json out.json --markdown out.md

Clips: the four motions of ``synth.motion`` (walk, bend, side_bend, twist) x its ``CAMERAS`` (level: the
original camera; high: pitched 30 down; rolled: pitch 12, roll 8; low: looking up 10, roll -5; oblique: pitch
20, roll -8, 45 degrees round). Per camera and angle family, median / p90 of |estimate - truth| in degrees for
(a) the exact keypoints (camera-space 3D through the world frame), (b) the trained stand-ins FP32 through the
pipeline (``Pipeline.track``), (c) ``backend="auto"``, (d) the INT8 bundle; each with the pipeline's own
vertical (floor contacts, else a level camera) and, for (a), (b) and (d), with the camera given as a
calibration would give it (the clip's true pitch and roll as ``camera_pitch``/``camera_roll``: the lifter then
sees the level virtual camera, ``ops.lifter.level_feed``), plus upstream's world frame on (b)'s lifted 3D (the
"before").
The vertical's error per source: angle between the estimated and the true world up at the clip's end.
The stand-ins were trained on the same synthetic world: these numbers say what the pipeline, the vertical and
quantization cost, not how SpinePose does.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path

import numpy as np

from spinepose_deploy.ops.world import SOURCE_CALIBRATION, Vertical, WorldFrame, WorldTransform
from spinepose_deploy.spine.angles import ANGLE_NAMES, FAMILIES, NAMES_2D, spine_angles
from spinepose_deploy.synth.motion import CAMERAS, MOTIONS, Clip, make_clip

RESULTS = Path(__file__).parent / "results"
REPORT_FAMILIES = {
    "inclination (trunk_incl, neck_incl)": FAMILIES["inclination"],
    "trunk_incl": ("trunk_incl",),
    "neck_incl": ("neck_incl",),
    "trunk anatomical (thorax_pelvis flex/lat/rot)": ("thorax_pelvis_flex", "thorax_pelvis_lat", "thorax_pelvis_rot"),
    "flexion (Cardan + regional)": FAMILIES["flexion"],
    "lateral bend & axial rotation": FAMILIES["lateral_axial"],
    "2D inclinations": FAMILIES["inclination2d"],
    "2D regions": FAMILIES["flexion2d"],
}


def bundle_graph_summary(path: Path, role: str) -> dict:
    """What the bundle kept for ``role``: precision, gate rounds, nodes kept in float, spine metrics."""
    from spinepose_deploy.bundle.bundle import Bundle

    graph = Bundle.load(path, verify=False).graph(role)
    report = graph.get("int8") or {}
    fidelity = graph.get("fidelity") or {}
    spine = {k: round(v, 3) for k, v in fidelity.items() if k.startswith(("spine_", "inclination", "flexion",
                                                                             "lateral_axial"))}  # fmt: skip
    return {"precision": graph.get("precision"), "rounds": len(report.get("rounds", [])),
            "excluded": len(report.get("excluded", [])), "kept": report.get("kept"), **spine}  # fmt: skip


def _int8_bundle() -> Path:
    """The trained stand-ins' ONNX Runtime INT8 bundle (``--fallback fp16``), exported once into the cache."""
    from spinepose_deploy.bundle.bundle import Bundle
    from spinepose_deploy.errors import SpinePoseDeployError
    from spinepose_deploy.export.exporter import ExportRequest, export_bundle
    from spinepose_deploy.paths import cache_subdir
    from spinepose_deploy.zoo.standins import trained

    out = cache_subdir("bench") / f"spine_accuracy_int8_{trained.packed_path('lifter').stat().st_size}"
    if out.is_dir():
        try:
            Bundle.load(out)
            return out
        except SpinePoseDeployError:
            pass
    export_bundle(ExportRequest(backend="onnxruntime", precision="int8", out=out, weights="trained",
                                fallback="fp16", force=True))  # fmt: skip
    return out


def _truth(clip: Clip) -> np.ndarray:
    return np.concatenate([clip.truth_2d, clip.truth], axis=-1)


def _calibrated(clip: Clip) -> Vertical:
    return Vertical(clip.vertical.up, SOURCE_CALIBRATION, 0.0)


def _camera_options(clip: Clip) -> dict:
    """Pipeline options that give the clip's true camera pitch and roll, as a user with a calibration would."""
    return {"camera_pitch": clip.vertical.pitch_deg, "camera_roll": clip.vertical.roll_deg}


def _up_error(vertical: Vertical, clip: Clip) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(vertical.up, clip.vertical.up), -1.0, 1.0))))


def world_angles(pixels, scores, camera, clip: Clip, how: str) -> tuple[np.ndarray, float, str]:
    """Angles ``(T, A)`` from per-frame camera-space 3D ``(T, 37, 3)`` (NaN rows: nobody) through a world frame:
    ``floor`` (the default: floor contacts, else level), ``level``, ``calibration`` or ``upstream``; with the
    final vertical's error and source."""
    if how == "upstream":
        frame = WorldTransform()
    else:
        frame = WorldFrame(_calibrated(clip) if how == "calibration" else None, floor=how == "floor", fps=clip.fps)
    out = np.full((len(clip), len(ANGLE_NAMES)), np.nan)
    for t in range(len(clip)):
        if not np.isfinite(camera[t]).all():
            continue
        world = frame.step(camera[t][None].astype(np.float32), scores[t][None])[0]
        vertical = frame.vertical if how != "upstream" else None
        out[t] = spine_angles(pixels[t], scores[t], world, vertical=vertical).values
    return out, _up_error(frame.vertical, clip), frame.vertical.source


def pipeline_run(pipeline, clip: Clip) -> dict:
    """The person nearest the figure per tracked frame: 2D, scores, camera 3D, and the pipeline's own angles."""
    n = len(clip)
    got = {"pixels": np.full((n, 37, 2), np.nan), "scores": np.zeros((n, 37)), "camera": np.full((n, 37, 3), np.nan),
           "own": np.full((n, len(ANGLE_NAMES)), np.nan)}  # fmt: skip
    vertical = None
    for t, result in enumerate(pipeline.track((scene.image for scene in clip.frames()), fps=clip.fps)):
        vertical = result.vertical or vertical
        if len(result) == 0:
            continue
        person = int(np.argmin(np.linalg.norm(result.keypoints[:, 19] - clip.pixels[t, 19], axis=-1)))
        got["pixels"][t], got["scores"][t] = result.keypoints[person], result.scores[person]
        got["camera"][t] = result.keypoints_3d[person]
        got["own"][t] = result.spine_angles().values[person]
    got["vertical_error"] = None if vertical is None else _up_error(vertical, clip)
    got["vertical_source"] = None if vertical is None else vertical.source
    return got


def family_errors(estimate: np.ndarray, truth: np.ndarray, cameras: np.ndarray) -> dict:
    """camera (and "all") -> family -> {median, p90, n}."""
    diff = np.abs(180.0 - np.mod(180.0 - (estimate - truth), 360.0))
    out: dict = {}
    for cam in [*CAMERAS, "all"]:
        rows = diff if cam == "all" else diff[cameras == cam]
        if len(rows) == 0:
            continue
        out[cam] = {}
        for family, names in REPORT_FAMILIES.items():
            cols = rows[:, [ANGLE_NAMES.index(n) for n in names]].ravel()
            cols = cols[np.isfinite(cols)]
            out[cam][family] = {"median": float(np.median(cols)) if cols.size else None,
                                "p90": float(np.percentile(cols, 90)) if cols.size else None,
                                "n": int(cols.size)}  # fmt: skip
    return out


def per_angle(estimate: np.ndarray, truth: np.ndarray) -> dict:
    diff = np.abs(180.0 - np.mod(180.0 - (estimate - truth), 360.0))
    table = {}
    for i, name in enumerate(ANGLE_NAMES):
        col = diff[:, i][np.isfinite(diff[:, i])]
        table[name] = {"median": float(np.median(col)) if col.size else None,
                       "p90": float(np.percentile(col, 90)) if col.size else None}  # fmt: skip
    return table


LABELS = {
    "exact_floor": "(a) exact, floor", "exact_calibration": "(a) exact, calibration",
    "fp32": "(b) FP32, floor", "fp32_calibration": "(b) FP32, calibration",
    "fp32_upstream": "(b) FP32, upstream (before)",
    "auto": "(c) auto, floor", "int8": "(d) INT8, floor", "int8_calibration": "(d) INT8, calibration",
}  # fmt: skip


def markdown(result: dict) -> str:
    columns = [c for c in LABELS if c in result["families"]]
    lines = []
    for family in REPORT_FAMILIES:
        lines += [f"**{family}** (median / p90, degrees)", "",
                  "| camera | " + " | ".join(LABELS[c] for c in columns) + " |",
                  "|---|" + "---|" * len(columns)]  # fmt: skip
        for cam in [*CAMERAS, "all"]:
            cells = []
            for c in columns:
                e = result["families"][c].get(cam, {}).get(family)
                cells.append("-" if not e or e["median"] is None else f"{e['median']:.2f} / {e['p90']:.2f}")
            lines.append(f"| {cam} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**the vertical's error** (degrees, at each clip's end: median / max over the motions; source)", "",
              "| camera | " + " | ".join(result["vertical"]) + " |",
              "|---|" + "---|" * len(result["vertical"])]  # fmt: skip
    for cam in CAMERAS:
        cells = []
        for entries in result["vertical"].values():
            errs = [e["error_deg"] for e in entries if e["camera"] == cam and e["error_deg"] is not None]
            sources = sorted({e["source"] for e in entries if e["camera"] == cam and e["source"]})
            cells.append(f"{np.median(errs):.2f} / {max(errs):.2f} ({', '.join(sources)})" if errs else "-")
        lines.append(f"| {cam} | " + " | ".join(cells) + " |")
    if result.get("notes"):
        lines += ["", f"Bundles: {json.dumps(result['notes'])}"]
    lines += ["", f"{result['frames']} frames ({len(CAMERAS)} cameras x {', '.join(result['motions'])}); frames where "
              f"the pipeline found nobody: {result['missing_frames']}. Picked by auto: {result.get('auto_picked')}. "
              "Stand-ins trained on the synthetic world: not SpinePose's accuracy."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (24 fps)")
    parser.add_argument("--no-int8", action="store_true", help="skip (d), the INT8 bundle")
    parser.add_argument("--no-auto", action="store_true", help="skip (c), backend auto")
    parser.add_argument("--json", type=Path, default=RESULTS / "spine_accuracy.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "spine_accuracy.md")
    args = parser.parse_args(argv)
    logging.getLogger("spinepose_deploy.ops.world").setLevel(logging.ERROR)  # the level-prior warning, per clip
    clips = [make_clip(m, frames=args.frames, camera=c) for c in CAMERAS for m in MOTIONS]
    cameras = np.concatenate([[c.camera_name] * len(c) for c in clips])
    truth = np.concatenate([_truth(c) for c in clips])
    estimates: dict[str, list[np.ndarray]] = {}
    vertical: dict[str, list[dict]] = {}

    def record(key: str, clip: Clip, angles: np.ndarray, error: float | None = None, source: str | None = None):
        estimates.setdefault(key, []).append(angles)
        if error is not None or source is not None:
            vertical.setdefault(key, []).append({"camera": clip.camera_name, "motion": clip.motion,
                                                 "error_deg": error, "source": source})  # fmt: skip

    ones = None
    for clip in clips:
        ones = np.ones(clip.pixels.shape[:2])
        for how in ("floor", "calibration"):
            angles, err, src = world_angles(clip.pixels, ones, clip.camera, clip, how)
            record(f"exact_{how}", clip, angles, err, src)
    from spinepose_deploy.pipeline.pipeline import Pipeline

    # name -> (backend, or "int8" for the exported bundle; the camera given)
    configs: dict[str, tuple[str, bool]] = {"fp32": ("onnxruntime", False), "fp32_calibration": ("onnxruntime", True)}
    if not args.no_auto:
        configs["auto"] = ("auto", False)
    if not args.no_int8:
        configs.update(int8=("int8", False), int8_calibration=("int8", True))
    seconds, missing, picked, notes, bundle = {}, {}, None, {}, None
    for name, (kind, camera_given) in configs.items():
        began = time.perf_counter()
        if kind == "int8":  # what export gives: a graph refused by the gate falls back to FP16
            bundle = bundle or _int8_bundle()
            notes["int8"] = {role: bundle_graph_summary(bundle, role) for role in ("pose", "lifter")}
            make = partial(Pipeline.from_bundle, bundle, backend="onnxruntime", lift=True)
        else:
            make = partial(Pipeline.from_zoo, mode="small", backend=kind, weights="trained", lift=True)
        runs = []
        if camera_given:  # a pipeline per clip, given that clip's camera
            for clip in clips:
                with make(**_camera_options(clip)) as pipeline:
                    runs.append(pipeline_run(pipeline, clip))
        else:
            with make() as pipeline:
                picked = pipeline.describe() if kind == "auto" else picked
                runs = [pipeline_run(pipeline, clip) for clip in clips]
        missing[name] = int(sum(np.isnan(r["camera"][:, 0, 0]).sum() for r in runs))
        for clip, run in zip(clips, runs, strict=True):
            record(name, clip, run["own"], run["vertical_error"], run["vertical_source"])
            if name == "fp32":  # upstream's world frame on the same lifted 3D: the "before"
                angles, err, src = world_angles(run["pixels"], run["scores"], run["camera"], clip, "upstream")
                record("fp32_upstream", clip, angles, err, src)
        seconds[name] = round(time.perf_counter() - began, 1)
    joined = {k: np.concatenate(v) for k, v in estimates.items()}
    result = {
        "command": "python benchmarks/spine_accuracy.py" + (f" --frames {args.frames}" if args.frames != 24 else "")
        + (" --no-int8" if args.no_int8 else "") + (" --no-auto" if args.no_auto else ""),
        "motions": list(MOTIONS), "cameras": {k: vars(v) for k, v in CAMERAS.items()}, "frames": len(truth),
        "seconds": seconds, "missing_frames": missing, "auto_picked": picked, "notes": notes,
        "families": {k: family_errors(v, truth, cameras) for k, v in joined.items()},
        "angles": {k: per_angle(v, truth) for k, v in joined.items()},
        "vertical": vertical,
        "note": "trained stand-ins on the synthetic world they were trained on; not SpinePose's accuracy",
        "names_2d": list(NAMES_2D),
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    args.markdown.write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()

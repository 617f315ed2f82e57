"""Spine angle error against ground truth on synthetic video (walking, bending, side bending, twisting).

    python benchmarks/spine_accuracy.py                      # 48 frames per motion, writes the table below
    python benchmarks/spine_accuracy.py --frames 24 --no-int8 --json out.json --markdown out.md

Per angle, median and p90 of |estimate - truth| in degrees over every frame of the four clips, for
(a) ground-truth keypoints (2D pixels and camera-space 3D taken to the world with the known camera: this
tests the maths, must be ~0), (b) the trained stand-ins through the pipeline (``Pipeline.track``: detector,
pose, lifter, world frame estimated from the body and the ground), 2D and 3D, and (c) the same after INT8
export (ONNX Runtime QDQ bundle from the bundle cache). The truth is the kinematic model's own angles
(``synth.motion``); 2D angles are compared with those of the exact projection. A frame where the pipeline
found nobody counts as missing (reported), not as an error. The stand-ins were trained on the same
synthetic world: these numbers say what the pipeline and the quantization cost, not how SpinePose does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from spinepose_deploy.spine.angles import ANGLE_NAMES, NAMES_2D, NAMES_3D, spine_angles
from spinepose_deploy.synth.motion import MOTIONS, Clip, make_clip

RESULTS = Path(__file__).parent / "results"


def _truth(clip: Clip) -> np.ndarray:
    return np.concatenate([clip.truth_2d, clip.truth], axis=-1)


def gt_estimate(clip: Clip) -> np.ndarray:
    """(a): angles from the ground-truth keypoints, 3D via float32 camera space and the known camera."""
    inverse = np.linalg.inv(clip.world_to_camera)
    world = clip.camera.astype(np.float32) @ inverse[:3, :3].T + inverse[:3, 3]
    return spine_angles(clip.pixels.astype(np.float32), np.ones(clip.pixels.shape[:2]), world).values


def pipeline_estimate(pipeline, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """(b), (c): angles of the person nearest the figure in each tracked frame (NaN rows where nobody), with
    the pipeline's own world frame, and with the lifter's camera-space output rotated by the known camera
    (which separates the lifter's error from the world-frame estimate's)."""
    out = np.full((2, len(clip), len(ANGLE_NAMES)), np.nan)
    rotation = clip.world_to_camera[:3, :3]
    frames = (scene.image for scene in clip.frames())
    for t, result in enumerate(pipeline.track(frames, fps=clip.fps)):
        if len(result) == 0:
            continue
        hip = clip.pixels[t, 19]
        person = int(np.argmin(np.linalg.norm(result.keypoints[:, 19] - hip, axis=-1)))
        out[0, t] = result.spine_angles().values[person]
        known = result.keypoints_3d[person] @ rotation  # camera -> world rotation (translation is irrelevant)
        out[1, t] = spine_angles(result.keypoints[person], result.scores[person], known).values
    return out[0], out[1]


def errors(estimate: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    diff = np.abs(180.0 - np.mod(180.0 - (estimate - truth), 360.0))
    table = {}
    for i, name in enumerate(ANGLE_NAMES):
        col = diff[:, i][np.isfinite(diff[:, i])]
        table[name] = {"median": float(np.median(col)) if col.size else None,
                       "p90": float(np.percentile(col, 90)) if col.size else None, "n": int(col.size)}  # fmt: skip
    return table


def markdown(result: dict) -> str:
    columns = [c for c in ("gt", "fp32", "fp32_known_camera", "int8", "int8_known_camera") if c in result["errors"]]
    head = {"gt": "(a) GT keypoints", "fp32": "(b) trained FP32", "int8": "(c) trained INT8",
            "fp32_known_camera": "(b) FP32, known camera", "int8_known_camera": "(c) INT8, known camera"}
    lines = ["| angle | " + " | ".join(f"{head[c]} median / p90" for c in columns) + " |",
             "|---|" + "---|" * len(columns)]  # fmt: skip
    for name in ANGLE_NAMES:
        cells = []
        for c in columns:
            e = result["errors"][c][name]
            cells.append("-" if e["median"] is None else f"{e['median']:.3g} / {e['p90']:.3g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    missing = ", ".join(f"{c} {result['missing_frames'][c]}" for c in ("fp32", "int8") if c in columns)
    lines.append("")
    lines.append(f"{result['frames']} frames ({', '.join(result['motions'])}); frames where the pipeline found "
                 f"nobody: {missing or 'n/a'}. Degrees; 2D rows (`*2d`) against the exact projection; "
                 "'known camera': the lifter's camera-space 3D turned to the world with the true camera "
                 "rotation instead of the pipeline's estimated world frame (same 2D rows).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames per motion clip (24 fps)")
    parser.add_argument("--no-int8", action="store_true", help="skip (c), the INT8 bundle")
    parser.add_argument("--json", type=Path, default=RESULTS / "spine_accuracy.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "spine_accuracy.md")
    args = parser.parse_args(argv)
    clips = [make_clip(m, frames=args.frames) for m in MOTIONS]
    truth = np.concatenate([_truth(c) for c in clips])
    estimates = {"gt": np.concatenate([gt_estimate(c) for c in clips])}
    from spinepose_deploy.pipeline.load import BundleRecipe
    from spinepose_deploy.pipeline.pipeline import Pipeline

    configs = {"fp32": None} if args.no_int8 else {"fp32": None, "int8": BundleRecipe("onnxruntime", "int8", "trained")}
    seconds = {}
    for name, recipe in configs.items():
        began = time.perf_counter()
        if recipe is None:
            pipeline = Pipeline.from_zoo(mode="small", backend="onnxruntime", weights="trained", lift=True)
        else:
            pipeline = Pipeline.from_bundle(recipe.cached(), backend="onnxruntime", lift=True)
        with pipeline:
            pairs = [pipeline_estimate(pipeline, c) for c in clips]
        estimates[name] = np.concatenate([own for own, _ in pairs])
        estimates[f"{name}_known_camera"] = np.concatenate([known for _, known in pairs])
        seconds[name] = round(time.perf_counter() - began, 1)
    result = {
        "command": "python benchmarks/spine_accuracy.py" + (f" --frames {args.frames}" if args.frames != 48 else "")
        + (" --no-int8" if args.no_int8 else ""),
        "motions": list(MOTIONS), "frames": len(truth), "seconds": seconds,
        "missing_frames": {k: int(np.isnan(v[:, NAMES_2D.index("trunk_incl2d")]).sum()) for k, v in estimates.items()},
        "errors": {k: errors(v, truth) for k, v in estimates.items()},
        "note": "trained stand-ins on the synthetic world they were trained on; not SpinePose's accuracy",
        "names_2d": list(NAMES_2D), "names_3d": list(NAMES_3D),
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    args.markdown.write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()

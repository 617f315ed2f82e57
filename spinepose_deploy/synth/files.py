"""Rendered scenes and motion clips as files with their ground truth (``scene_SEED.*``, ``<motion>.mp4/.json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .._atomic import atomic_path, write_text
from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_NAMES
from ..spine.angles import NAMES_3D
from .motion import Clip
from .render import Scene, render_scene

SCHEMA = "spinepose-deploy-synth-scene/1"
CLIP_SCHEMA = "spinepose-deploy-synth-clip/1"


def _list(values: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(values, np.float64), decimals).tolist()


def scene_record(scene: Scene) -> dict:
    """Ground truth of ``scene`` as JSON-ready lists (pixels, camera metres, intrinsics)."""
    return {
        "schema": SCHEMA,
        "seed": scene.seed,
        "size_hw": list(scene.image.shape[:2]),
        "intrinsics": _list(scene.intrinsics, 3),
        "keypoint_names": list(KEYPOINT_NAMES),
        "people": [
            {
                "box_xyxy": _list(scene.boxes[i], 2),
                "keypoints_xy": _list(scene.keypoints[i], 2),
                "visible": scene.visible[i].astype(int).tolist(),
                "keypoints_3d_m": _list(scene.keypoints_3d[i], 4),
            }
            for i in range(len(scene.boxes))
        ],
        "note": "synthetic scene from spinepose_deploy.synth: figures, not people",
    }


def write_scenes(out_dir: Path, seeds: Iterable[int]) -> list[Path]:
    """Render each seed and write its PNG and JSON into ``out_dir``; returns the image paths."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidOptionError(f"{out_dir}: exists and is not a folder; expected a folder for the rendered scenes")
    written = []
    for seed in seeds:
        scene = render_scene(int(seed))
        image = out_dir / f"scene_{int(seed)}.png"
        with atomic_path(image) as tmp:
            ok, data = cv2.imencode(".png", scene.image)
            if not ok:
                raise InvalidOptionError(f"{image}: PNG encoding failed")
            tmp.write_bytes(data.tobytes())
        write_text(image.with_suffix(".json"), json.dumps(scene_record(scene)))
        written.append(image)
    return written


def clip_record(clip: Clip) -> dict:
    """Ground truth of a motion clip: world and camera keypoints per frame, intrinsics, reference angles."""
    return {
        "schema": CLIP_SCHEMA,
        "motion": clip.motion,
        "camera": clip.camera_name,
        "camera_pitch_deg": round(clip.vertical.pitch_deg, 3),
        "camera_roll_deg": round(clip.vertical.roll_deg, 3),
        "fps": clip.fps,
        "intrinsics": _list(clip.intrinsics, 3),
        "world_to_camera": _list(clip.world_to_camera, 6),
        "keypoint_names": list(KEYPOINT_NAMES),
        "keypoints_world_m": _list(clip.world, 5),
        "keypoints_xy": _list(clip.pixels, 3),
        "angle_names_3d": list(NAMES_3D),
        "angles_3d_deg": _list(clip.truth, 4),
        "note": "synthetic clip from spinepose_deploy.synth.motion: a figure, not a person",
    }


def write_clip(out_dir: Path, clip: Clip) -> Path:
    """``<motion>.mp4`` (rendered frames) and ``<motion>.json`` (its ground truth) in ``out_dir``; returns the video."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidOptionError(f"{out_dir}: exists and is not a folder; expected a folder for the clip")
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{clip.motion}.mp4"
    with atomic_path(video, keep_suffix=True) as tmp:  # OpenCV picks the container from the suffix
        writer = None
        for scene in clip.frames():
            if writer is None:
                h, w = scene.image.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), clip.fps, (w, h))
                if not writer.isOpened():
                    raise InvalidOptionError(f"{video}: OpenCV cannot write mp4 video here")
            writer.write(scene.image)
        if writer is not None:
            writer.release()
    write_text(video.with_suffix(".json"), json.dumps(clip_record(clip)))
    return video

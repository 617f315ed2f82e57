"""Rendered scenes as files: ``scene_SEED.png`` and ``scene_SEED.json`` (the ground truth), for ``infer`` and users."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .._atomic import atomic_path, write_text
from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_NAMES
from .render import Scene, render_scene

SCHEMA = "spinepose-deploy-synth-scene/1"


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

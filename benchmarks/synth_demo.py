"""Draw what the trained stand-ins see on one rendered scene (docs/trained_standin_overlay.jpg).

    python benchmarks/synth_demo.py --seed 1000004 --out docs/trained_standin_overlay.jpg

Exports an ONNX Runtime fp32 bundle of the trained pose-s and lifter graphs (``--models-dir``
``spinepose_deploy/data/trained``), runs the Pipeline on the scene with its ground-truth boxes (the
YOLOX-tiny stand-in is not trained, so it is left out) and writes the overlay next to the ground truth.
The export uses a temporary cache: a models-dir file gets pinned by sha256 in the cache, and a
retrained file would otherwise be refused there as a hash mismatch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1_000_004)
    parser.add_argument("--out", default="docs/trained_standin_overlay.jpg")
    parser.add_argument("--models-dir", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPINEPOSE_DEPLOY_CACHE"] = str(Path(tmp) / "cache")
        from spinepose_deploy.export.exporter import ExportRequest, export_bundle
        from spinepose_deploy.paths import package_data_dir
        from spinepose_deploy.pipeline.draw import draw_result
        from spinepose_deploy.pipeline.pipeline import Pipeline
        from spinepose_deploy.synth import metrics
        from spinepose_deploy.synth.render import render_scene

        models = Path(args.models_dir) if args.models_dir else package_data_dir() / "trained"
        scene = render_scene(args.seed)
        bundle = export_bundle(ExportRequest(backend="onnxruntime", out=Path(tmp) / "bundle",
                                             roles=("pose", "lifter"), models_dir=models))
        with Pipeline.from_bundle(bundle.path, lift=True) as pipe:
            result = pipe(scene.image, boxes=scene.boxes)
        pck = metrics.pck(result.keypoints, scene.keypoints, scene.visible, scene.boxes)
        overlay = draw_result(scene.image, result)
        truth = scene.image.copy()
        for kp, vis in zip(scene.keypoints, scene.visible, strict=True):
            for (x, y), v in zip(kp, vis, strict=True):
                if v:
                    cv2.drawMarker(truth, (round(float(x)), round(float(y))), (255, 255, 255), cv2.MARKER_CROSS, 7, 1)
        cv2.putText(truth, "input + ground truth", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        pad = np.zeros((truth.shape[0], overlay.shape[1] - truth.shape[1], 3), np.uint8) \
            if overlay.shape[1] > truth.shape[1] else None
        top = truth if pad is None else np.concatenate([truth, pad], axis=1)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), np.concatenate([top, overlay], axis=0), [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"{out}: {len(scene.boxes)} people, PCK@0.05 {pck['pck']:.3f} on this image")


if __name__ == "__main__":
    main()

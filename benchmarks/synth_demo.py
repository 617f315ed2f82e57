"""What `spinepose-deploy infer --weights trained` draws on a rendered scene (docs/trained_standin_overlay.jpg).

    python benchmarks/synth_demo.py --seed 1000004 --out docs/trained_standin_overlay.jpg

Runs the user's commands: ``spinepose-deploy synth`` renders a held-out scene (PNG + ground-truth JSON),
``spinepose-deploy infer SCENE --weights trained --lift --vis`` runs the three trained stand-ins (detector,
pose, lifter) on it; the picture stacks the ground truth (white crosses on visible keypoints, boxes) above
the overlay that ``infer`` wrote.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> None:
    from spinepose_deploy.cli import main as cli

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1_000_004)
    parser.add_argument("--out", default="docs/trained_standin_overlay.jpg")
    parser.add_argument("--backend", default="onnxruntime")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if cli(["synth", str(tmp), "--count", "1", "--seed", str(args.seed)]) != 0:
            raise SystemExit("spinepose-deploy synth failed")
        scene = tmp / f"scene_{args.seed}.png"
        overlay_path = tmp / "overlay.png"
        code = cli(["infer", str(scene), "--weights", "trained", "--backend", args.backend, "--lift",
                    "--vis", str(overlay_path), "--json", str(tmp / "result.json")])
        if code != 0:
            raise SystemExit(f"spinepose-deploy infer failed ({code})")
        truth = cv2.imread(str(scene))
        record = json.loads(scene.with_suffix(".json").read_text())
        for person in record["people"]:
            x0, y0, x1, y1 = (round(v) for v in person["box_xyxy"])
            cv2.rectangle(truth, (x0, y0), (x1, y1), (255, 255, 255), 1)
            for (x, y), seen in zip(person["keypoints_xy"], person["visible"], strict=True):
                if seen:
                    cv2.drawMarker(truth, (round(x), round(y)), (255, 255, 255), cv2.MARKER_CROSS, 7, 1)
        cv2.putText(truth, "input + ground truth", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        overlay = cv2.imread(str(overlay_path))
        if overlay.shape[1] > truth.shape[1]:
            pad = np.zeros((truth.shape[0], overlay.shape[1] - truth.shape[1], 3), np.uint8)
            truth = np.concatenate([truth, pad], axis=1)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), np.concatenate([truth, overlay], axis=0), [cv2.IMWRITE_JPEG_QUALITY, 90])
        found = json.loads((tmp / "result.json").read_text())["people"]
        print(f"{out}: {len(record['people'])} figures in the scene, {len(found)} found by infer")


if __name__ == "__main__":
    main()

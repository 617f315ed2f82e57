"""Accuracy of the trained stand-ins on the fixed held-out synthetic set (the model card's numbers).

    python benchmarks/trained_accuracy.py                 # the packaged graphs, 200 held-out scenes
    python benchmarks/trained_accuracy.py --scenes 40 --pose other/pose-s-v2.onnx

Detector: box AP50 and recall at the pipeline's 0.3 threshold. Pose: PCK@0.05 of box size with ground-truth
boxes. Lifter: root-relative MPJPE fed ground-truth 2D, next to the mean-pose baseline. ONNX Runtime, CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def ort_run(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(None, dict(feeds)), strict=True))


def detector_predict(run, input_hw):
    from spinepose_deploy.ops.detector import decode_yolox, yolox_feed

    def predict(image: np.ndarray):
        feed, ratio = yolox_feed(image, input_hw)
        return decode_yolox(run(feed)["dets"], ratio, score_thr=0.0)

    return predict


def main(argv: list[str] | None = None) -> dict:
    from spinepose_deploy.synth import dataset
    from spinepose_deploy.synth.evaluate import evaluate_detector, evaluate_lifter, evaluate_pose
    from spinepose_deploy.zoo.specs import get_spec
    from spinepose_deploy.zoo.standins.trained import trained_graph

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=dataset.HELDOUT_SCENES)
    parser.add_argument("--detector", type=Path, default=None, help="default: the packaged yolox-tiny")
    parser.add_argument("--pose", type=Path, default=None, help="default: the packaged pose-s-v2")
    parser.add_argument("--lifter", type=Path, default=None, help="default: the packaged lifter")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    scenes = dataset.heldout_scenes(args.scenes)
    persons = dataset.people(scenes)
    result: dict = {"scenes": args.scenes, "people": len(persons)}
    detector = args.detector or trained_graph("yolox-tiny")
    if detector:
        spec = get_spec("yolox-tiny")
        det = evaluate_detector(detector_predict(ort_run(detector, args.threads), spec.input_size), scenes)
        result["detector"] = {"graph": str(detector), **det}
        print(f"detector {detector.name}: AP50 {det['ap50']:.3f}  recall@0.3 {det['recall_at_0.3']:.3f}")
    pose = args.pose or trained_graph("pose-s-v2")
    if pose:
        spec = get_spec("pose-s-v2")
        res = evaluate_pose(ort_run(pose, args.threads), scenes, spec.input_size, people=persons)
        result["pose"] = {"graph": str(pose), "pck": res["pck"], "mean_error": res["mean_error"]}
        print(f"pose {pose.name}: PCK@0.05 {res['pck']:.3f}  mean error {res['mean_error']:.4f} of box")
    lifter = args.lifter or trained_graph("lifter")
    if lifter:
        res = evaluate_lifter(ort_run(lifter, args.threads), persons)
        result["lifter"] = {"graph": str(lifter), "mpjpe_mm": res["mpjpe_mm"],
                            "mean_pose_mpjpe_mm": res["mean_pose_mpjpe_mm"]}
        print(f"lifter {lifter.name}: MPJPE {res['mpjpe_mm']:.1f} mm (mean pose {res['mean_pose_mpjpe_mm']:.1f} mm)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

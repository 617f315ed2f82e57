"""OpenVINO LATENCY (one infer request, feeds one after another) vs THROUGHPUT (``Session.run_many`` over
an AsyncInferQueue of OPTIMAL_NUMBER_OF_INFER_REQUESTS requests) on a folder of images: detector over every
image, pose graph over each image's crops (batch ``--people``), trained stand-ins, FP32, wall time per image.

    python benchmarks/ov_throughput.py IMAGE_DIR [--people 6] [--rounds 3]

IMAGE_DIR: e.g. ``spinepose-deploy synth DIR --count 30``. Outputs are compared too: THROUGHPUT must give the
same arrays as LATENCY, in order (it is the same graph, compiled with another stream count).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from spinepose_deploy import backends
from spinepose_deploy.ops.detector import yolox_feed
from spinepose_deploy.ops.image import IMAGE_SUFFIXES, read_image
from spinepose_deploy.pipeline.overlap import ahead
from spinepose_deploy.zoo.source import resolve_graph
from spinepose_deploy.zoo.specs import resolve_mode


def timed(session: backends.Session, feeds: list[dict[str, np.ndarray]], rounds: int, many: bool):
    """(best ms per feed over ``rounds``, the outputs of the last round)."""
    best, outputs = float("inf"), []
    for _ in range(rounds):
        start = time.perf_counter()
        outputs = list(session.run_many(feeds)) if many else [session.run(one) for one in feeds]
        best = min(best, (time.perf_counter() - start) * 1e3 / len(feeds))
    return best, outputs


def folder_ms(detector: backends.Session, pose: backends.Session, det_feeds, pose_feeds, rounds: int) -> float:
    """Best ms per image of the folder path's shape: the detector one stage ahead on a worker thread
    (``overlap.ahead``; ``run_many`` there, so THROUGHPUT keeps its requests in flight) while this thread
    runs the pose graph (LATENCY) of the image before."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        with ahead(lambda out: out, detector.run_many(det_feeds)) as detected:
            for _found, feed in zip(detected, pose_feeds, strict=True):
                pose.run(feed)
        best = min(best, (time.perf_counter() - start) * 1e3 / len(det_feeds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = [read_image(p) for p in sorted(args.folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    graphs = resolve_mode("small", "yolox", "v2").graphs()
    rng = np.random.default_rng(0)
    print(f"{len(images)} images from {args.folder}; stand-ins: trained (speed is real, keypoints are not)")
    feeds: dict[str, list] = {}
    serial = {"latency": 0.0, "throughput": 0.0}  # detector then pose, no overlap: the two rows summed
    print("| graph | LATENCY ms/image (1 request) | THROUGHPUT ms/image (requests) | speed-up | outputs vs LATENCY |")
    print("|---|---|---|---|---|")
    for role in ("detector", "pose"):
        path = resolve_graph(graphs[role], weights="trained").path
        row = {}
        for hint in ("latency", "throughput"):
            with backends.load(path, backend="openvino", precision="fp32", hint=hint) as session:
                info = session.inputs[0]
                if role not in feeds:  # the same feeds for both hints, so their outputs can be compared
                    if role == "detector":
                        feeds[role] = [yolox_feed(image, tuple(info.shape[2:]), info.name)[0] for image in images]
                    else:  # the pose graph's speed does not depend on the crops' pixels
                        shape = (args.people, *info.shape[1:])
                        feeds[role] = [{info.name: rng.standard_normal(shape).astype(np.float32)} for _ in images]
                timed(session, feeds[role][:2], 1, hint == "throughput")  # warm-up
                row[hint] = (*timed(session, feeds[role], args.rounds, hint == "throughput"), session.requests)
        (lat, lat_out, _), (thr, thr_out, n) = row["latency"], row["throughput"]
        serial["latency"] += lat
        serial["throughput"] += thr
        diff = max(float(np.abs(a[k] - b[k]).max()) for a, b in zip(lat_out, thr_out, strict=True) for k in a)
        same = "identical" if diff == 0 else f"max diff {diff:.2g}"
        print(f"| {role} | {lat:.1f} | {thr:.1f} ({n}) | {lat / thr:.2f}x | {same} |", flush=True)

    paths = {role: resolve_graph(graphs[role], weights="trained").path for role in ("detector", "pose")}
    with backends.load(paths["pose"], backend="openvino", precision="fp32") as pose:
        times = {}
        for hint in ("latency", "throughput"):
            with backends.load(paths["detector"], backend="openvino", precision="fp32", hint=hint) as detector:
                folder_ms(detector, pose, feeds["detector"][:2], feeds["pose"][:2], 1)  # warm-up
                times[hint] = folder_ms(detector, pose, feeds["detector"], feeds["pose"], args.rounds)
    lat, thr = serial["latency"], serial["throughput"]
    label = "detector then pose, no overlap (rows above summed)"
    print(f"| {label} | {lat:.1f} | {thr:.1f} (both) | {lat / thr:.2f}x | - |")
    lat, thr = times["latency"], times["throughput"]
    print(f"| folder path: detector ahead + pose | {lat:.1f} | {thr:.1f} (detector) | {lat / thr:.2f}x | - |")


if __name__ == "__main__":
    main()


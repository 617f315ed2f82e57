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
    print("| graph | LATENCY ms/image (1 request) | THROUGHPUT ms/image (requests) | speed-up | outputs vs LATENCY |")
    print("|---|---|---|---|---|")
    for role in ("detector", "pose"):
        path = resolve_graph(graphs[role], weights="trained").path
        row, feeds = {}, []
        for hint in ("latency", "throughput"):
            with backends.load(path, backend="openvino", precision="fp32", hint=hint) as session:
                info = session.inputs[0]
                if feeds:
                    pass  # the same feeds for both hints, so their outputs can be compared
                elif role == "detector":
                    feeds = [yolox_feed(image, tuple(info.shape[2:]), info.name)[0] for image in images]
                else:  # the pose graph's speed does not depend on the crops' pixels
                    shape = (args.people, *info.shape[1:])
                    feeds = [{info.name: rng.standard_normal(shape).astype(np.float32)} for _ in images]
                timed(session, feeds[:2], 1, hint == "throughput")  # warm-up
                row[hint] = (*timed(session, feeds, args.rounds, hint == "throughput"), session.requests)
        (lat, lat_out, _), (thr, thr_out, n) = row["latency"], row["throughput"]
        diff = max(float(np.abs(a[k] - b[k]).max()) for a, b in zip(lat_out, thr_out, strict=True) for k in a)
        same = "identical" if diff == 0 else f"max diff {diff:.2g}"
        print(f"| {role} | {lat:.1f} | {thr:.1f} ({n}) | {lat / thr:.2f}x | {same} |", flush=True)


if __name__ == "__main__":
    main()

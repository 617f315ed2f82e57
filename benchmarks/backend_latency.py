"""Latency of the pose-s stand-in per backend at batch 1 and 8: median of N runs after warm-up.

python benchmarks/backend_latency.py --runs 50
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from spinepose_deploy import backends
from spinepose_deploy.zoo.standins import build_standin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--model", default="pose-s-v2")
    args = parser.parse_args()
    path = build_standin(args.model)
    rng = np.random.default_rng(0)
    print("| backend | batch | median ms | p90 ms |\n|---|---|---|---|")
    for backend in ("onnxruntime", "openvino"):
        with backends.load(path, backend=backend, precision="fp32") as session:
            for batch in (1, 8):
                feed = {session.inputs[0].name: rng.standard_normal((batch, 3, 256, 192)).astype(np.float32)}
                for _ in range(3):
                    session.run(feed)
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    session.run(feed)
                    times.append((time.perf_counter() - start) * 1e3)
                p90 = float(np.percentile(times, 90))
                print(
                    f"| {backend} {session.device} {session.precision} | {batch} "
                    f"| {statistics.median(times):.1f} | {p90:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

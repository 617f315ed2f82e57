"""The pose graph on OpenVINO CPU: one LATENCY run of a frame's crops vs the same batch cut into parts that run
together on THROUGHPUT streams (``backends.load(..., split_batch=True)``; opt-in, the Pipeline does not use it).

    python benchmarks/pose_split.py [--bundle DIR] [--people 1,2,3,6] [--rounds 20]

``--bundle``: an OpenVINO bundle (e.g. ``spinepose-deploy export --backend openvino --precision int8 --weights
trained --out DIR``); default: the trained pose stand-in's FP32 ONNX. Both sessions load the same file with the
same precision and get the same crops; they take turns (round robin, medians) and their outputs are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from spinepose_deploy import backends
from spinepose_deploy.backends.host import describe, fingerprint
from spinepose_deploy.bundle.bundle import Bundle
from spinepose_deploy.zoo.source import resolve_graph
from spinepose_deploy.zoo.specs import resolve_mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--people", default="1,2,3,6")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.bundle:
        bundle = Bundle.load(args.bundle)
        path, precision = bundle.artifact("pose"), bundle.precision_of("pose")
    else:
        spec = resolve_mode("small", "yolox", "v2").graphs()["pose"]
        path, precision = resolve_graph(spec, weights="trained").path, "fp32"
    plain = backends.load(path, backend="openvino", precision=precision)
    split = backends.load(path, backend="openvino", precision=precision, split_batch=True)
    print(f"host: {describe(fingerprint())}")
    print(f"pose graph {path} (openvino {precision}); split into {split.split_parts} parts. Stand-in: speed is real.")
    print("| people | one run ms | split ms | speed-up | max output diff |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    info = plain.inputs[0]
    for people in [int(p) for p in args.people.split(",")]:
        feed = {info.name: rng.standard_normal((people, *info.shape[1:])).astype(np.float32)}
        calls = {"plain": lambda feed=feed: plain.run(feed), "split": lambda feed=feed: split.run(feed)}
        times: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            call()
            call()
        for _ in range(args.rounds):
            for name, call in calls.items():
                time.sleep(0.02)
                start = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - start) * 1e3)
        a, b = plain.run(feed), split.run(feed)
        diff = max(float(np.abs(a[k] - b[k]).max()) for k in a)
        one, cut = statistics.median(times["plain"]), statistics.median(times["split"])
        print(f"| {people} | {one:.1f} | {cut:.1f} | {one / cut:.2f}x | {diff:.2g} |", flush=True)


if __name__ == "__main__":
    main()

"""Accuracy cost of the detection interval on synthetic video with ground truth (``synth.video.WalkingClip``).

    python benchmarks/det_interval.py [--frames 150] [--people 4] [--clips 2] [--backend onnxruntime] [--json]

Walking figures enter and leave a fixed scene; ``Pipeline.track`` runs with the trained stand-ins (their
keypoints mean something on this world) and, per row, ``det_every`` N with the fixed schedule, or the
adaptive default (``DEFAULT_DET_EVERY`` + re-detect on a lost track, low pose score, a box at the edge,
an empty scene or a scene cut). Columns: PCK@0.05 of box size over visible keypoints (a missed person counts
as all misses), recall of people, identity switches, the share of frames that ran the detector, and frames/s
(wall clock: a figure for a quiet machine only). The accuracy columns do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import time

from spinepose_deploy import Pipeline
from spinepose_deploy.backends.host import describe, fingerprint
from spinepose_deploy.pipeline.detect_policy import DEFAULT_DET_EVERY
from spinepose_deploy.pipeline.pipeline import PipelineOptions
from spinepose_deploy.synth.metrics import track_accuracy
from spinepose_deploy.synth.video import VideoFrame, WalkingClip

FPS = 30.0
ROWS = [(1, False), (2, False), (5, False), (10, False), (DEFAULT_DET_EVERY, True), (10, True)]


def run_row(pipe: Pipeline, clips: list[list[VideoFrame]], every: int, adaptive: bool) -> dict:
    counted = {"detector": 0}
    session = pipe.sessions["detector"]
    real_run = session.run

    def counting(feeds):
        counted["detector"] += 1
        return real_run(feeds)

    session.run = counting
    totals = {"pck_hits": 0.0, "keypoints": 0, "recall_hits": 0.0, "people": 0, "id_switches": 0}
    frames, seconds = 0, 0.0
    pipe.options = PipelineOptions.build(pipe.options, det_every=every, det_adaptive=adaptive)
    try:
        for truth in clips:
            began = time.perf_counter()
            results = list(pipe.track((f.image for f in truth), fps=FPS))
            seconds += time.perf_counter() - began
            score = track_accuracy(truth, results)
            totals["pck_hits"] += score["pck"] * score["keypoints"]
            totals["keypoints"] += score["keypoints"]
            totals["recall_hits"] += score["recall"] * score["people"]
            totals["people"] += score["people"]
            totals["id_switches"] += score["id_switches"]
            frames += len(truth)
    finally:
        del session.run
    return {
        "det_every": every,
        "adaptive": adaptive,
        "pck": totals["pck_hits"] / max(totals["keypoints"], 1),
        "recall": totals["recall_hits"] / max(totals["people"], 1),
        "id_switches": totals["id_switches"],
        "detector_share": counted["detector"] / max(frames, 1),
        "fps": frames / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # rendered once (about 0.9 MB a frame), shared by every row
    clips = [list(WalkingClip(seed, frames=args.frames, people=args.people, fps=FPS)) for seed in range(args.clips)]
    rows = []
    with Pipeline.from_zoo(mode="small", backend=args.backend, weights="trained") as pipe:
        for every, adaptive in ROWS:
            rows.append(run_row(pipe, clips, every, adaptive))
    host = describe(fingerprint())
    if args.json:
        print(json.dumps({"host": host, "rows": rows}, indent=2))
        return
    print(f"host: {host}")
    print(f"{args.clips} clips x {args.frames} frames, up to {args.people} walkers; trained stand-ins, {args.backend}")
    print("| det every | adaptive | PCK@0.05 | recall | ID switches | frames detected | f/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['det_every']} | {'yes' if r['adaptive'] else 'no'} | {r['pck']:.3f} | {r['recall']:.3f} | "
              f"{r['id_switches']} | {r['detector_share']:.0%} | {r['fps']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()

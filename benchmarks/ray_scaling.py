"""Frames per second of ``infer`` on Ray with 1 and 2 actors vs plain ``infer`` in one process, small mode.

    python benchmarks/ray_scaling.py [--images 24] [--videos 2] [--frames 24] [--rounds 2] [--json out.json]
    python benchmarks/ray_scaling.py --segments [--long 300] [--short 3] [--frames 30] [--segment-seconds 2.5]

``--segments``: one long synthetic walking video (``--long`` frames, 320x240, 30 fps) and ``--short`` videos of
``--frames`` frames, 2 actors, each video whole (``segment_seconds=0``) vs split into segments: wall time,
processing time, the workers' idle share and the per-segment overhead (worker seconds per segment spent on
seek, warm-up, scale probe). Interleaved over ``--rounds``; medians.

Inputs: ``--images`` 416x416 photos (2-4 stand-in detections each) and ``--videos`` 320x320 clips of
``--frames`` frames, in one folder; JSON output only (no overlays). Rows:

  plain              run_infer in this process over the folder (Pipeline loaded once, load time excluded)
  plain threads=1    the same with every ONNX Runtime session on 1 intra-op thread
  ray xN             infer_on_ray(num_actors=N) on a local Ray with 2 CPUs (ray.init excluded)
  ray xN threads=1   the same with every ONNX Runtime session on 1 intra-op thread (an actor per core)

For Ray rows ``fps`` counts from the workers being ready to the last file (``RunSummary.fps``) and
``wall fps`` includes starting the actors and building their pipelines. ONNX Runtime uses every core
by default, so "ray x2" runs 2 x 2 threads on 2 cores. Configurations are interleaved over
``--rounds`` (the machine may be shared); medians are shown. Graphs are stand-ins: speed is real.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


class ThreadsFactory:
    """A Pipeline from a bundle with ``threads`` intra-op threads per session (picklable for Ray)."""

    def __init__(self, bundle: str, threads: int) -> None:
        self.bundle, self.threads = bundle, threads

    def __call__(self):
        from spinepose_deploy import backends
        from spinepose_deploy.bundle.bundle import Bundle
        from spinepose_deploy.pipeline.pipeline import Pipeline
        from spinepose_deploy.stages import GraphInfo

        bundle = Bundle.load(self.bundle)
        sessions, graphs = {}, {}
        for role in ("detector", "pose"):
            graphs[role] = GraphInfo.from_manifest(bundle.entry(role))
            sessions[role] = backends.load(
                bundle.artifact(role), backend=bundle.backend, precision=bundle.precision, threads=self.threads
            )
        return Pipeline(sessions["detector"], sessions["pose"], graphs=graphs)

    def settings(self) -> dict:
        return {"bundle": self.bundle, "threads": self.threads}


def make_inputs(folder: Path, images: int, videos: int, frames: int) -> int:
    data = Path(__file__).resolve().parents[1] / "spinepose_deploy" / "data"
    photos = [cv2.imread(str(data / name)) for name in ("astronaut.jpg", "grace_hopper.jpg")]
    for i in range(images):
        image = cv2.resize(np.roll(photos[i % 2], 7 * i, axis=1), (416, 416))
        cv2.imwrite(str(folder / f"img{i:03d}.jpg"), image)
    clip = cv2.resize(photos[0], (320, 320))
    for v in range(videos):
        writer = cv2.VideoWriter(str(folder / f"vid{v}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 320))
        for i in range(frames):
            writer.write(np.roll(clip, 4 * i + v, axis=1))
        writer.release()
    return images + videos * frames


def run_plain(bundle: Path, folder: Path, out: Path, threads: int | None) -> dict:
    from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
    from spinepose_deploy.pipeline.io import resolve_input
    from spinepose_deploy.pipeline.pipeline import Pipeline

    began = time.perf_counter()
    with Pipeline.from_bundle(bundle) if threads is None else ThreadsFactory(str(bundle), threads)() as pipeline:
        loaded = time.perf_counter()
        summary = run_infer(pipeline, OutputPlan(resolve_input(folder), out, None))
    wall = time.perf_counter() - began
    return {"frames": summary.frames, "fps": summary.fps, "wall_fps": summary.frames / wall,
            "setup_s": loaded - began}  # fmt: skip


def run_ray(bundle: Path, folder: Path, out: Path, actors: int, threads: int | None) -> dict:
    from spinepose_deploy.scale import PipelineSpec, infer_on_ray

    factory = PipelineSpec(bundle=str(bundle)) if threads is None else ThreadsFactory(str(bundle), threads)
    summary = infer_on_ray(folder, pipeline=factory, out_json=out, num_actors=actors, progress=False)
    assert not summary.failed and not summary.skipped, summary.to_dict()
    return {"frames": summary.frames, "fps": summary.fps, "wall_fps": summary.frames / summary.seconds,
            "setup_s": summary.setup_seconds}  # fmt: skip


def make_walking(folder: Path, long: int, short: int, frames: int) -> int:
    from spinepose_deploy.synth.video import WalkingClip

    def write(path: Path, count: int, seed: int) -> None:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
        for frame in WalkingClip(seed, frames=count, people=3, size=(240, 320), fps=30.0):
            writer.write(frame.image)
        writer.release()

    write(folder / "long.avi", long, 1)
    for i in range(short):
        write(folder / f"short{i}.avi", frames, 10 + i)
    return long + short * frames


def segments_main(args: argparse.Namespace) -> None:
    import ray

    from spinepose_deploy.pipeline.load import BundleRecipe
    from spinepose_deploy.scale import PipelineSpec, infer_on_ray

    bundle = BundleRecipe("onnxruntime", "fp32", "trained").cached()
    spec = PipelineSpec(bundle=str(bundle), options={"lift": True})
    work = Path(tempfile.mkdtemp(prefix="ray-segments-"))
    folder = work / "in"
    folder.mkdir()
    total = make_walking(folder, args.long, args.short, args.frames)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    rows: dict[str, list[dict]] = {"whole videos": [], f"segments of {args.segment_seconds:g} s": []}
    try:
        for round_ in range(args.rounds):
            for name, seconds in zip(rows, (0.0, args.segment_seconds), strict=True):
                out = work / f"out-{round_}-{int(seconds * 10)}"
                summary = infer_on_ray(folder, pipeline=spec, out_json=out, num_actors=2, segment_seconds=seconds,
                                       progress=False)  # fmt: skip
                assert not summary.failed and summary.rejoined == 0, summary.to_dict()
                rows[name].append({"wall_s": summary.seconds, "processing_s": summary.seconds - summary.setup_seconds,
                                   "idle_share": summary.idle_share, "busy_s": summary.busy_seconds,
                                   "segments": summary.segments, "frames": summary.frames,
                                   "overhead_s": summary.segment_overhead_seconds})  # fmt: skip
                shutil.rmtree(out, ignore_errors=True)
                print(f"round {round_ + 1} {name}: {rows[name][-1]}", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{total} frames (1 x {args.long} + {args.short} x {args.frames}), trained stand-ins with lifting, "
          f"ORT fp32, 2 actors, {os.cpu_count()} CPUs, load avg {load:.1f}")  # fmt: skip
    print(f"{'config':<20} {'wall s':>7} {'processing s':>13} {'idle':>6} {'segments':>9} {'busy s':>7}")
    medians = {}
    for name, runs in rows.items():
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        medians[name] = med
        print(f"{name:<20} {med['wall_s']:7.1f} {med['processing_s']:13.1f} {med['idle_share']:6.1%} "
              f"{med['segments']:9.0f} {med['busy_s']:7.1f}")  # fmt: skip
    split = list(medians.values())[1]
    if split["segments"]:
        per = split["overhead_s"] / split["segments"]
        print(f"segment overhead (scale probe, seek, warm-up): {per:.2f} worker s per segment, "
              f"{split['overhead_s'] / split['busy_s']:.1%} of the busy time")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"frames": total, "load": load, "rows": rows, "medians": medians}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", action="store_true", help="whole videos vs segments (see the docstring)")
    parser.add_argument("--long", type=int, default=300)
    parser.add_argument("--short", type=int, default=3)
    parser.add_argument("--segment-seconds", type=float, default=2.5)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.segments:
        segments_main(args)
        return

    import ray

    from spinepose_deploy.pipeline.load import BundleRecipe

    bundle = BundleRecipe("onnxruntime", "fp32", "standin").cached()
    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    folder = work / "in"
    folder.mkdir()
    total = make_inputs(folder, args.images, args.videos, args.frames)
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    init_s = time.perf_counter() - began
    configs = {
        "plain": lambda out: run_plain(bundle, folder, out, None),
        "plain threads=1": lambda out: run_plain(bundle, folder, out, 1),
        "ray x1": lambda out: run_ray(bundle, folder, out, 1, None),
        "ray x2": lambda out: run_ray(bundle, folder, out, 2, None),
        "ray x2 threads=1": lambda out: run_ray(bundle, folder, out, 2, 1),
    }
    rows: dict[str, list[dict]] = {name: [] for name in configs}
    try:
        for round_ in range(args.rounds):
            for name, run in configs.items():
                out = work / f"out-{round_}-{name.replace(' ', '_')}"
                rows[name].append(run(out))
                shutil.rmtree(out, ignore_errors=True)
                print(f"round {round_ + 1} {name}: {rows[name][-1]['fps']:.2f} fps", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{total} frames ({args.images} images + {args.videos}x{args.frames} video frames), small mode "
          f"stand-ins, ORT fp32, {os.cpu_count()} CPUs, load avg {load:.1f}, ray.init {init_s:.1f} s")  # fmt: skip
    print(f"{'config':<18} {'fps':>7} {'wall fps':>9} {'setup s':>8}  vs plain")
    plain = statistics.median(r["fps"] for r in rows["plain"])
    result = {}
    for name, runs in rows.items():
        fps = statistics.median(r["fps"] for r in runs)
        wall = statistics.median(r["wall_fps"] for r in runs)
        setup = statistics.median(r["setup_s"] for r in runs)
        result[name] = {"fps": round(fps, 3), "wall_fps": round(wall, 3), "setup_s": round(setup, 2),
                        "runs": runs}  # fmt: skip
        print(f"{name:<18} {fps:7.2f} {wall:9.2f} {setup:8.1f}  {fps / plain:6.2f}x")
    if args.json:
        document = {"frames": total, "ray_init_s": init_s, "load": load, "rows": result}
        args.json.write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()

"""Frames per second of ``infer`` on Ray with 1 and 2 actors vs plain ``infer`` in one process, small mode.

    python benchmarks/ray_scaling.py [--images 24] [--videos 2] [--frames 24] [--rounds 2] [--json out.json]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

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

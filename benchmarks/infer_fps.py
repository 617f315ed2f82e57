"""Frames per second of video inference, small mode, 4 people per frame: ours per backend/precision vs
upstream SpinePose 2.1.0 on the same stand-in graphs.

    python benchmarks/infer_fps.py [--frames 20] [--rounds 3] [--size 480x640] [--lift] [--no-detector]

Each frame is a synthetic 640x480 scene with four walking figures. Every configuration does the work of
``infer`` on a video: the detector runs on the whole frame, then pose (and the lifter with --lift) for
the people, then tracking and One-Euro smoothing. The stand-in detector's boxes mean nothing, so both
sides are given the four figures' boxes after running their detector (its cost is counted, its output
replaced): every row estimates exactly 4 people per frame.

Rows:
  ours <backend> <precision>   Pipeline.from_zoo(weights="standin") (a cached bundle), Pipeline.track
  ours onnxruntime raw fp32    Pipeline over the very ONNX files upstream loads (no export passes)
  upstream 2.1.0               spinepose.PoseTracker(smoothing=True) over those same ONNX files

Configurations are interleaved over ``--rounds`` rounds (the machine may be shared); the table shows the
median fps per configuration. Graphs are stand-ins: speed is real, keypoints are not.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

PEOPLE = 4


def scene(index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` (BGR) and its four figures' boxes ``(4, 4)``."""
    h, w = size
    frame = np.full((h, w, 3), 60, np.uint8)
    cv2.rectangle(frame, (0, int(0.8 * h)), (w, h), (70, 110, 90), -1)  # floor
    boxes = []
    for p in range(PEOPLE):
        x = int((0.1 * w + p * 0.22 * w + 3 * index) % (0.85 * w))
        top, height = int(0.2 * h) + 12 * (p % 2), int(0.6 * h)
        cx = x + height // 8
        color = (90 + 35 * p, 140, 210 - 30 * p)
        cv2.circle(frame, (cx, top + height // 12), height // 12, (190, 200, 230), -1)  # head
        cv2.line(frame, (cx, top + height // 6), (cx, top + height // 2), color, max(3, height // 12))  # trunk
        for dx in (-1, 1):
            swing = int(dx * (height // 8) * np.sin(0.3 * index + p))
            cv2.line(frame, (cx, top + height // 2), (cx + swing, top + height), color, max(3, height // 20))
            cv2.line(frame, (cx, top + height // 4), (cx - swing, top + height // 2), color, max(2, height // 25))
        boxes.append([cx - height // 4, top - 4, cx + height // 4, top + height + 4])
    return frame, np.asarray(boxes, np.float32)


class Scene:
    """The frames of one run; ``boxes`` are the current frame's figures."""

    def __init__(self, count: int, size: tuple[int, int]) -> None:
        self.items = [scene(i, size) for i in range(count)]
        self.boxes = self.items[0][1]

    def frames(self) -> Iterator[np.ndarray]:
        for frame, boxes in self.items:
            self.boxes = boxes
            yield frame


def ours(pipeline, video: Scene, detector: bool = True) -> Callable[[], int]:
    real_detect = pipeline.detect

    def detect(image):
        if detector:
            real_detect(image)  # the detector's cost counts; its stand-in output is replaced
        return video.boxes, np.full(len(video.boxes), 0.9, np.float32)

    pipeline.detect = detect

    def run() -> int:
        return sum(len(r) for r in pipeline.track(video.frames(), fps=30.0))

    return run


def upstream(paths: dict, video: Scene, lift: bool, detector: bool = True) -> Callable[[], int] | None:
    try:
        from spinepose import PoseTracker
    except ImportError:
        return None
    from vs_upstream import local_estimator_class  # beside this script

    local = local_estimator_class(paths["yolox-tiny"], paths["pose-s-v2"], paths["lifter"])
    tracker = PoseTracker(local, mode="small", detector="yolox", smoothing=True, enable_lifting=lift)
    real_detect = tracker.solution.detect

    def detect(image):
        if detector:
            real_detect(image)
        return video.boxes

    tracker.solution.detect = detect

    def run() -> int:
        tracker.reset()
        return sum(len(tracker(frame)[0]) for frame in video.frames())

    return run


def raw_pipeline(paths: dict, lift: bool):
    from spinepose_deploy import Pipeline, backends
    from spinepose_deploy.stages import GraphInfo
    from spinepose_deploy.zoo.specs import get_spec

    names = {"detector": "yolox-tiny", "pose": "pose-s-v2", "lifter": "lifter"}
    sessions = {role: backends.load(paths[name]) for role, name in names.items()}
    graphs = {role: GraphInfo.from_spec(get_spec(name), standin=True) for role, name in names.items()}
    return Pipeline(sessions["detector"], sessions["pose"], sessions["lifter"], graphs=graphs, lift=lift)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per round and configuration")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="480x640", help="HxW of the synthetic frames")
    parser.add_argument("--lift", action="store_true", help="also run the lifter (3D)")
    parser.add_argument("--no-detector", action="store_true", help="skip the detector: pose (+lifter) only")
    parser.add_argument(
        "--configs",
        default="onnxruntime:fp32,onnxruntime:fp16,openvino:fp32,openvino:fp16",
        help="backend:precision pairs for our rows",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = tuple(int(v) for v in args.size.lower().split("x"))

    from spinepose_deploy import Pipeline
    from spinepose_deploy.backends import get_backend
    from spinepose_deploy.zoo.standins import build_standin

    paths = {name: build_standin(name) for name in ("yolox-tiny", "pose-s-v2", "lifter")}
    video = Scene(args.frames, size)
    runs: dict[str, Callable[[], int]] = {}
    for pair in args.configs.split(","):
        backend, precision = pair.split(":")
        if not get_backend(backend).availability().ok:
            print(f"skip {pair}: {get_backend(backend).availability().reason}")
            continue
        pipe = Pipeline.from_zoo(backend=backend, precision=precision, weights="standin", lift=args.lift)
        runs[f"ours {backend} {precision}"] = ours(pipe, video, not args.no_detector)
    runs["ours onnxruntime raw fp32"] = ours(raw_pipeline(paths, args.lift), video, not args.no_detector)
    up = upstream(paths, video, args.lift, not args.no_detector)
    if up is None:
        print("upstream spinepose is not installed: pip install spinepose==2.1.0 (its row is skipped)")
    else:
        runs["upstream 2.1.0 onnxruntime fp32"] = up

    for run in runs.values():  # warm-up: sessions, arenas, caches
        run()
    fps: dict[str, list[float]] = {name: [] for name in runs}
    people: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            people[name] = run()
            fps[name].append(args.frames / (time.perf_counter() - start))

    base = statistics.median(fps.get("upstream 2.1.0 onnxruntime fp32") or [float("nan")])
    print(
        f"\nsmall mode ({'' if args.no_detector else 'yolox-tiny 416 + '}pose-s 256x192"
        f"{' + lifter' if args.lift else ''}), "
        f"{size[1]}x{size[0]} frames, {PEOPLE} people/frame, {args.frames} frames x {args.rounds} rounds, "
        f"{platform.processor() or platform.machine()}, STAND-IN graphs\n"
    )
    print(f"| {'configuration':34} | fps (median) | min - max   | people/frame | vs upstream |")
    print(f"|{'-' * 36}|--------------|-------------|--------------|-------------|")
    for name, values in fps.items():
        med = statistics.median(values)
        print(
            f"| {name:34} | {med:12.2f} | {min(values):5.2f}-{max(values):5.2f} | "
            f"{people[name] / args.frames:12.1f} | {med / base:10.2f}x |"
        )


if __name__ == "__main__":
    main()

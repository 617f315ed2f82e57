"""Bounded memory on long videos: RSS growth of ``infer`` over a generated 720p clip.

    python benchmarks/video_memory.py [--minutes 0.33] [--backend auto] [--weights trained] [--json out.json]

Renders ``UNIQUE_S`` seconds of walking figures at 1280x720 (``synth.video.WalkingClip``), writes them to an
MJPG .avi repeated up to ``--minutes`` (30 for the full check; the default is a 20-second proxy that runs in
about two minutes), then runs the real ``infer`` path on it (``run_infer``: ``VideoReader`` -> ``Pipeline.track``
with the default detection interval and overlapped stages; no outputs written) and samples the process RSS
(psutil) every ``SAMPLE_EVERY`` frames. Reported: RSS after warm-up (``WARMUP_FRAMES``), at the end, the growth
between them and its slope per minute of video, extrapolated to 30 minutes. Target: growth < 50 MB over 30 min.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import psutil

from spinepose_deploy import Pipeline
from spinepose_deploy.backends.host import describe, fingerprint
from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
from spinepose_deploy.pipeline.io import resolve_input
from spinepose_deploy.synth.video import WalkingClip

FPS = 30.0
UNIQUE_S = 4  # seconds of distinct frames; the clip repeats them
WARMUP_FRAMES = 90
SAMPLE_EVERY = 30
TARGET_MB = 50.0


def write_clip(path: Path, minutes: float) -> int:
    """Write the clip; returns its frame count."""
    frames = [f.image for f in WalkingClip(1, frames=int(UNIQUE_S * FPS), people=4, size=(720, 1280), present=1.0)]
    total = max(int(minutes * 60 * FPS), WARMUP_FRAMES + SAMPLE_EVERY)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (1280, 720))
    try:
        for index in range(total):
            # ping-pong through the unique frames so walkers do not jump at the seam
            cycle = index % (2 * len(frames) - 2)
            writer.write(frames[cycle if cycle < len(frames) else 2 * len(frames) - 2 - cycle])
    finally:
        writer.release()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1 / 3)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--weights", default="trained")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    process = psutil.Process()
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip720p.avi"
        began = time.perf_counter()
        total = write_clip(clip, args.minutes)
        took = time.perf_counter() - began
        print(f"clip: {total} frames 1280x720 ({total / FPS / 60:.1f} min) written in {took:.0f} s")
        frames = {"n": 0}

        def start(name: str, count: int | None) -> None:
            pass

        def step() -> None:
            frames["n"] += 1
            if frames["n"] % SAMPLE_EVERY == 0:
                samples.append((frames["n"], process.memory_info().rss / 2**20))

        with Pipeline.from_zoo(mode="small", backend=args.backend, weights=args.weights) as pipe:
            began = time.perf_counter()
            summary = run_infer(pipe, OutputPlan(resolve_input(clip)), progress=(start, step))
            seconds = time.perf_counter() - began
            where = ", ".join(pipe.describe().values())
    warm = next(rss for n, rss in samples if n >= WARMUP_FRAMES)
    end = samples[-1][1]
    video_minutes = (samples[-1][0] - WARMUP_FRAMES) / FPS / 60
    slope = (end - warm) / video_minutes if video_minutes > 0 else 0.0
    projected = slope * 30.0
    report = {
        "host": describe(fingerprint()), "pipeline": where, "frames": summary.frames, "fps": summary.frames / seconds,
        "rss_warm_mb": warm, "rss_end_mb": end, "growth_mb": end - warm, "growth_mb_per_min": slope,
        "projected_30min_mb": projected, "peak_mb": max(rss for _, rss in samples), "samples": samples,
    }  # fmt: skip
    print(f"host: {report['host']}\npipeline: {where}")
    print(f"{summary.frames} frames at {report['fps']:.1f} f/s; RSS {warm:.0f} MB after {WARMUP_FRAMES} frames, "
          f"{end:.0f} MB at the end (peak {report['peak_mb']:.0f}): growth {end - warm:+.1f} MB, "
          f"{slope:+.1f} MB per video minute, projected {projected:+.0f} MB over 30 min "
          f"(target < {TARGET_MB:.0f}: {'met' if projected < TARGET_MB else 'NOT met'})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

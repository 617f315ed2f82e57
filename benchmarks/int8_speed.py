"""FP32 vs INT8 latency per graph and backend on this machine, through the Session interface.

For each graph of a mode (detector at batch 1, pose and lifter at batch 6 person crops) it prepares the FP32
graph the way ``export`` does, calibrates on the default calibration frames (pipeline-aware feeds), makes the
INT8 artifacts ``export --precision int8`` chooses between, and times them all on the same feed:

- onnxruntime: FP32 ONNX; QDQ "cpu" scheme (u8 activations, 7-bit s8 weights); QDQ "tensorrt" scheme
  (s8 symmetric activations, 8-bit weights), to show what that scheme costs on an x86 CPU;
- openvino: FP32 ONNX (f32 inference hint); the "cpu" QDQ ONNX read by OpenVINO; NNCF's IR.

Timings are medians of interleaved runs (a load spike hits every artifact alike). Usage:

    python benchmarks/int8_speed.py [--mode small] [--runs 30] [--samples 16] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from spinepose_deploy.backends import get_backend
from spinepose_deploy.export import calibration, frames, passes, quantize
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.zoo.source import resolve_graph
from spinepose_deploy.zoo.specs import Role, resolve_mode

BATCH = {"detector": 1, "pose": 6, "lifter": 6}


def prepare_graphs(mode: str, work: Path) -> tuple[dict, dict]:
    """FP32 graphs after the export passes, and their calibration feeds (spooled)."""
    selection = resolve_mode(mode)
    sources = {role: resolve_graph(spec) for role, spec in selection.graphs().items()}
    inputs = {
        role: GraphInfo.from_spec(spec, input_name=frames.input_name(onnx.load(str(sources[role].path))))
        for role, spec in selection.graphs().items()
    }
    paths = {}
    for role, spec in selection.graphs().items():
        model = passes.simplify(onnx.load(str(sources[role].path)))
        if spec.role in (Role.POSE, Role.LIFTER) and not passes.has_dynamic_batch(model):
            model = passes.make_batch_dynamic(model)
        paths[role] = work / f"{role}.fp32.onnx"
        onnx.save(model, str(paths[role]))
    return paths, inputs


def calibration_feeds(inputs: dict, paths: dict, samples: int, work: Path) -> dict:
    source = calibration.open_source(None, samples)
    ort = get_backend("onnxruntime")
    with ort.load(paths["detector"]) as detector, ort.load(paths["pose"]) as pose:
        runners = {"detector": detector.run, "pose": pose.run}
        stream = calibration.pipeline_feeds(source, inputs, runners, tuple(inputs))
        return calibration.spool(stream, {role: work / "calib" / role for role in inputs})


def int8_artifacts(role: str, fp32: Path, feeds: calibration.FeedFiles, work: Path) -> dict[str, Path]:
    pre = work / f"{role}.pre.onnx"
    quantize.prepare(fp32, pre)
    tail = quantize.float_tail(pre)
    out = {}
    for name in ("cpu", "tensorrt"):
        scheme = quantize.SCHEMES[name]
        cache = quantize.calibrate(pre, feeds, "minmax", scheme, work / f"{role}.{name}.calib.json")
        out[name] = quantize.quantize_qdq(
            pre, work / f"{role}.{name}.qdq.onnx", feeds=feeds, method="minmax", scheme=scheme, exclude=tail,
            cache=cache,
        )  # fmt: skip
    written = quantize.nncf_openvino(pre, feeds, work / f"{role}-nncf", role, tail)
    out["nncf"] = work / f"{role}-nncf" / written.primary
    return out


def time_sessions(sessions: dict, feed: dict, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        for _ in range(3):
            session.run(feed)
    for _ in range(runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(feed)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) * 1000.0 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="small")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=16, help="calibration samples")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the runtime's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-bench-") as tmp:
        work = Path(tmp)
        paths, inputs = prepare_graphs(args.mode, work)
        feeds = calibration_feeds(inputs, paths, args.samples, work)
        ort, ov = get_backend("onnxruntime"), get_backend("openvino")
        for role in ("detector", "pose", "lifter"):
            feed = passes.batched(next(iter(feeds[role])), BATCH[role])
            art = int8_artifacts(role, paths[role], feeds[role], work)
            t = {"threads": args.threads}
            sessions = {
                ("onnxruntime", "fp32"): ort.load(paths[role], **t),
                ("onnxruntime", "int8 qdq cpu (u8 act, 7-bit w)"): ort.load(art["cpu"], precision="int8", **t),
                ("onnxruntime", "int8 qdq tensorrt (s8 sym act)"): ort.load(art["tensorrt"], precision="int8", **t),
            }
            if ov.availability().ok:
                sessions[("openvino", "fp32")] = ov.load(paths[role], precision="fp32", **t)
                sessions[("openvino", "int8 qdq cpu")] = ov.load(art["cpu"], precision="int8", **t)
                sessions[("openvino", "int8 nncf")] = ov.load(art["nncf"], precision="int8", **t)
            latency = time_sessions(sessions, feed, args.runs)
            for session in sessions.values():
                session.close()
            for (backend, variant), ms in latency.items():
                base = latency[(backend, "fp32")]
                rows.append(
                    {"graph": role, "batch": BATCH[role], "backend": backend, "variant": variant,
                     "median_ms": round(ms, 2), "speedup_vs_fp32": round(base / ms, 2)}
                )  # fmt: skip
    standin = any(resolve_graph(spec).standin for spec in resolve_mode(args.mode).graphs().values())
    result = {
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor() or "",
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "mode": args.mode,
        "standin": standin,
        "runs": args.runs,
        "threads": args.threads,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("| graph (batch) | backend | variant | median ms | x FP32 |\n|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['graph']} ({r['batch']})", r["backend"], r["variant"], r["median_ms"], r["speedup_vs_fp32"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()

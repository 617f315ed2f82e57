"""Check the TensorRT backend on an NVIDIA GPU host: build an engine, run it, compare with ONNX Runtime.

    python benchmarks/check_tensorrt.py [MODEL.onnx] [--model pose-s-v2] [--precision fp16] [--batch 1:4:8]

Without an ONNX file it uses the stand-in of ``--model`` (built with spinepose_deploy.zoo.standins).
The engine is built by the export writer (spinepose_deploy.export.tensorrt: explicit batch, one
optimisation profile MIN:OPT:MAX; FP16 from an FP16 graph on TensorRT 11, plus the FP16 builder flag
on TensorRT 10), loaded through the TensorRT backend, run at batch OPT and MAX+1 (the backend splits
batches larger than the profile), and compared with the ONNX Runtime backend on the FP32 graph.
Prints one line, PASS or FAIL; exit code 0 on PASS, 1 on FAIL, 2 when TensorRT cannot run here.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# relative error limit (max abs error / output range) and SimCC argmax agreement, per precision;
# fp32 is loose because TensorRT builds FP32 convolutions with TF32 on Ampere and newer
LIMITS = {"fp32": (1e-2, 0.99), "fp16": (5e-2, 0.95)}


def _feeds(session, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in session.inputs:
        shape = [batch if i == 0 and not isinstance(d, int) else d for i, d in enumerate(info.shape)]
        if any(not isinstance(d, int) for d in shape):
            raise SystemExit(f"FAIL: input '{info.name}' has dynamic non-batch dims {info.shape}")
        feeds[info.name] = rng.standard_normal(shape).astype(info.dtype)
    return feeds


def _compare(reference: dict, candidate: dict) -> tuple[float, float | None, str]:
    """(worst relative error, SimCC argmax agreement or None, worst output name)."""
    worst, worst_name, agree = 0.0, "", []
    for name, ref in reference.items():
        got = candidate[name].astype(np.float32)
        if got.shape != ref.shape:
            return float("inf"), None, f"{name} shape {got.shape} != {ref.shape}"
        span = float(ref.max() - ref.min()) or 1.0
        relative = float(np.abs(got - ref).max()) / span
        if relative >= worst:
            worst, worst_name = relative, name
        if name.startswith("simcc_"):
            agree.append(float((ref.argmax(-1) == got.argmax(-1)).mean()))
    return worst, (min(agree) if agree else None), worst_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", nargs="?", type=Path, help="ONNX graph (default: the stand-in of --model)")
    parser.add_argument("--model", default="pose-s-v2", help="zoo model for the stand-in and artifact name")
    parser.add_argument("--precision", choices=sorted(LIMITS), default="fp16")
    parser.add_argument("--batch", default="1:4:8", help="optimisation profile MIN:OPT:MAX")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import onnx

    from spinepose_deploy.backends import get_backend
    from spinepose_deploy.export import passes
    from spinepose_deploy.export.base import BatchRange
    from spinepose_deploy.export.tensorrt import gpu_key, write
    from spinepose_deploy.zoo.specs import get_spec

    trt_backend = get_backend("tensorrt")
    status = trt_backend.availability()
    if not status:
        print(f"FAIL: TensorRT cannot run here: {status.reason}")
        return 2
    spec, batch = get_spec(args.model), BatchRange.parse(args.batch)
    source = args.onnx
    if source is None:
        from spinepose_deploy.zoo.standins import build_standin

        source = build_standin(spec, progress=True)
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "source.onnx"
        model = onnx.load(str(source))
        # TensorRT 11 is strongly typed: FP16 must be in the graph (the exporter does the same)
        onnx.save(passes.to_fp16(model) if args.precision == "fp16" else model, str(graph))
        start = time.perf_counter()
        written = write(graph, Path(tmp), spec=spec, precision=args.precision, batch=batch)
        build_s = time.perf_counter() - start
        reference = get_backend("onnxruntime").load(source)
        with trt_backend.load(Path(tmp) / written.primary, precision=args.precision) as session:
            results = []
            for size in (batch.opt, batch.max + 1):
                feeds = _feeds(reference, size, seed=size)
                results.append((size, *_compare(reference.run(feeds), session.run(feeds))))
    limit_err, limit_agree = LIMITS[args.precision]
    failed = [r for r in results if not r[1] <= limit_err or (r[2] is not None and r[2] < limit_agree)]
    key = gpu_key()
    detail = "; ".join(
        f"batch {size}: rel err {err:.2e} ({name})"
        + (f", simcc argmax agree {agree:.1%}" if agree is not None else "")
        for size, err, agree, name in results
    )
    verdict = "FAIL" if failed else "PASS"
    print(
        f"{verdict}: {source.name} TensorRT {key['tensorrt']} {args.precision} on {key['gpu']} "
        f"(sm {key['compute_capability']}), build {build_s:.1f} s; {detail}; "
        f"limits rel err <= {limit_err:g}, agree >= {limit_agree:.0%}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    from spinepose_deploy.errors import SpinePoseDeployError

    try:
        sys.exit(main())
    except SpinePoseDeployError as exc:  # build/load/run errors: still one line
        print(f"FAIL: {exc}")
        sys.exit(1)

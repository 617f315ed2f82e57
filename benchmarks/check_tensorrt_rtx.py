"""The script an RTX GPU owner runs to verify TensorRT-RTX engines end to end (a few minutes on one RTX GPU).

    python benchmarks/check_tensorrt_rtx.py [--device 0] [--bundle DIR] [--out DIR]

CI builds the engines without a GPU (tests/test_tensorrt_rtx.py); only an RTX GPU (Ampere or later by default)
deserializes them, JIT-compiles the kernels and runs them. Through the public API, on stand-ins built here:

 1. small FP16 (or ``--bundle``, e.g. one exported on a CPU-only CI machine): per graph, the first load
    (deserialize + JIT compile) and the second (runtime cache from the cache dir) are timed, and the engine's
    outputs at batch 1, 3 (padded to the profile), 16 and 17 (chunked) are compared with ONNX Runtime on the
    exact ONNX it was built from (``<role>.onnx`` in the bundle)
 2. small INT8, trained stand-ins, synthetic calibration: the Q/DQ engines vs the same Q/DQ graphs in ORT
 3. ``Pipeline.from_bundle`` (host NMS for the detector body) vs the ORT FP32 pipeline on a packaged photo
Prints one line per check and a verdict. Exit 0: all pass; 1: a check failed; 2: TensorRT-RTX cannot run here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _device_check import Checks, pipeline_vs_ort, relative

REL_LIMIT = {"fp32": 1e-2, "fp16": 5e-2, "int8": 1e-1}  # max |RTX - ORT| / output range on the same graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="0", help="GPU index (cuda:N)")
    parser.add_argument("--bundle", type=Path, help="an FP16 tensorrt-rtx bundle to check (default: export one here)")
    parser.add_argument("--out", type=Path, help="keep the bundles here (default: a temporary folder)")
    args = parser.parse_args(argv)

    import onnx
    from spinepose_deploy.export.bundle import Bundle

    from spinepose_deploy import backends
    from spinepose_deploy.backends import _trt
    from spinepose_deploy.backends.tensorrt_rtx import runtime_cache_path
    from spinepose_deploy.export import passes
    from spinepose_deploy.export.exporter import ExportRequest, export_bundle

    status = backends.get_backend("tensorrt-rtx").availability()
    if not status:
        print(f"CANNOT RUN HERE: TensorRT-RTX: {status.reason}")
        return 2
    gpu = _trt.device_index(args.device)
    name, capability = _trt.gpu_props(gpu)
    print(f"TensorRT-RTX {status.version} on {name} (sm {capability}), cuda:{gpu}")
    root = Path(args.out or tempfile.mkdtemp(prefix="check_tensorrt_rtx_"))
    check = Checks()

    def engines_vs_ort(bundle: Bundle) -> str:
        parts = []
        for role in bundle.roles:
            engine, entry = bundle.artifact(role), bundle.graph(role)
            source = onnx.load(str(bundle.path / entry["extra"]["source_onnx"]))
            loads = []
            for _ in range(2):  # first: JIT compile; second: kernels from the runtime cache
                start = time.perf_counter()
                session = backends.load(engine, backend="tensorrt-rtx", precision=entry["precision"], device=gpu)
                loads.append(time.perf_counter() - start)
                if len(loads) == 1:
                    session.close()  # saves the runtime cache
            assert runtime_cache_path(engine, gpu).is_file(), "no runtime cache was written"
            try:
                batches = [1] if role == "detector" else [1, 3, 16, 17]
                worst = 0.0
                for batch in batches:
                    rng = np.random.default_rng(batch)
                    feed = {
                        i.name: rng.uniform(0, 1, (batch, *[int(d) for d in i.shape[1:]])).astype(np.float32)
                        for i in session.inputs
                    }
                    worst = max(worst, relative(passes.run_onnx(source, feed), session.run(feed)))
            finally:
                session.close()
            limit = REL_LIMIT[entry["precision"]]
            assert worst <= limit, f"{role}: {worst:.3g} of the output range vs ORT, over {limit}"
            parts.append(f"{role} {worst:.2g} (load {loads[0]:.1f} s JIT, {loads[1]:.1f} s cached)")
        return "; ".join(parts)

    fp16 = args.bundle
    if fp16 is None:
        fp16 = root / "small-fp16"
        export_bundle(ExportRequest(backend="tensorrt-rtx", precision="fp16", out=fp16, weights="standin", force=True))
    check("small FP16 engines vs ORT, JIT then runtime cache", lambda: engines_vs_ort(Bundle.load(fp16)))

    def int8() -> str:
        out = root / "small-int8"
        request = ExportRequest(
            backend="tensorrt-rtx", precision="int8", out=out, weights="trained", calib="synth", force=True
        )
        return engines_vs_ort(export_bundle(request))

    check("small INT8 (trained, synth calibration) engines vs the same Q/DQ graphs in ORT", int8)

    check(
        "Pipeline.from_bundle (host NMS) vs ORT pipeline",
        lambda: pipeline_vs_ort(fp16, "tensorrt-rtx", device=f"cuda:{gpu}"),
    )
    return check.verdict()


if __name__ == "__main__":
    raise SystemExit(main())

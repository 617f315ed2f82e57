"""The script a Mac owner runs to verify the Core ML path on Apple silicon (a few minutes on an M-series Mac).

    python benchmarks/check_coreml.py [--bundle DIR] [--precision fp16] [--compute-units ALL|CPU_AND_NE|CPU_ONLY]

Without ``--bundle`` it exports small mode (stand-ins built here, no download) for Core ML with the default
batch ladder (enumerated shapes 1, 2, 4, 8, 16). Then, through the public API and coremltools only:

 1. per graph and per batch of its ladder (the detector: its one static shape): a Core ML prediction vs ONNX
    Runtime on the graph the bundle was converted from (``<role>`` FP32 ONNX from the zoo, NMS cut for the
    detector as in the bundle), max difference relative to the output range; a batch off the ladder (3) goes
    through ``backends.load`` (padded to 4) and must match too
 2. per graph: the compute unit Core ML prefers for each ML Program op (``MLComputePlan``, macOS 14.4+ with
    coremltools 8+), counted as Neural Engine / GPU / CPU; an op that stays on the CPU is listed
 3. a full ``Pipeline.from_bundle(DIR)`` on a packaged photo vs the ONNX Runtime pipeline (keypoints, px)
Prints one line per check and a verdict. Exit 0: all pass; 1: a check failed; 2: Core ML cannot run here.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np
from _device_check import Checks, pipeline_vs_ort, relative

REL_LIMIT = {"fp32": 1e-3, "fp16": 5e-2, "int8": 1e-1}  # of the output range, vs ONNX Runtime on the same inputs
UNITS = {"MLNeuralEngineComputeDevice": "ane", "MLGPUComputeDevice": "gpu", "MLCPUComputeDevice": "cpu"}


def _feeds(session, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        i.name: rng.uniform(-1, 1, (batch, *[int(d) for d in i.shape[1:]])).astype(np.float32) for i in session.inputs
    }


def compute_units(package: Path, units: str) -> dict[str, object]:
    """Ops per preferred compute unit (MLComputePlan) and the op types left on the CPU."""
    import coremltools as ct
    from coremltools.models.compute_plan import MLComputePlan

    model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, units))
    plan = MLComputePlan.load_from_path(model.get_compiled_model_path(), compute_units=getattr(ct.ComputeUnit, units))
    counts: collections.Counter = collections.Counter()
    on_cpu: collections.Counter = collections.Counter()
    for op in plan.model_structure.program.functions["main"].block.operations:
        usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
        if usage is None:  # constants and other ops with no device
            continue
        unit = UNITS.get(type(usage.preferred_compute_device).__name__, "cpu")
        counts[unit] += 1
        if unit == "cpu":
            on_cpu[op.operator_name] += 1
    return {"counts": dict(counts), "cpu_ops": dict(on_cpu.most_common(8))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a Core ML bundle (default: export small mode here)")
    parser.add_argument("--precision", default="fp16", help="fp32 | fp16 (when exporting)")
    parser.add_argument("--compute-units", default="ALL", help="ALL | CPU_AND_NE | CPU_AND_GPU | CPU_ONLY")
    args = parser.parse_args(argv)

    from spinepose_deploy.export.bundle import Bundle

    from spinepose_deploy import backends
    from spinepose_deploy.export import passes
    from spinepose_deploy.export.exporter import ExportRequest, export_bundle
    from spinepose_deploy.export.sanitize import strip_nms
    from spinepose_deploy.zoo.source import resolve_graph
    from spinepose_deploy.zoo.specs import get_spec

    status = backends.get_backend("coreml").availability()
    if not status:
        print(f"CANNOT RUN HERE: Core ML: {status.reason}")
        return 2
    check = Checks()

    path = args.bundle
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="check_coreml_")) / "bundle"
        export_bundle(ExportRequest(backend="coreml", precision=args.precision, out=path, weights="standin"))
    bundle = Bundle.load(path)
    import onnx

    for role in bundle.roles:
        entry = bundle.graph(role)
        limit = REL_LIMIT[entry["precision"]]
        source = onnx.load(str(resolve_graph(get_spec(entry["model"]), weights="standin").path))
        reference = strip_nms(source) if entry["extra"].get("host_nms") else source
        batch_info = entry["extra"]["batch"]
        ladder = batch_info.get("sizes") or [batch_info.get("size", 1)]

        def predictions(role=role, reference=reference, ladder=ladder, limit=limit) -> str:
            session = backends.load(bundle.artifact(role), backend="coreml")
            try:
                worst = {}
                for batch in [*ladder, *([3] if len(ladder) > 1 else [])]:  # 3: padded to the next size
                    feed = _feeds(session, batch, seed=batch)
                    worst[batch] = relative(passes.run_onnx(reference, feed), session.run(feed))
            finally:
                session.close()
            bad = {b: w for b, w in worst.items() if w > limit}
            assert not bad, f"batches over {limit}: {bad}"
            return ", ".join(f"b{b} {w:.2g}" for b, w in worst.items())

        check(f"{role}: Core ML vs ONNX Runtime per ladder batch", predictions)

        def plan(role=role) -> str:
            found = compute_units(bundle.artifact(role), args.compute_units)
            return f"ops per unit {found['counts']}; on the CPU: {found['cpu_ops'] or 'none'}"

        check(f"{role}: compute unit per op (MLComputePlan)", plan)

    check("Pipeline.from_bundle vs ONNX Runtime pipeline", lambda: pipeline_vs_ort(path, "coreml"))
    return check.verdict()


if __name__ == "__main__":
    raise SystemExit(main())

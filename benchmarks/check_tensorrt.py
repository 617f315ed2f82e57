"""The one script a GPU owner runs to verify the TensorRT path end to end (about 5-10 minutes on one GPU).

    python benchmarks/check_tensorrt.py [--device 0] [--quick] [--out DIR]

Everything goes through the public API (``export_bundle``, ``Pipeline``, ``backends.load``) on stand-in
graphs built here (no download), and every number is measured against ONNX Runtime on the same inputs:

 1. small / YOLOX-tiny, FP16, batch profile 2:4:8: export builds the three engines; each graph's fidelity gate
    runs through the TensorRT Session on the packaged photos vs the FP32 ONNX in ONNX Runtime
 2. the pose engine of 1 at batch 1 (below the profile MIN: padded) and 9 (above MAX: chunked) vs ORT
 3. a full Pipeline from bundle 1 (three TensorRT sessions in one process) vs the ORT FP32 pipeline
 4. small FP32 (TF32 convolutions on Ampere+), trained stand-ins, all three graphs, gates through TensorRT
 5. small INT8, trained stand-ins, synthetic calibration, ``--onnx-only``: the Q/DQ graphs (no int32 bias DQ)
    are built into engines on first use; per graph TensorRT vs the same Q/DQ graph in ORT run node by node
 6. RF-DETR-n FP16 detector (``--onnx-only``), TensorRT vs ORT on the same FP16 graph
 7. medium / YOLOX-m FP16 ``--onnx-only`` (640 input: pre-NMS TopK capped at 3840; NMS through the output
    allocator), engine built on first use over a corrupted timing cache file, reloaded from the engine cache,
    boxes vs ORT on the same FP16 graph (random-weight stand-ins are judged against ORT, not against FP32)
Prints one line per check and a verdict. Exit 0: all pass; 1: a check failed; 2: TensorRT cannot run here.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _device_check import relative

LOOSE = [  # INT8 check 5 compares TensorRT with ORT on the same Q/DQ graph; the model-quality gate is not the point
    "pose_p95_px=1e9", "pose_median_px=1e9", "pose_pck_drop=1", "detector_recall=0", "detector_iou=0",
    "detector_ap50_drop=1", "lifter_mpjpe_mm=1e9", "lifter_gt_mpjpe_rise_mm=1e9",
]  # fmt: skip
# max |TensorRT - ORT| / output range on the same graph; int8: TensorRT's INT8 kernels vs ORT's float emulation
# of the same Q/DQ graph (rounding of accumulations differs, 5 % of the output range proved too tight to judge)
REL_LIMIT = {"fp32": 1e-2, "fp16": 5e-2, "int8": 1e-1}


def _gates(bundle, backend: str = "tensorrt") -> str:
    """Every graph's gate measured through ``backend``; raises AssertionError naming the first that is not."""
    parts = []
    for role in bundle.roles:
        fidelity = bundle.graph(role)["fidelity"]
        on = fidelity.get("measured_on", "not measured")
        assert on.startswith(backend), f"{role}: fidelity measured on '{on}', expected {backend}"
        gate = fidelity["gate"]
        assert gate["passed"], f"{role}: gate failed: {'; '.join(gate['failures'])}"
        parts.append(f"{role} {bundle.precision_of(role)} ok")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="0", help="GPU index (cuda:N)")
    parser.add_argument("--quick", action="store_true", help="skip checks 4, 6 and 7 (about half the time)")
    parser.add_argument("--out", type=Path, help="keep the bundles here (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from spinepose_deploy import Pipeline, backends
    from spinepose_deploy.backends import _trt
    from spinepose_deploy.export import frames
    from spinepose_deploy.export.base import BatchRange
    from spinepose_deploy.export.exporter import ExportRequest, export_bundle
    from spinepose_deploy.export.fidelity import Thresholds
    from spinepose_deploy.paths import cache_subdir

    status = backends.get_backend("tensorrt").availability()
    if not status:
        print(f"CANNOT RUN HERE: TensorRT: {status.reason}")
        return 2
    device = f"cuda:{_trt.device_index(args.device)}"
    key = _trt.gpu_key(_trt.device_index(args.device))
    print(f"TensorRT {key['tensorrt']} on {key['gpu']} (sm {key['compute_capability']}), {device}")
    root = Path(args.out or tempfile.mkdtemp(prefix="check_tensorrt_"))
    results: list[tuple[str, bool, str, float]] = []
    bundles: dict = {}

    def check(name: str, body: Callable[[], str]) -> None:
        start = time.perf_counter()
        try:
            detail, ok = body(), True
        except Exception as exc:  # every failure is one line in the report (the traceback goes to the log)
            logging.getLogger("check_tensorrt").debug("%s", traceback.format_exc())
            detail, ok = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc) else ''}", False
        seconds = time.perf_counter() - start
        results.append((name, ok, detail, seconds))
        print(f"{'PASS' if ok else 'FAIL'} {name} ({seconds:.0f} s): {detail}", flush=True)

    def export(name: str, **options) -> object:
        options.setdefault("weights", "standin")
        request = ExportRequest(backend="tensorrt", out=root / name, force=True, **options)
        bundles[name] = export_bundle(request)
        return bundles[name]

    def fp16_small() -> str:
        # the trained stand-ins: keypoints and boxes with skill, so FP16 is judged on meaningful outputs
        return _gates(export("small-fp16", precision="fp16", batch=BatchRange(2, 4, 8), weights="trained"))

    def batch_bounds() -> str:
        bundle = bundles["small-fp16"]
        from spinepose_deploy.zoo.source import resolve_graph
        from spinepose_deploy.zoo.specs import get_spec

        pose = backends.load(bundle.artifact("pose"), backend="tensorrt", precision="fp16", device=device)
        reference = backends.load(resolve_graph(get_spec("pose-s-v2"), weights="trained").path, backend="onnxruntime")
        name = reference.inputs[0].name
        rng = np.random.default_rng(0)
        errors = {}
        with pose, reference:
            assert pose.min_batch == 2 and pose.max_batch == 8, f"profile bounds {pose.min_batch}..{pose.max_batch}"
            for size in (1, 9):
                feeds = {name: rng.normal(0, 1, (size, 3, 256, 192)).astype(np.float32)}
                errors[size] = relative(reference.run(feeds), pose.run(feeds))
        bad = {s: e for s, e in errors.items() if not e <= REL_LIMIT["fp16"]}
        assert not bad, f"relative error {bad} > {REL_LIMIT['fp16']}"
        return ", ".join(f"batch {s}: rel err {e:.1e}" for s, e in errors.items())

    def pipeline() -> str:
        images = frames.load_images(limit=4)
        trt_pipe = Pipeline.from_bundle(bundles["small-fp16"].path, backend="tensorrt", device=device)
        ort_pipe = Pipeline.from_zoo(mode="small", backend="onnxruntime", precision="fp32", weights="trained")
        kinds = {role: getattr(s, "backend", None) for role, s in trt_pipe.sessions.items()}
        assert kinds == dict.fromkeys(("detector", "pose", "lifter"), "tensorrt"), f"sessions {kinds}"
        errors, people = [], 0
        for image in images:
            got, ref = trt_pipe(image), ort_pipe(image)
            assert len(got.boxes) == len(ref.boxes), f"{len(got.boxes)} people vs {len(ref.boxes)} in ORT"
            if len(ref.boxes):
                errors.append(np.linalg.norm(got.keypoints - ref.keypoints, axis=-1).ravel())
                people += len(ref.boxes)
        p95 = float(np.percentile(np.concatenate(errors), 95)) if errors else 0.0
        assert p95 <= 6.0, f"keypoint p95 difference vs ORT FP32 {p95:.2f} px > 6"
        return f"{len(images)} frames, {people} people, keypoint p95 difference vs ORT FP32 {p95:.2f} px"

    def fp32_small() -> str:  # trained weights: TF32 rounding must not be judged on a flat random SimCC
        return _gates(export("small-fp32", precision="fp32", weights="trained"))

    def int8_small() -> str:
        bundle = export(
            "small-int8", precision="int8", onnx_only=True, int8_rounds=0, weights="trained", calib_samples=32,
            thresholds=Thresholds().with_overrides(LOOSE),
        )  # fmt: skip
        parts = []
        rng = np.random.default_rng(1)
        for role, shape in (("pose", (3, 3, 256, 192)), ("lifter", (5, 37, 2))):
            artifact = bundle.artifact(role)
            assert bundle.precision_of(role) == "int8", f"{role} is {bundle.precision_of(role)}"
            ort_qdq = backends.load(artifact, backend="onnxruntime", optimize=False)
            with ort_qdq, backends.load(artifact, backend="tensorrt", precision="int8", device=device) as engine:
                feeds = {ort_qdq.inputs[0].name: rng.normal(0, 1, shape).astype(np.float32)}
                error = relative(ort_qdq.run(feeds), engine.run(feeds))
            assert error <= REL_LIMIT["int8"], f"{role}: TensorRT vs ORT on the Q/DQ graph: rel err {error:.2e}"
            parts.append(f"{role} rel err {error:.1e} vs ORT Q/DQ")
        on = bundle.graph("detector")["fidelity"].get("measured_on", "")
        assert on.startswith("tensorrt"), f"detector measured on '{on}'"
        return ", ".join(parts) + "; detector ran through TensorRT in the gate"

    def same_graph(bundle, role: str, feeds: dict[str, np.ndarray], precision: str) -> float:
        """TensorRT vs ONNX Runtime on the bundle's own ONNX graph (an --onnx-only bundle)."""
        artifact = bundle.artifact(role)
        with backends.load(artifact, backend="onnxruntime") as ort_session, backends.load(
            artifact, backend="tensorrt", precision=precision, device=device
        ) as engine:
            return relative(ort_session.run(feeds), engine.run(feeds))

    def rfdetr() -> str:
        # random-weight stand-in: judged against ORT on the same FP16 graph, not against FP32 (its gate)
        bundle = export("rfdetr-fp16", precision="fp16", detector="rfdetr", roles=("detector",), onnx_only=True)
        size = bundle.graph("detector")["preprocess"]["input_size"]
        feeds = {"input": np.random.default_rng(2).normal(0, 1, (1, 3, *size)).astype(np.float32)}
        error = same_graph(bundle, "detector", feeds, "fp16")
        assert error <= REL_LIMIT["fp16"], f"rel err {error:.2e} vs ORT on the same FP16 graph"
        return f"rel err {error:.1e} vs ORT on the same FP16 graph"

    def yolox_m() -> str:
        from spinepose_deploy.export.exporter import gate_frames
        from spinepose_deploy.export.fidelity import measure

        timing = cache_subdir("tensorrt") / f"timing-sm{key['compute_capability']}-trt{key['tensorrt']}.cache"
        timing.write_bytes(b"not a timing cache")  # a corrupt file must be replaced, not fatal
        bundle = export("medium-fp16", precision="fp16", mode="medium", roles=("detector",), onnx_only=True)
        on = bundle.graph("detector")["fidelity"].get("measured_on", "")
        assert on.startswith("tensorrt"), f"detector measured on '{on}' (engine not built on first use?)"
        assert timing.read_bytes() != b"not a timing cache", "timing cache was not rewritten"
        assert any("K capped at 3840" in n for n in bundle.graph("detector")["notes"]), "no TopK cap note"
        # random-weight yolox-m loses boxes in FP16 on any runtime (ORT FP16: recall 0.39 vs FP32), so the
        # engine is judged against ORT on the same FP16 graph, on the packaged photos, through the NMS allocator
        start = time.perf_counter()
        artifact = bundle.artifact("detector")
        with backends.load(artifact, backend="onnxruntime") as ort_session, backends.load(
            artifact, backend="tensorrt", precision="fp16", device=device
        ) as engine:
            reload_s = time.perf_counter() - start
            request = ExportRequest(backend="onnxruntime", mode="medium", roles=("detector",), out=root / "gate",
                                    weights="standin")  # fmt: skip
            role_frames = gate_frames(request)["detector"]  # the frames every export's gate uses
            ref, got = role_frames.run(ort_session.run, engine.run)
        metrics = measure("detector", ref, got, role_frames.decode_boxes(ref, got))
        assert metrics["box_recall"] >= 0.9, f"box recall {metrics['box_recall']:.3f} vs ORT on the same graph"
        return (
            f"box recall {metrics['box_recall']:.3f}, IoU {metrics['box_iou']:.3f} vs ORT on the same FP16 graph; "
            f"reload from the engine cache {reload_s:.1f} s"
        )

    check("1 small fp16 export (3 engines, gates through TensorRT)", fp16_small)
    if "small-fp16" in bundles:
        check("2 pose batch below MIN (1 < 2) and above MAX (9 > 8)", batch_bounds)
        check("3 Pipeline.from_bundle: three TensorRT sessions in one process", pipeline)
    if not args.quick:
        check("4 small fp32 export", fp32_small)
    check("5 small int8 --onnx-only (trained stand-ins, synthetic calibration), built on first use", int8_small)
    if not args.quick:
        check("6 rfdetr-n fp16 detector", rfdetr)
        check("7 yolox-m fp16 --onnx-only: TopK cap, NMS allocator, corrupt timing cache, engine cache", yolox_m)

    failed = [name for name, ok, _, _ in results if not ok]
    total = sum(seconds for *_, seconds in results)
    verdict = "FAIL" if failed else "PASS"
    print(f"{verdict}: {len(results) - len(failed)}/{len(results)} checks passed in {total:.0f} s; bundles in {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

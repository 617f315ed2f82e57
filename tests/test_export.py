"""Export bundles: passes, backends, fidelity recorded, atomic writes, tamper detection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from spinepose_deploy import backends
from spinepose_deploy.bundle.bundle import Bundle
from spinepose_deploy.cli import main
from spinepose_deploy.errors import BundleError, ExportError, InvalidOptionError
from spinepose_deploy.export import exporter, frames, passes
from spinepose_deploy.export.base import BatchRange
from spinepose_deploy.export.exporter import ExportRequest, export_bundle

ORT_OV = [("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("openvino", "fp32"), ("openvino", "fp16")]


@pytest.fixture(scope="module")
def small_bundles(tmp_path_factory, standin_paths) -> dict[tuple[str, str], Bundle]:
    root = tmp_path_factory.mktemp("bundles")
    return {
        (backend, precision): export_bundle(
            ExportRequest(backend=backend, precision=precision, out=root / f"{backend}-{precision}", weights="standin")
        )
        for backend, precision in ORT_OV
    }


@pytest.mark.parametrize("key", ORT_OV, ids=lambda k: "-".join(k) if isinstance(k, tuple) else k)
def test_small_bundle_matches_fp32_reference_within_recorded_tolerance(small_bundles, standin_paths, key, tmp_path):
    bundle = small_bundles[key]
    assert bundle.standin and bundle.backend == key[0] and bundle.precision == key[1]
    assert set(bundle.roles) == {"detector", "pose", "lifter"}
    gate = exporter.gate_frames(ExportRequest(backend=key[0], precision=key[1], out=tmp_path, weights="standin"))
    feeds = gate["pose"].first_feeds()
    reference = onnx.load(str(standin_paths["pose-s-v2"]))
    recorded = bundle.graph("pose")["fidelity"]
    assert recorded["frames_sha256"] == gate["pose"].sha256()  # the manifest names the frames it was gated on
    assert recorded["gate"]["passed"], recorded
    with backends.load(bundle.artifact("pose"), backend=bundle.backend, precision=bundle.precision) as session:
        got = session.run(feeds)
    expected = passes.run_onnx(reference, feeds)
    deviation = passes.compare(expected, got)
    for name, value in deviation.max_abs.items():  # reloading reproduces what the manifest recorded
        assert value <= recorded["max_abs"][name] * 1.01 + 1e-6
    agreement = np.mean(
        (expected["simcc_x"].argmax(-1) == got["simcc_x"].argmax(-1))
        & (expected["simcc_y"].argmax(-1) == got["simcc_y"].argmax(-1))
    )
    assert agreement >= 0.9 if key[1] == "fp16" else agreement == 1.0
    lifter = bundle.graph("lifter")["fidelity"]
    assert lifter["mpjpe_mm"] < (0.01 if key[1] == "fp32" else 5.0)


def test_fp32_pose_bundle_has_dynamic_batch(small_bundles):
    bundle = small_bundles[("onnxruntime", "fp32")]
    with backends.load(bundle.artifact("pose")) as session:
        assert session.inputs[0].static_batch is None
        out = session.run({"input": np.zeros((5, 3, 256, 192), np.float32)})
        assert out["simcc_x"].shape == (5, 37, 384)


def test_manifest_records_sources_hashes_and_preprocessing(small_bundles):
    manifest = small_bundles[("openvino", "fp16")].manifest
    pose = manifest["graphs"]["pose"]
    assert manifest["standin"] is True and manifest["backend_version"]
    assert set(pose["files"]) == {"pose.xml", "pose.bin"} and all(len(h) == 64 for h in pose["files"].values())
    assert pose["preprocess"]["input_size"] == [256, 192] and pose["preprocess"]["color"] == "rgb"
    assert len(pose["source_sha256"]) == 64 and "simplify" in pose["passes"]


def test_tampered_artifact_is_refused_naming_the_file(small_bundles, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(small_bundles[("onnxruntime", "fp32")].path, copy)
    artifact = copy / "lifter.onnx"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"lifter\.onnx: sha256 .* differs from the manifest"):
        Bundle.load(copy)


def test_existing_non_empty_out_is_refused_without_force(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(InvalidOptionError, match="not empty; use --force"):
        export_bundle(ExportRequest(backend="onnxruntime", out=out, weights="standin"))
    assert (out / "keep.txt").read_text() == "user data"


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, ExportError])
def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch, standin_paths, interrupt):
    calls = {"n": 0}
    real = exporter._write_artifact

    def fail_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise interrupt("stop half way")
        return real(*args, **kwargs)

    monkeypatch.setattr(exporter, "_write_artifact", fail_second)
    with pytest.raises(interrupt):
        export_bundle(ExportRequest(backend="onnxruntime", out=tmp_path / "bundle", weights="standin"))
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_only_after_success(tmp_path, monkeypatch, standin_paths):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "old.txt").write_text("old")
    monkeypatch.setattr(exporter, "_write_artifact", lambda *a, **k: (_ for _ in ()).throw(ExportError("x")))
    with pytest.raises(ExportError):
        export_bundle(ExportRequest(backend="onnxruntime", out=out, weights="standin", force=True))
    assert (out / "old.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_option_combinations_checked_up_front(tmp_path):
    with pytest.raises(InvalidOptionError, match="--precision: 'int4' is not available for --backend openvino"):
        ExportRequest(backend="openvino", precision="int4", out=tmp_path / "x").validate()
    with pytest.raises(InvalidOptionError, match="--backend: 'openvion' is not one of .*Did you mean 'openvino'"):
        ExportRequest(backend="openvion", out=tmp_path / "x").validate()
    with pytest.raises(InvalidOptionError, match="--batch: '4:2:8'"):
        BatchRange.parse("4:2:8")
    assert BatchRange.parse("1:4:16") == BatchRange(1, 4, 16) and BatchRange.parse("8").static


def test_fp16_pass_keeps_io_float32_and_blocked_ops(standin_paths):
    model = passes.simplify(onnx.load(str(standin_paths["pose-s-v2"])))
    half = passes.to_fp16(model)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {o.type.tensor_type.elem_type for o in half.graph.output} == {onnx.TensorProto.FLOAT}
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)


def test_dynamic_batch_pass_on_static_graph(tmp_path):
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], np.arange(6, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert not passes.has_dynamic_batch(model)
    dynamic = passes.make_batch_dynamic(model)
    assert passes.has_dynamic_batch(dynamic)
    out = passes.run_onnx(dynamic, {"x": np.ones((4, 2), np.float32)})
    assert out["y"].shape == (4, 3)


def test_cli_export_json(tmp_path, capsys, standin_paths):
    code = main(
        ["export", "--backend", "onnxruntime", "--out", str(tmp_path / "b"), "--weights", "standin", "--json"]
    )
    assert code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["graphs"]["pose"]["fidelity"]["gate"]["passed"]
    assert (tmp_path / "b" / "manifest.json").is_file() and not list(tmp_path.glob(".*partial"))


def test_progress_events_count_every_step_of_the_export(tmp_path, standin_paths):
    events = []
    export_bundle(
        ExportRequest(backend="onnxruntime", out=tmp_path / "b", weights="standin", roles=("lifter",)),
        progress=events.append,
    )
    steps = [e for e in events if e.kind == "step"]
    # three source graphs (detector and pose make the lifter's feeds), then passes, artifact, fidelity
    assert [e.step for e in steps] == list(range(1, 7)) and {e.total for e in events} == {6}
    assert [e.message for e in steps[3:]] == ["lifter: passes", "lifter: writing onnxruntime fp32 artifact",
                                              "lifter: fidelity vs FP32"]  # fmt: skip


def test_cli_export_bad_option_is_one_line(tmp_path, capsys):
    assert main(["export", "--backend", "onnxruntime", "--precision", "fp8", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --precision: 'fp8'") and "\n" not in err


@pytest.mark.slow
@pytest.mark.parametrize("key", ORT_OV, ids=lambda k: "-".join(k) if isinstance(k, tuple) else k)
def test_medium_bundles_export_and_pass(tmp_path, key):
    bundle = export_bundle(
        ExportRequest(backend=key[0], precision=key[1], mode="medium", out=tmp_path / "b", weights="standin")
    )
    for role in bundle.roles:
        fidelity = bundle.graph(role)["fidelity"]
        if role == "detector" and key[1] == "fp16":
            # Random YOLOX-m weights amplify FP16 rounding with depth (median relative error 4e-4 in the backbone,
            # 7e-3 in the neck, scores up to 25 % off on the gate's photos: box recall 0.45 on ORT), which trained
            # weights do not (the trained detector's FP16 is held to the gate in test_trained_accuracy). What must
            # hold here: the gate measured the boxes and its verdict is in the bundle for the report to show.
            assert "box_recall" in fidelity and fidelity["gate"]["passed"] == (
                fidelity["box_recall"] >= fidelity["gate"]["thresholds"]["detector_recall"]
                and fidelity["box_iou"] >= fidelity["gate"]["thresholds"]["detector_iou"]
            ), fidelity
            continue
        assert fidelity["gate"]["passed"], (role, fidelity)


def test_reference_frames_are_real_crops(standin_paths, tmp_path):
    gate = exporter.gate_frames(ExportRequest(backend="onnxruntime", out=tmp_path, weights="standin"))
    batch = gate["pose"].first_feeds()["input"]
    assert batch.shape[1:] == (3, 256, 192) and len(batch) >= 2
    assert 0.3 < batch.std() < 3.0  # normalised photo crops, not constant padding
    # two packaged photos, mirrored (held out from INT8 calibration) plus a varied copy of each: 4 frames;
    # the random detector's boxes topped up with fixed ones: at least 2 people per frame (the old FP16 coverage)
    assert len(gate["detector"].feeds) == len(gate["detector"].meta) == 4  # one letterboxed frame each
    assert gate["pose"].count >= 8 and gate["lifter"].count == gate["pose"].count
    assert Path(frames.default_image_dir()).is_dir()


def _coreml_bundle_checks(bundle: Bundle) -> None:
    for role in bundle.roles:
        graph = bundle.graph(role)
        assert graph["artifact"].endswith(".mlpackage") and graph["fidelity"]["measured"] is False
        assert "macOS" in graph["fidelity"]["reason"]
        session = backends.load(bundle.artifact(role), backend="coreml", validate_only=True)
        assert [o.name for o in session.outputs] == [o["name"] for o in graph["extra"]["outputs"]]
        if role in ("pose", "lifter"):
            assert session.inputs[0].static_batch is None  # flexible batch (RangeDim)


def test_coreml_lifter_bundle_is_a_valid_flexible_batch_package(tmp_path, standin_paths):
    pytest.importorskip("coremltools")
    bundle = export_bundle(
        ExportRequest(backend="coreml", precision="fp16", out=tmp_path / "b", weights="standin", roles=("lifter",))
    )
    _coreml_bundle_checks(bundle)
    assert bundle.graph("lifter")["extra"]["compute_precision"].lower().endswith("16")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["small", "medium"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_coreml_bundles_convert_on_linux(tmp_path, mode, precision):
    pytest.importorskip("coremltools")
    bundle = export_bundle(
        ExportRequest(backend="coreml", precision=precision, mode=mode, out=tmp_path / "b", weights="standin")
    )
    _coreml_bundle_checks(bundle)
    assert bundle.graph("detector")["extra"]["host_nms"] is True


def test_bundle_table_fits_80_columns_with_the_gate_numbers(small_bundles):
    import os

    from rich.console import Console

    from spinepose_deploy.cli.tables import bundle_table

    bundle = small_bundles[("openvino", "fp16")]
    with open(os.devnull, "w") as sink:
        narrow, wide = Console(width=80, record=True, file=sink), Console(width=160, record=True, file=sink)
        narrow.print(bundle_table(bundle, narrow))
        wide.print(bundle_table(bundle, wide))
    lines = narrow.export_text().splitlines()
    assert max(map(len, lines)) <= 80
    text = " ".join(lines)
    pose = bundle.graph("pose")["fidelity"]
    assert f"p95 {pose['kpt_px_p95']:.1f}px" in text
    for failure in pose["gate"]["failures"]:  # this CPU computes FP16 for real: the pose stand-in fails here
        value, limit = re.findall(r"\d+\.\d+|\d+", failure)[-2:]
        assert f"{value}px>{limit}" in text or f"{value}<{limit}" in text, (failure, lines)
    assert f"recall {bundle.graph('detector')['fidelity']['box_recall']:.2f}" in text
    assert "artifact" in wide.export_text() and "artifact" not in narrow.export_text()


def _openvino_cpu_runs(precision: str) -> bool:
    return any(
        c.ok and c.backend == "openvino" and c.device == "cpu" and c.precision == precision
        for c in backends.capabilities()
    )


@pytest.mark.parametrize("precision", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_openvino_native_low_precision_bundle_passes_the_gate(tmp_path, precision, monkeypatch):
    # weights auto on a fresh offline machine: the trained stand-ins (random-weight detectors have flat scores,
    # so NMS order flips under any rounding and a reduced precision could never pass)
    if not _openvino_cpu_runs(precision):
        pytest.skip(f"this CPU has no native {precision} in OpenVINO (OPTIMIZATION_CAPABILITIES)")
    monkeypatch.setenv("SPINEPOSE_DEPLOY_OFFLINE", "1")
    bundle = export_bundle(ExportRequest(backend="openvino", precision=precision, out=tmp_path / "b"))
    assert bundle.standin and bundle.graph("pose")["model"] == "pose-s-v2"
    for role in bundle.roles:
        fidelity = bundle.graph(role)["fidelity"]
        assert fidelity["gate"]["passed"], (role, fidelity)
        assert fidelity["measured_on"].endswith(precision)  # the compiled model reports it computes that
    assert bundle.graph("pose")["extra"]["inference_precision"] == {"bf16": "bf16", "fp16": "f16"}[precision]
    assert bundle.graph("pose")["fidelity"]["max_abs"]["simcc_x"] > 0  # really lowered, not FP32


def test_bf16_is_refused_in_one_line_for_a_backend_without_it(tmp_path):
    with pytest.raises(InvalidOptionError, match="--precision: 'bf16' is not available for --backend onnxruntime"):
        ExportRequest(backend="onnxruntime", precision="bf16", out=tmp_path / "x").validate()

"""TensorRT on a machine without TensorRT: its ONNX rules checked statically, and ``export --onnx-only``.

Nothing here runs TensorRT (no mocks of it either): the rules check reads the ONNX graphs the TensorRT writer
would hand to ``trt.OnnxParser``; engine builds and numerics on a GPU are ``benchmarks/check_tensorrt.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from _trt_rule_examples import examples
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy import backends
from spinepose_deploy.backends import tensorrt_build, tensorrt_rules
from spinepose_deploy.backends.base import Session, TensorInfo
from spinepose_deploy.cli import main
from spinepose_deploy.errors import BackendUnavailableError, ExportError, InvalidOptionError
from spinepose_deploy.export import calibration, passes, quantize
from spinepose_deploy.export.base import BatchRange
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.export.tensorrt import write_onnx
from spinepose_deploy.zoo.specs import get_spec, resolve_mode
from spinepose_deploy.zoo.standins import build_standin
from spinepose_deploy.zoo.standins.yolox import add_nms


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def _raw_detector(anchors: int) -> onnx.ModelProto:
    """image (1,3,8,8) -> raw boxes (1,A,4) and scores (1,A,1) from a fixed random projection."""
    rng = np.random.default_rng(0)
    consts = {
        "wb": rng.uniform(0, 50, (192, anchors * 4)).astype(np.float32),
        "ws": rng.normal(0, 1, (192, anchors)).astype(np.float32),
        "flat": np.array([1, 192], np.int64),
        "sb": np.array([1, anchors, 4], np.int64),
        "ss": np.array([1, anchors, 1], np.int64),
    }
    nodes = [
        helper.make_node("Reshape", ["image", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "wb"], ["b"]),
        helper.make_node("Reshape", ["b", "sb"], ["boxes"]),
        helper.make_node("MatMul", ["f", "ws"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["s1"]),
        helper.make_node("Reshape", ["s1", "ss"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "raw",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, anchors, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, anchors, 1]),
        ],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _single(op: str, inputs: list, outputs: list, initializers=(), **attrs) -> onnx.ModelProto:
    node = helper.make_node(
        op,
        [i.name for i in inputs if i is not None] + [t.name for t in initializers],
        [o.name for o in outputs],
        name=f"the_{op.lower()}",
        **attrs,
    )
    graph = helper.make_graph([node], op, [i for i in inputs if i is not None], list(outputs), list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# -------------------------------------------------------------------------------------- the rules


def test_topk_above_3840_is_one_line_naming_node_and_rule_and_the_cap_keeps_outputs():
    # 640-input YOLOX: 8400 anchors, mmdeploy's pre top-k of 5000 before NMS
    model = add_nms(_raw_detector(8400), 8400)
    report = tensorrt_rules.check(model, "yolox-640")
    assert not report.ok
    line = report.first_error()
    assert "\n" not in line
    assert line == "yolox-640: node 'pre_val' (TopK): TensorRT rule topk-k: K can be 5000; TensorRT allows K <= 3840"
    capped, changes = tensorrt_rules.cap_topk(model)
    assert tensorrt_rules.check(capped).ok and len(changes) == 1
    # the NMS tail's own TopK, K = min(selected, 100), is provably small and stays as it was
    assert [n.input[1] for n in capped.graph.node if n.op_type == "TopK"][1] == "keep_k"
    feeds = {"image": np.random.default_rng(1).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)}
    ref, got = passes.run_onnx(model, feeds), passes.run_onnx(capped, feeds)
    assert ref["dets"].shape[1] > 0  # detections exist, and are the same after the cap
    np.testing.assert_array_equal(ref["dets"], got["dets"])
    # at 416 (3549 anchors) there is no pre top-k at all
    assert tensorrt_rules.check(add_nms(_raw_detector(3549), 3549)).ok


def test_topk_k_computed_like_mmdeploy_is_bounded_through_shape_and_min():
    # mmdeploy's topk rewriter: k = min(pre_top_k, scores.shape[1]), computed in the graph
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8400])
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["n"], axis=0),
        helper.make_node("Min", ["n", "pre"], ["k"]),
        helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, name="pre_topk"),
    ]
    inits = [numpy_helper.from_array(np.array([1], np.int64), "one"), numpy_helper.from_array(np.array([5000]), "pre")]
    out = [helper.make_tensor_value_info("v", TensorProto.FLOAT, None)]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], out, inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    assert "node 'pre_topk' (TopK): TensorRT rule topk-k: K can be 5000" in tensorrt_rules.check(model).first_error()
    capped, _ = tensorrt_rules.cap_topk(model)
    assert tensorrt_rules.check(capped).ok
    feeds = {"x": np.random.default_rng(0).normal(size=(1, 8400)).astype(np.float32)}
    assert passes.run_onnx(capped, feeds)["v"].shape == (1, 3840)


def test_int32_and_uint8_dequantize_are_refused_and_the_tensorrt_scheme_has_none(tmp_path, standin_paths):
    lifter = standin_paths["lifter"]
    rng = np.random.default_rng(0)
    items = ({"lifter": {"input": rng.uniform(-1, 1, (4, 37, 2)).astype(np.float32)}} for _ in range(8))
    feeds = calibration.spool(items, {"lifter": tmp_path / "calib"})["lifter"]
    lines = {}
    for name in ("tensorrt", "cpu"):
        qdq = quantize.quantize_qdq(
            lifter, tmp_path / f"{name}.onnx", feeds=feeds, method="minmax", scheme=quantize.SCHEMES[name]
        )
        graph = onnx.load(str(qdq)).graph
        kinds = {i.name: i.data_type for i in graph.initializer}
        dq_types = {kinds.get(n.input[0]) for n in graph.node if n.op_type == "DequantizeLinear"}
        lines[name] = (dq_types, tensorrt_rules.check(onnx.load(str(qdq)), name))
    dq_types, report = lines["tensorrt"]
    assert TensorProto.INT32 not in dq_types and TensorProto.INT8 in dq_types
    assert report.ok, report.first_error()
    # ORT/OpenVINO's scheme keeps int32 biases and u8 activations: exactly what TensorRT would refuse
    dq_types, report = lines["cpu"]
    assert TensorProto.INT32 in dq_types
    rules = {f.rule for f in report.errors}
    assert rules == {"dq-type"}
    assert any("is INT32; TensorRT dequantizes only INT8, FP8 and INT4" in f.message for f in report.errors)
    assert any("uint8 zero point" in f.message for f in report.errors)


@pytest.mark.parametrize("rule", sorted(set(examples()) - {"no-kernel"}))
def test_rule_violations_name_node_and_rule(rule):
    """Each rule's example graph (the same ones the real builder refuses in test_tensorrt_rtx.py)."""
    report = tensorrt_rules.check(examples()[rule], "g")
    assert [f.rule for f in report.errors] == [rule], report.first_error()
    assert report.first_error().startswith("g: node '") and f"TensorRT rule {rule}: " in report.first_error()


def test_rules_the_builder_does_not_enforce_are_notes():
    """sorted=0 TopK, cubic Resize and opsets outside 9..20: the TensorRT-RTX 1.7 builder builds them."""
    k = [numpy_helper.from_array(np.array([5], np.int64), "k")]
    topk = _single(
        "TopK",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 50])],
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("i", TensorProto.INT64, None)],
        k,
        sorted=0,
    )  # fmt: skip
    report = tensorrt_rules.check(topk, "g")
    assert report.ok and [f.rule for f in report.notes] == ["topk-sorted"]
    old = onnx.helper.make_model(topk.graph, opset_imports=[helper.make_opsetid("", 8)])
    assert tensorrt_rules.check(old).ok and "opset" in {f.rule for f in tensorrt_rules.check(old).notes}


def _rules_fp16_and_int8(graphs: dict[str, Path], tmp_path: Path) -> None:
    """What the TensorRT exporter hands the parser, FP16 and INT8 (QDQ, TensorRT scheme), passes the rules."""
    rng = np.random.default_rng(0)
    for name, path in graphs.items():
        model, _ = tensorrt_rules.cap_topk(passes.simplify(onnx.load(str(path))))
        report = tensorrt_rules.check(passes.to_fp16(model), f"{name} fp16")
        assert report.ok, report.first_error()
        shape = [d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim]
        items = ({name: {model.graph.input[0].name: rng.uniform(0, 1, shape).astype(np.float32)}} for _ in range(2))
        feeds = calibration.spool(items, {name: tmp_path / name})[name]
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        qdq = quantize.quantize_qdq(
            tmp_path / f"{name}.onnx",
            tmp_path / f"{name}.qdq.onnx",
            feeds=feeds,
            method="minmax",
            scheme=quantize.SCHEMES["tensorrt"],
            exclude=quantize.float_tail(tmp_path / f"{name}.onnx"),
        )
        fixed, _ = tensorrt_rules.fix_scalar_dq(onnx.load(str(qdq)))  # what the TensorRT writers hand the builder
        report = tensorrt_rules.check(fixed, f"{name} int8")
        assert report.ok, report.first_error()
        assert quantize.count_quantized(qdq)["dequantize_linear"] > 0


def test_small_mode_graphs_pass_the_rules_in_fp16_and_int8(tmp_path, standin_paths):
    """Every small-mode graph the TensorRT writer gets (YOLOX-tiny, RF-DETR-n, pose-s, lifter): FP16 and INT8."""
    _rules_fp16_and_int8({**standin_paths, "rfdetr-n": build_standin("rfdetr-n")}, tmp_path)
    # the YOLOX NMS is recorded as a data-dependent output (the backend's output allocator sizes it)
    report = tensorrt_rules.check(onnx.load(str(standin_paths["yolox-tiny"])))
    assert [f.rule for f in report.notes if f.op == "NonMaxSuppression"] == ["data-dependent"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["medium", "large", "xlarge"])
def test_other_modes_graphs_pass_the_rules_in_fp16_and_int8(tmp_path, mode):
    names = set()
    for detector in ("yolox", "rfdetr"):
        selection = resolve_mode(mode, detector, "v1" if mode == "xlarge" else "v2")
        names |= {spec.name for spec in selection.graphs().values()}
    _rules_fp16_and_int8({name: build_standin(name) for name in sorted(names)}, tmp_path)


def test_symmetric_histogram_calibration_of_a_detector_with_nms(tmp_path, standin_paths):
    """TensorRT's scheme with percentile: the NMS outputs change size per frame and are not calibrated
    (ORT's symmetric histogram collector stacked them and crashed)."""
    from spinepose_deploy.export import frames
    from spinepose_deploy.ops.detector import letterbox

    model = standin_paths["yolox-tiny"]
    raw = [{"input": letterbox(image, (416, 416))[0].transpose(2, 0, 1)[None].astype(np.float32)}
           for image in frames.load_images(limit=4)]  # fmt: skip
    counts = {passes.run_onnx(onnx.load(str(model)), feed)["dets"].shape[1] for feed in raw}
    assert len(counts) > 1  # ragged NMS outputs, the case that crashed
    feeds = calibration.spool(({"detector": f} for f in raw), {"detector": tmp_path / "calib"})["detector"]
    cache = quantize.calibrate(model, feeds, "percentile", quantize.SCHEMES["tensorrt"], tmp_path / "ranges")
    assert cache is not None and cache.exists()


def test_write_onnx_refuses_a_graph_tensorrt_cannot_parse_in_one_line(tmp_path):
    bad = _single(
        "Unique",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    with pytest.raises(ExportError, match=r"node 'the_unique' \(Unique\): TensorRT rule unsupported-op") as exc:
        write_onnx(tmp_path / "bad.onnx", tmp_path, spec=get_spec("lifter"), precision="fp16", batch=BatchRange())
    _one_line(exc)
    assert not (tmp_path / "lifter.onnx").exists()


# -------------------------------------------------------------------------------------- batch < MIN


class _Recording(Session):
    """A dynamic-batch session that records the batch sizes it was run with (base-class batching only)."""

    backend = "test"

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.inputs = [TensorInfo("x", ("batch", 2))]
        self.outputs = [TensorInfo("y", ("batch", 2))]
        self.min_batch, self.max_batch, self.seen = low, high, []

    def _run(self, feeds):
        self.seen.append(len(feeds["x"]))
        assert self.min_batch <= len(feeds["x"]) <= self.max_batch
        return {"y": feeds["x"] * 2}


def test_batch_below_profile_min_is_padded_and_trimmed_above_max_chunked():
    session = _Recording(4, 8)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(session.run({"x": x})["y"], x * 2)
    big = np.arange(22, dtype=np.float32).reshape(11, 2)
    np.testing.assert_array_equal(session.run({"x": big})["y"], big * 2)
    assert session.seen == [4, 8, 8]  # 3 padded to 4; 11 = 8 + 3 padded to 8


# -------------------------------------------------------------------------------------- --onnx-only


@pytest.fixture(scope="module")
def onnx_only_fp16(tmp_path_factory, standin_paths) -> Path:
    out = tmp_path_factory.mktemp("trt") / "bundle"
    export_bundle(ExportRequest(backend="tensorrt", precision="fp16", out=out, weights="standin", onnx_only=True))
    return out


def test_onnx_only_bundle_holds_the_graphs_profiles_and_trtexec_lines(onnx_only_fp16):
    manifest = json.loads((onnx_only_fp16 / "manifest.json").read_text())
    assert manifest["onnx_only"] is True and manifest["backend"] == "tensorrt"
    for role in ("detector", "pose", "lifter"):
        entry = manifest["graphs"][role]
        assert entry["artifact"] == f"{role}.onnx" and not (onnx_only_fp16 / f"{role}.engine").exists()
        extra = entry["extra"]
        assert extra["rules"]["passed"] and extra["typing"].startswith("strongly typed")
        model = onnx.load(str(onnx_only_fp16 / entry["artifact"]))
        assert tensorrt_rules.check(model).ok
        # what the engine builder parses: the FP16 graph (fp16 initializers), the profile in its metadata
        assert any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
        assert tensorrt_build.onnx_profile(onnx_only_fp16 / entry["artifact"]) == (1, 1, 16)
        assert extra["trtexec"].startswith(f"trtexec --onnx={role}.onnx --saveEngine={role}.engine --stronglyTyped")
        # measured: the same graph run node by node in ONNX Runtime (no TensorRT here), and said so
        assert "not TensorRT's kernels" in entry["fidelity"]["measured_on"]
        assert entry["fidelity"]["gate"]["passed"]
    pose = manifest["graphs"]["pose"]["extra"]["trtexec"]
    assert "--minShapes=input:1x3x256x192 --optShapes=input:1x3x256x192 --maxShapes=input:16x3x256x192" in pose
    assert "--minShapes" not in manifest["graphs"]["detector"]["extra"]["trtexec"]  # static batch 1


def test_onnx_only_bundle_on_a_host_without_tensorrt_says_what_is_missing(onnx_only_fp16):
    from spinepose_deploy import Pipeline

    if backends.get_backend("tensorrt").availability().ok:
        pytest.skip("TensorRT runs here: the bundle builds its engines (benchmarks/check_tensorrt.py)")
    with pytest.raises(
        BackendUnavailableError, match=r"backend 'tensorrt' is not available: needs the tensorrt"
    ) as exc:
        Pipeline.from_bundle(onnx_only_fp16, backend="tensorrt")
    _one_line(exc)


def test_engine_export_without_tensorrt_is_refused_up_front_pointing_to_onnx_only(tmp_path):
    if backends.get_backend("tensorrt").availability().ok:
        pytest.skip("TensorRT runs here: engines are built (benchmarks/check_tensorrt.py)")
    request = ExportRequest(backend="tensorrt", precision="fp16", out=tmp_path / "b", roles=("lifter",))
    expected = r"--backend tensorrt: .*needs the tensorrt.*add --onnx-only"
    with pytest.raises(BackendUnavailableError, match=expected) as exc:
        export_bundle(request)
    _one_line(exc)
    assert not (tmp_path / "b").exists()


def test_onnx_only_is_refused_for_other_backends(tmp_path, capsys):
    with pytest.raises(InvalidOptionError, match=r"--onnx-only: only for --backend tensorrt"):
        ExportRequest(backend="openvino", out=tmp_path / "b", onnx_only=True).validate()
    assert main(["export", "--backend", "coreml", "--onnx-only", "--out", str(tmp_path / "c")]) != 0
    assert "--onnx-only: only for --backend tensorrt" in capsys.readouterr().err


@pytest.mark.slow
def test_onnx_only_int8_small_trained_with_synthetic_calibration(tmp_path):
    out = tmp_path / "int8"
    bundle = export_bundle(
        ExportRequest(
            backend="tensorrt", precision="int8", out=out, weights="trained", onnx_only=True
        )  # no --calib-method: TensorRT's default (percentile) passes the gate, minmax and entropy did not
    )
    for role in bundle.roles:
        graph = bundle.graph(role)
        model = onnx.load(str(bundle.artifact(role)))
        assert tensorrt_rules.check(model).ok
        assert graph["precision"] == "int8", f"{role}: {graph['int8']['kept']}"  # measured: all three pass
        if graph["precision"] == "int8":
            kinds = {i.name: i.data_type for i in model.graph.initializer}
            dq = [kinds.get(n.input[0]) for n in model.graph.node if n.op_type == "DequantizeLinear"]
            assert dq and TensorProto.INT32 not in dq
            assert graph["calibration"]["scheme"]["bias"] == "float (not quantized)"


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "detector"), [("medium", "yolox"), ("medium", "rfdetr"), ("large", "yolox")])
def test_onnx_only_fp16_other_modes(tmp_path, mode, detector):
    bundle = export_bundle(
        ExportRequest(
            backend="tensorrt",
            precision="fp16",
            mode=mode,
            detector=detector,
            out=tmp_path / "b",
            weights="standin",
            onnx_only=True,
        )
    )
    for role in bundle.roles:
        assert tensorrt_rules.check(onnx.load(str(bundle.artifact(role)))).ok
    if detector == "yolox":  # 640 input: the pre-NMS top-k of 5000 was capped for TensorRT
        assert any("K capped at 3840" in note for note in bundle.graph("detector")["notes"])

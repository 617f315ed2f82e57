"""Core ML export: the ONNX sanitising passes (tiny onnx.helper graphs, checked in ONNX Runtime) and the
``.mlpackage`` writer (tiny torch graph, then the small-mode stand-ins). Prediction needs macOS, so on
other hosts the tests check the saved spec: names, batch range, precision."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy.errors import BackendUnavailableError, ExportError, InvalidOptionError, ModelLoadError
from spinepose_deploy.export import sanitize
from spinepose_deploy.export.base import BatchRange
from spinepose_deploy.export.passes import run_onnx
from spinepose_deploy.zoo.specs import get_spec

FLOAT = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def const(name: str, value, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def assert_same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, feeds: dict, atol: float = 1e-6) -> None:
    """Both graphs give the same outputs (by name) in ONNX Runtime."""
    ra, rb = run_onnx(a, feeds), run_onnx(b, feeds)
    assert list(ra) == list(rb)
    for name in ra:
        np.testing.assert_allclose(ra[name], rb[name], atol=atol, err_msg=name)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- sanitising passes


def test_constants_become_initializers_except_graph_outputs():
    model = make_model(
        [
            helper.make_node("Constant", [], ["lo"], value=const("v", -0.5)),
            helper.make_node("Constant", [], ["hi"], value_float=0.5),
            helper.make_node("Constant", [], ["scale"], value_floats=[1.0, 2.0, 3.0, 4.0]),
            helper.make_node("Constant", [], ["k"], value_ints=[7]),
            helper.make_node("Mul", ["x", "scale"], ["m"]),
            helper.make_node("Clip", ["m", "lo", "hi"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", FLOAT, ["n", 4])],
        [
            helper.make_tensor_value_info("y", FLOAT, ["n", 4]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
    )
    out = sanitize.constants_to_initializers(model)
    assert [n.op_type for n in out.graph.node] == ["Constant", "Mul", "Clip"]  # 'k' is a graph output
    assert {t.name for t in out.graph.initializer} == {"lo", "hi", "scale"}
    assert [n.op_type for n in model.graph.node].count("Constant") == 4  # the input is not modified
    assert_same_outputs(model, out, {"x": rand(3, 4) * 3})


def test_empty_optional_inputs_dropped_and_clip_min_filled():
    model = make_model(
        [
            helper.make_node("Clip", ["x", "lo", ""], ["a"]),
            helper.make_node("Clip", ["a", "", "hi"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", FLOAT, ["n", 4])],
        [const("lo", -0.5), const("hi", 0.25)],
    )
    out = sanitize.drop_empty_optional_inputs(model)
    first, second = out.graph.node
    assert list(first.input) == ["x", "lo"]
    assert "" not in second.input and len(second.input) == 3
    lowest = numpy_helper.to_array(next(t for t in out.graph.initializer if t.name == second.input[1]))
    assert lowest == np.finfo(np.float32).min
    assert_same_outputs(model, out, {"x": rand(5, 4) * 3})


def test_identities_resolved_but_output_identity_kept():
    weight = const("W", rand(4, 4, seed=1))
    model = make_model(
        [
            helper.make_node("Identity", ["W"], ["W1"]),
            helper.make_node("Identity", ["W1"], ["W2"]),  # a chain resolves to the initializer
            helper.make_node("MatMul", ["x", "W1"], ["a"]),
            helper.make_node("MatMul", ["a", "W2"], ["b"]),
            helper.make_node("Identity", ["b"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", FLOAT, ["n", 4])],
        [weight],
    )
    out = sanitize.resolve_identities(model)
    assert [(n.op_type, list(n.input)) for n in out.graph.node] == [
        ("MatMul", ["x", "W"]),
        ("MatMul", ["a", "W"]),
        ("Identity", ["b"]),
    ]
    assert_same_outputs(model, out, {"x": rand(2, 4)})


def nms_model(*, transpose: bool = True, final_name: str = "selected") -> onnx.ModelProto:
    """raw (1,6,4) + logits (1,6,2) -> [Transpose] -> NonMaxSuppression -> (M, 3) indices."""
    nodes = [
        helper.make_node("Add", ["raw", "offset"], ["b"]),
        helper.make_node("Sigmoid", ["logits"], ["s"]),
    ]
    if transpose:
        nodes.append(helper.make_node("Transpose", ["s"], ["st"], perm=[0, 2, 1]))
        scores_in, logits_shape = "st", [1, 6, 2]
    else:  # scores already (B, C, A): the pass must add the transpose itself
        nodes[1] = helper.make_node("Sigmoid", ["logits"], ["st"])
        scores_in, logits_shape = "st", [1, 2, 6]
    nodes.append(
        helper.make_node("NonMaxSuppression", ["b", scores_in, "max_k", "iou", "thr"], [final_name], center_point_box=0)
    )
    return make_model(
        nodes,
        [
            helper.make_tensor_value_info("raw", FLOAT, [1, 6, 4]),
            helper.make_tensor_value_info("logits", FLOAT, logits_shape),
        ],
        [helper.make_tensor_value_info(final_name, TensorProto.INT64, ["m", 3])],
        [const("offset", 1.0), const("max_k", [3], np.int64), const("iou", [0.5]), const("thr", [0.1])],
    )


def nms_feeds(logits_shape) -> dict:
    raw = np.abs(rand(1, 6, 4)) * 10
    raw[..., 2:] += raw[..., :2]  # valid x1 < x2, y1 < y2
    return {"raw": raw, "logits": rand(*logits_shape, seed=3)}


@pytest.mark.parametrize("final_name", ["selected", "scores"])  # 'scores' must be freed for the new output
def test_strip_nms_exposes_what_fed_it(final_name):
    model = nms_model(final_name=final_name)
    out = sanitize.strip_nms(model)
    assert [o.name for o in out.graph.output] == ["boxes", "scores"]
    assert "NonMaxSuppression" not in {n.op_type for n in out.graph.node}
    assert "Transpose" not in {n.op_type for n in out.graph.node}  # the feeding transpose was skipped
    feeds = nms_feeds([1, 6, 2])
    got = run_onnx(out, feeds)
    np.testing.assert_allclose(got["boxes"], feeds["raw"] + 1.0, rtol=1e-6)
    np.testing.assert_allclose(got["scores"], 1 / (1 + np.exp(-feeds["logits"])), rtol=1e-6)
    assert [d.dim_value for d in out.graph.output[1].type.tensor_type.shape.dim] == [1, 6, 2]
    settings = json.loads({p.key: p.value for p in out.metadata_props}[sanitize.NMS_METADATA_KEY])
    assert settings == {
        "center_point_box": 0,
        "max_output_boxes_per_class": 3,
        "iou_threshold": 0.5,
        "score_threshold": pytest.approx(0.1),
    }


def test_strip_nms_adds_transpose_for_class_major_scores():
    out = sanitize.strip_nms(nms_model(transpose=False))
    feeds = nms_feeds([1, 2, 6])
    got = run_onnx(out, feeds)
    assert got["scores"].shape == (1, 6, 2)
    np.testing.assert_allclose(got["scores"], 1 / (1 + np.exp(-feeds["logits"].transpose(0, 2, 1))), rtol=1e-6)


def test_strip_nms_without_nms_is_a_copy_and_two_are_refused():
    plain = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", FLOAT, [2])],
        [helper.make_tensor_value_info("y", FLOAT, [2])],
    )
    assert sanitize.strip_nms(plain) == plain
    model = nms_model()
    extra = helper.make_node("NonMaxSuppression", ["b", "st"], ["sel2"])
    model.graph.node.append(extra)
    model.graph.output.append(helper.make_tensor_value_info("sel2", TensorProto.INT64, ["m", 3]))
    with pytest.raises(ExportError, match="2 NonMaxSuppression nodes"):
        sanitize.strip_nms(model)


def test_computed_reshapes_become_batch_agnostic_constants():
    n = helper.make_node
    model = make_model(
        [
            n("Shape", ["x"], ["shape"]),
            n("Gather", ["shape", "zero"], ["batch"], axis=0),
            n("Unsqueeze", ["batch", "axes"], ["batch1"]),
            n("Concat", ["batch1", "minus1"], ["flat_shape"], axis=0),  # [N, -1] -> [0, -1]
            n("Reshape", ["x", "flat_shape"], ["y"]),
            n("Concat", ["batch1", "three", "four"], ["back_shape"], axis=0),  # [N, 3, 4] -> [-1, 3, 4]
            n("Reshape", ["y", "back_shape"], ["z"]),
        ],
        [helper.make_tensor_value_info("x", FLOAT, ["n", 3, 4])],
        [helper.make_tensor_value_info("y", FLOAT, ["n", 12]), helper.make_tensor_value_info("z", FLOAT, ["n", 3, 4])],
        [
            const("zero", 0, np.int64),
            const("axes", [0], np.int64),
            const("minus1", [-1], np.int64),
            const("three", [3], np.int64),
            const("four", [4], np.int64),
        ],
    )
    out = sanitize.batch_agnostic_reshapes(model)
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in out.graph.initializer}
    assert [inits[node.input[1]] for node in out.graph.node] == [[0, -1], [-1, 3, 4]]
    assert {node.op_type for node in out.graph.node} == {"Reshape"}  # the shape arithmetic is gone
    for batch in (1, 7):
        assert_same_outputs(model, out, {"x": rand(batch, 3, 4)})


def test_simplify_keeps_metadata():
    model = nms_model()
    helper.set_model_props(model, {"standin": "true"})
    out = sanitize.simplify(sanitize.strip_nms(model))
    props = {p.key: p.value for p in out.metadata_props}
    assert props["standin"] == "true" and sanitize.NMS_METADATA_KEY in props


# ---------------------------------------------------------------- torch / Core ML


def needs_coreml() -> None:
    """Skip unless the conversion stack is installed (onnx2torch is not imported: it may need the stub)."""
    for name in ("coremltools", "torch", "onnx2torch"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install 'spinepose-deploy[coreml]')")


def legacy_export(tmp_path: Path) -> Path:
    """A torch-legacy-exporter graph with what broke onnx2torch: Clip with a Constant min and an empty
    max, a reshape computed from Shape, and a weight shared through an Identity node."""
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.other = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)
            self.fc = torch.nn.Linear(64, 8)

        def forward(self, x):
            y = self.other(torch.clamp(self.conv(x), min=-0.5))
            y = torch.nn.functional.relu6(self.bn(y))
            y = torch.flatten(y, 2)  # (N, 3, 64) through Shape/Slice/Concat/Reshape
            return self.fc(y), y.mean(-1)

    torch.manual_seed(0)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Tiny().eval(),
            (torch.randn(2, 3, 8, 8),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["feat", "pooled"],
            dynamic_axes={"input": {0: "batch"}, "feat": {0: "batch"}, "pooled": {0: "batch"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    first_weight = convs[0].input[1]  # share the first conv's weight with the second through an Identity
    model.graph.node.insert(0, helper.make_node("Identity", [first_weight], ["shared_w"]))
    convs[1].input[1] = "shared_w"
    ops = [n.op_type for n in model.graph.node]
    assert "Identity" in ops and "Constant" in ops and "Shape" in ops
    assert any(n.op_type == "Clip" and n.input[-1] == "" for n in model.graph.node)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    return path


def test_sanitized_legacy_export_converts_and_traces_at_any_batch(tmp_path):
    needs_coreml()
    import torch

    from spinepose_deploy.export import coreml

    onnx2torch = coreml._import_onnx2torch()
    model = onnx.load(legacy_export(tmp_path))
    clean = sanitize.sanitize_for_torch(model)
    ops = {n.op_type for n in clean.graph.node}
    assert not ops & {"Identity", "Constant", "Shape"}
    assert all("" not in n.input for n in clean.graph.node)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(onnx2torch.convert(clean).eval(), torch.from_numpy(rand(2, 3, 8, 8)))
    for batch in (1, 2, 5):
        feeds = {"input": rand(batch, 3, 8, 8, seed=batch)}
        assert_same_outputs(model, clean, feeds, atol=1e-5)
        expected = run_onnx(model, feeds)
        with torch.no_grad():
            got = traced(torch.from_numpy(feeds["input"]))
        for name, value in zip(expected, got, strict=True):
            np.testing.assert_allclose(value.numpy(), expected[name], atol=1e-5, err_msg=f"{name} batch {batch}")


def test_torchvision_stub_only_during_import_and_raises_if_used():
    needs_coreml()
    from spinepose_deploy.export import coreml

    coreml._import_onnx2torch()
    tv = sys.modules.get("torchvision")
    assert tv is None or hasattr(tv, "__file__")  # the stub never outlives the import
    nms_module = sys.modules["onnx2torch.node_converters.nms"]
    if hasattr(nms_module.torchvision, "__file__"):
        pytest.skip("a working torchvision is installed here; the stub was not needed")
    with pytest.raises(ExportError, match="NonMaxSuppression"):
        nms_module.torchvision.ops.nms(None, None, 0.5)


def test_precision_checked_before_anything(tmp_path):
    from spinepose_deploy.export import coreml

    for precision, match in (("int8", "not available for backend 'coreml' yet"), ("fp64", "not one of fp32, fp16")):
        with pytest.raises(InvalidOptionError, match=match):
            coreml.write(
                tmp_path / "none.onnx", tmp_path, spec=get_spec("lifter"), precision=precision, batch=BatchRange()
            )


def test_missing_coremltools_says_how_to_install(tmp_path, monkeypatch):
    from spinepose_deploy.export import coreml

    monkeypatch.setitem(sys.modules, "coremltools", None)  # makes 'import coremltools' raise ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'spinepose-deploy\[coreml\]'"):
        coreml.write(tmp_path / "x.onnx", tmp_path, spec=get_spec("lifter"), precision="fp16", batch=BatchRange())


def test_file_that_is_not_onnx_is_one_line_error_naming_it(tmp_path):
    needs_coreml()
    from spinepose_deploy.export import coreml

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x0a\x05hello this is not a protobuf model \xff\xfe" * 20)
    with pytest.raises(ModelLoadError) as info:
        coreml.write(bad, tmp_path / "out", spec=get_spec("lifter"), precision="fp16", batch=BatchRange())
    assert "broken.onnx" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def read_spec(package: Path):
    import coremltools as ct

    return ct.utils.load_spec(str(package))


def batch_bounds(feature) -> tuple[int, int]:
    """Smallest and largest batch of a RangeDim or of an enumerated ladder (then every shape is checked)."""
    array = feature.type.multiArrayType
    if array.WhichOneof("ShapeFlexibility") == "enumeratedShapes":
        shapes = [tuple(s.shape) for s in array.enumeratedShapes.shapes]
        assert len({shape[1:] for shape in shapes}) == 1, shapes  # only the batch varies
        return min(s[0] for s in shapes), max(s[0] for s in shapes)
    sizes = array.shapeRange.sizeRanges[0]
    return int(sizes.lowerBound), int(sizes.upperBound)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    needs_coreml()
    return legacy_export(tmp_path_factory.mktemp("tiny"))


def test_batch_is_an_enumerated_ladder_by_default_checked_per_shape(tiny_onnx, tmp_path):
    """The Neural Engine keeps every enumerated shape (a RangeDim: only its default): 1, 2, 4, 8, 16 in --batch."""
    from spinepose_deploy.export import coreml

    result = coreml.write(tiny_onnx, tmp_path, spec=get_spec("pose-s-v2"), precision="fp16", batch=BatchRange(1, 4, 16))
    assert result.extra["batch"] == {"kind": "enumerated", "min": 1, "opt": 4, "max": 16, "sizes": [1, 2, 4, 8, 16]}
    feature = read_spec(tmp_path / result.primary).description.input[0]
    shapes = sorted(tuple(s.shape) for s in feature.type.multiArrayType.enumeratedShapes.shapes)
    assert shapes == [(b, 3, 8, 8) for b in (1, 2, 4, 8, 16)]  # the spec check per shape
    assert not any("batch range failed" in note for note in result.notes)
    # the session pads a batch up to the ladder and chunks above it (here validating only: no macOS)
    from spinepose_deploy.backends.coreml import CoreMLSession

    session = CoreMLSession(None, read_spec(tmp_path / result.primary), "cpu")
    assert session.batch_sizes == (1, 2, 4, 8, 16)
    seen = []
    session._run = lambda feeds: seen.append(len(feeds["input"])) or {"y": feeds["input"][:, :1]}
    out = session.run({"input": np.zeros((37, 3, 8, 8), np.float32)})
    assert seen == [16, 16, 8] and out["y"].shape == (37, 1, 8, 8)  # 5 padded to 8


def test_tiny_graph_writes_flexible_ml_program(tiny_onnx, tmp_path):
    from spinepose_deploy.export import coreml

    result = coreml.write(
        tiny_onnx, tmp_path, spec=get_spec("pose-s-v2"), precision="fp16", batch=BatchRange(1, 2, 8), shapes="range"
    )
    assert result.primary == "pose.mlpackage"
    assert "pose.mlpackage/Manifest.json" in result.files
    assert all((tmp_path / f).is_file() for f in result.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.mlpackage"]  # no temp dirs left
    spec = read_spec(tmp_path / result.primary)
    assert spec.WhichOneof("Type") == "mlProgram"
    assert [f.name for f in spec.description.input] == ["input"]
    assert [f.name for f in spec.description.output] == ["feat", "pooled"]
    assert batch_bounds(spec.description.input[0]) == (1, 8)
    extra = result.extra
    assert extra["compute_precision"] == "FLOAT16" and extra["host_nms"] is False
    assert extra["batch"] == {"kind": "range", "min": 1, "opt": 2, "max": 8}
    assert extra["inputs"] == [{"name": "input", "shape": ["batch", 3, 8, 8], "dtype": "float32"}]
    assert [o["name"] for o in extra["outputs"]] == ["feat", "pooled"]
    assert extra["prediction"].startswith("macOS only; converted and spec-validated on ")
    assert extra["torch_vs_onnxruntime_max_abs_diff"] < 1e-4
    assert extra["mil_ops_checked"].endswith("MIL op types, all in the iOS16 opset")


def test_onnx_op_without_onnx2torch_converter_is_one_line_naming_the_node(tiny_onnx, tmp_path):
    from spinepose_deploy.export import coreml, coreml_rules

    coreml._import_onnx2torch()
    unique = make_model(
        [helper.make_node("Unique", ["x"], ["y"], name="the_unique")],
        [helper.make_tensor_value_info("x", FLOAT, [4])],
        [helper.make_tensor_value_info("y", FLOAT, [None])],
    )
    with pytest.raises(ExportError, match=r"node 'the_unique' \(Unique, opset 17\): Core ML rule onnx2torch-op") as exc:
        coreml_rules.check_onnx(unique, tmp_path / "g.onnx")
    assert "\n" not in str(exc.value)
    coreml_rules.check_onnx(onnx.load(str(tiny_onnx)), tiny_onnx)  # the converter's own graphs pass


def test_mil_op_newer_than_the_deployment_target_is_refused(tiny_onnx, tmp_path):
    from spinepose_deploy.export import coreml, coreml_rules

    coreml.write(tiny_onnx, tmp_path, spec=get_spec("pose-s-v2"), precision="fp32", batch=BatchRange(1, 1, 1))
    ct, _, _ = coreml._import_backend()
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 8))], opset_version=ct.target.iOS18)
    def attention(x):
        return mb.scaled_dot_product_attention(query=x, key=x, value=x)  # MIL op added in iOS18

    model = ct.convert(attention, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18)
    assert "scaled_dot_product_attention" in coreml_rules.program_ops(model)
    with pytest.raises(ExportError, match=r"MIL op 'scaled_dot_product_attention': Core ML rule mil-op: needs iOS18"):
        coreml_rules.check_program(model, "iOS16", tmp_path / "g.onnx")
    assert coreml_rules.check_program(model, "iOS18", tmp_path / "g.onnx")


def test_failed_write_leaves_nothing_and_keeps_an_old_package(tiny_onnx, tmp_path, monkeypatch):
    from spinepose_deploy.export import coreml

    old = tmp_path / "pose.mlpackage"
    old.mkdir()
    (old / "marker").write_text("previous export")

    def broken(*args, **kwargs):
        raise ExportError("simulated failure after saving")

    monkeypatch.setattr(coreml, "_verify_saved", broken)
    with pytest.raises(ExportError, match="simulated"):
        coreml.write(tiny_onnx, tmp_path, spec=get_spec("pose-s-v2"), precision="fp32", batch=BatchRange(1, 1, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose.mlpackage"]
    assert (old / "marker").read_text() == "previous export"


def test_batch_range_failure_falls_back_to_enumerated_sizes(tiny_onnx, tmp_path, monkeypatch):
    import coremltools as ct

    from spinepose_deploy.export import coreml

    def no_range(*args, **kwargs):
        raise ValueError("RangeDim unsupported (simulated)")

    monkeypatch.setattr(ct, "RangeDim", no_range)
    result = coreml.write(
        tiny_onnx, tmp_path, spec=get_spec("lifter"), precision="fp32", batch=BatchRange(1, 2, 8), shapes="range"
    )
    assert result.extra["batch"]["kind"] == "enumerated"
    assert any("enumerated batch sizes [1, 2, 4, 8]" in note for note in result.notes)
    feature = read_spec(tmp_path / "lifter.mlpackage").description.input[0]
    shapes = sorted(tuple(s.shape) for s in feature.type.multiArrayType.enumeratedShapes.shapes)
    assert shapes == [(b, 3, 8, 8) for b in (1, 2, 4, 8)]


# ---------------------------------------------------------------- stand-ins of the small mode


def write_standin(name: str, path: Path, out: Path, precision: str, batch: BatchRange):
    from spinepose_deploy.export import coreml

    return coreml.write(path, out, spec=get_spec(name), precision=precision, batch=batch)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_lifter_standin_converts_with_flexible_batch(tmp_path, precision):
    needs_coreml()
    from spinepose_deploy.zoo.standins import build_standin

    path = build_standin("lifter")  # only the lifter: the fast suite should not build pose/detector graphs
    result = write_standin("lifter", path, tmp_path, precision, BatchRange(1, 4, 64))
    spec = read_spec(tmp_path / result.primary)
    source = onnx.load(path, load_external_data=False)
    assert [f.name for f in spec.description.input] == [i.name for i in source.graph.input]
    assert [f.name for f in spec.description.output] == [o.name for o in source.graph.output]
    assert batch_bounds(spec.description.input[0]) == (1, 64)
    assert result.extra["inputs"][0]["shape"] == ["batch", 37, 2]
    assert result.extra["compute_precision"] == {"fp32": "FLOAT32", "fp16": "FLOAT16"}[precision]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_pose_s_standin_converts_with_flexible_batch(standin_paths, tmp_path, precision):
    needs_coreml()
    result = write_standin("pose-s-v2", standin_paths["pose-s-v2"], tmp_path, precision, BatchRange(1, 8, 32))
    spec = read_spec(tmp_path / "pose.mlpackage")
    assert [f.name for f in spec.description.output] == ["simcc_x", "simcc_y"]
    assert batch_bounds(spec.description.input[0]) == (1, 32)
    assert result.extra["outputs"][0] == {"name": "simcc_x", "shape": ["batch", 37, 384], "dtype": "float32"}
    assert result.extra["torch_vs_onnxruntime_max_abs_diff"] < 1e-3


@pytest.mark.slow
def test_yolox_tiny_standin_converts_with_nms_on_the_host(standin_paths, tmp_path):
    needs_coreml()
    result = write_standin("yolox-tiny", standin_paths["yolox-tiny"], tmp_path, "fp16", BatchRange(1, 1, 8))
    spec = read_spec(tmp_path / "detector.mlpackage")
    assert [f.name for f in spec.description.output] == ["boxes", "scores"]
    assert list(spec.description.input[0].type.multiArrayType.shape) == [1, 3, 416, 416]
    assert result.extra["host_nms"] is True
    assert result.extra["nms"]["iou_threshold"] == pytest.approx(0.5)
    assert [o["shape"] for o in result.extra["outputs"]] == [[1, 3549, 4], [1, 3549, 1]]
    assert any("NMS runs on the host" in note for note in result.notes)


@pytest.mark.slow
def test_rfdetr_n_standin_converts_through_grid_sample(tmp_path):
    needs_coreml()
    from spinepose_deploy.zoo.standins import build_standin

    path = build_standin("rfdetr-n")
    assert "GridSample" in {n.op_type for n in onnx.load(path).graph.node}
    result = write_standin("rfdetr-n", path, tmp_path, "fp16", BatchRange(1, 1, 1))
    spec = read_spec(tmp_path / "detector.mlpackage")
    assert [f.name for f in spec.description.output] == ["dets", "labels"]
    assert result.extra["host_nms"] is False


def test_grid_sample_converts_for_core_ml(tmp_path):
    """onnx2torch 1.5 has no GridSample (RF-DETR needs it): the writer registers one; Core ML gets resample."""
    needs_coreml()
    from spinepose_deploy.export import coreml

    model = make_model(
        [
            helper.make_node("Tanh", ["offsets"], ["grid"]),
            helper.make_node("GridSample", ["input", "grid"], ["out"], align_corners=0, mode="bilinear"),
        ],
        [
            helper.make_tensor_value_info("input", FLOAT, [1, 2, 5, 5]),
            helper.make_tensor_value_info("offsets", FLOAT, [1, 3, 3, 2]),
        ],
        [helper.make_tensor_value_info("out", FLOAT, [1, 2, 3, 3])],
    )
    path = tmp_path / "grid.onnx"
    onnx.save(model, path)
    result = coreml.write(path, tmp_path, spec=get_spec("rfdetr-n"), precision="fp32", batch=BatchRange(1, 1, 1))
    assert result.extra["torch_vs_onnxruntime_max_abs_diff"] < 1e-5  # torch grid_sample == ONNX GridSample
    spec = read_spec(tmp_path / "detector.mlpackage")
    assert [f.name for f in spec.description.input] == ["input", "offsets"]
    assert "resample" in str(spec.mlProgram)


def test_capture_failure_is_one_line_naming_file_and_both_routes(tiny_onnx, tmp_path, monkeypatch):
    import torch

    from spinepose_deploy.export import coreml

    def no_trace(*args, **kwargs):
        raise RuntimeError("tracing broke (simulated)")

    monkeypatch.setattr(torch.jit, "trace", no_trace)
    with pytest.raises(ExportError) as info:
        coreml.write(tiny_onnx, tmp_path, spec=get_spec("lifter"), precision="fp16", batch=BatchRange(1, 2, 8))
    message = str(info.value)
    assert "tiny.onnx" in message and "jit.trace: RuntimeError: tracing broke" in message and "torch.export" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []

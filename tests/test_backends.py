"""Backends against one contract: ONNX Runtime vs OpenVINO parity, batches, precision, Core ML specs, errors.

The graphs are tiny ONNX files built with onnx.helper; the Core ML package is converted from a tiny torch
model (conversion and spec validation run on Linux, prediction only on macOS). TensorRT needs an NVIDIA GPU:
here only its availability and its refusal are checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy.backends import get_backend
from spinepose_deploy.errors import (
    BackendUnavailableError,
    InputFileError,
    InvalidOptionError,
    ModelLoadError,
)

RNG = np.random.default_rng(7)


def _graph(path: Path, batch: int | str) -> Path:
    """Conv 3->4 + ReLU ('heat') and its spatial mean ('score'), input 'image' (batch, 3, 8, 8)."""
    weight = numpy_helper.from_array(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(RNG.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["heat"]),
        helper.make_node("ReduceMean", ["heat"], ["score"], axes=[2, 3], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [
            helper.make_tensor_value_info("heat", TensorProto.FLOAT, [batch, 4, 8, 8]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch, 4]),
        ],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("graphs")
    return {"dynamic": _graph(root / "dynamic.onnx", "batch"), "static": _graph(root / "static1.onnx", 1)}


@pytest.fixture(scope="module")
def ir(graphs) -> Path:
    ov = pytest.importorskip("openvino")
    path = graphs["dynamic"].with_suffix(".xml")
    ov.save_model(ov.Core().read_model(str(graphs["dynamic"])), str(path), compress_to_fp16=False)
    return path


def _image(batch: int) -> dict[str, np.ndarray]:
    return {"image": RNG.standard_normal((batch, 3, 8, 8)).astype(np.float32)}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- ONNX Runtime vs OpenVINO ----------------------------------------------------------------------
@pytest.mark.parametrize("source", ["onnx", "ir"])
def test_openvino_matches_onnxruntime_at_fp32(graphs, ir, source):
    feeds = _image(2)
    expected = get_backend("onnxruntime").load(graphs["dynamic"]).run(feeds)
    session = get_backend("openvino").load(ir if source == "ir" else graphs["dynamic"], precision="fp32")
    got = session.run(feeds)
    assert set(got) == {"heat", "score"}
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-4)
    assert (session.backend, session.device, session.precision) == ("openvino", "cpu", "fp32")
    assert [(i.name, i.shape) for i in session.inputs] == [("image", ("?", 3, 8, 8))]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_dynamic_batch_of_five(graphs, backend):
    session = get_backend(backend).load(graphs["dynamic"])
    out = session.run(_image(5))
    assert out["heat"].shape == (5, 4, 8, 8) and out["score"].shape == (5, 4)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_static_batch_graph_is_looped(graphs, backend):
    session = get_backend(backend).load(graphs["static"])
    assert session.inputs[0].static_batch == 1
    feeds = _image(3)
    batched = session.run(feeds)
    singles = [session.run({"image": feeds["image"][i : i + 1]}) for i in range(3)]
    for name in ("heat", "score"):
        assert batched[name].shape[0] == 3
        np.testing.assert_array_equal(batched[name], np.concatenate([s[name] for s in singles]))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("graph", ["dynamic", "static"])
def test_run_many_gives_run_results_in_order(graphs, backend, graph):
    session = get_backend(backend).load(graphs[graph], **({"hint": "throughput"} if backend == "openvino" else {}))
    feeds = [_image(batch) for batch in (1, 3, 1, 2, 1)]  # static1 graph: batches of 3 and 2 go through run()
    many = list(session.run_many(iter(feeds)))
    assert len(many) == len(feeds)
    for one, got in zip(feeds, many, strict=True):
        expected = session.run(one)
        for name in ("heat", "score"):
            np.testing.assert_array_equal(got[name], expected[name])


def test_openvino_throughput_keeps_several_requests_in_flight(graphs):
    latency = get_backend("openvino").load(graphs["dynamic"])
    throughput = get_backend("openvino").load(graphs["dynamic"], hint="throughput")
    assert latency.requests == 1
    assert str(latency._compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    assert str(throughput._compiled.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    if throughput.requests == 1:
        pytest.skip("OpenVINO's THROUGHPUT hint asks for one infer request on this host (one core?)")
    feeds = [_image(2) for _ in range(7)]  # windows of `requests`, the last one partial
    expected = [latency.run(one) for one in feeds]
    for want, got in zip(expected, throughput.run_many(feeds), strict=True):
        np.testing.assert_allclose(got["heat"], want["heat"], atol=1e-5)
    assert throughput._queue is not None and len(throughput._queue) == throughput.requests


def test_openvino_split_batch_runs_a_batch_in_parts_with_the_same_results(graphs):
    latency = get_backend("openvino").load(graphs["dynamic"])
    split = get_backend("openvino").load(graphs["dynamic"], split_batch=True)
    static = get_backend("openvino").load(graphs["static"], split_batch=True)
    assert latency.split_parts == 1 and static.split_parts == 1  # a static batch cannot be cut
    if split.split_parts == 1:
        pytest.skip("OpenVINO's THROUGHPUT hint asks for one infer request on this host (one core?)")
    for batch in (1, 2, 5):  # 5: unequal parts
        feeds = _image(batch)
        want, got = latency.run(feeds), split.run(feeds)
        assert got["heat"].shape == want["heat"].shape
        np.testing.assert_allclose(got["heat"], want["heat"], atol=1e-5)
        np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
    assert split._split_queue is not None and len(split._split_queue) == split.split_parts


def test_openvino_run_many_errors_are_one_line(graphs):
    session = get_backend("openvino").load(graphs["dynamic"], hint="throughput")
    with pytest.raises(InvalidOptionError, match=r"input 'image': shape \(1, 3, 9, 8\), expected .*\(axis 2\)"):
        list(session.run_many([_image(1), {"image": np.zeros((1, 3, 9, 8), np.float32)}]))
    with pytest.raises(InvalidOptionError, match="openvino hint: 'fast'"):
        get_backend("openvino").load(graphs["dynamic"], hint="fast")


def test_openvino_fp32_sets_f32_inference_precision(graphs):
    ov = pytest.importorskip("openvino")
    session = get_backend("openvino").load(graphs["dynamic"], precision="fp32")
    assert session._compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


def _cpu_caps() -> set[str]:
    ov = pytest.importorskip("openvino")
    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def test_openvino_bf16_differs_or_is_refused(graphs):
    backend, feeds = get_backend("openvino"), _image(2)
    if "BF16" not in _cpu_caps():
        with pytest.raises(
            InvalidOptionError, match="precision bf16: openvino CPU has no BF16 support"
        ) as exc:
            backend.load(graphs["dynamic"], precision="bf16")
        _one_line(exc)
        return
    fp32 = backend.load(graphs["dynamic"], precision="fp32").run(feeds)
    session = backend.load(graphs["dynamic"], precision="bf16")
    bf16 = session.run(feeds)
    assert session.precision == "bf16"
    deviation = float(np.abs(bf16["heat"] - fp32["heat"]).max())
    assert 1e-6 < deviation < 0.5, deviation


def test_openvino_fp16_runs_f32_where_the_cpu_has_no_fp16(graphs):
    session = get_backend("openvino").load(graphs["dynamic"], precision="fp16")
    if "FP16" in _cpu_caps():
        assert session.precision == "fp16"
    else:
        assert session.precision == "fp32"
        assert any("fp16 computes in f32" in note for note in session.notes)


def test_openvino_int8_needs_a_quantized_graph(graphs, tmp_path):
    quantization = pytest.importorskip("onnxruntime.quantization")
    backend = get_backend("openvino")
    with pytest.raises(InvalidOptionError, match="precision int8: .*dynamic.onnx has no quantized") as exc:
        backend.load(graphs["dynamic"], precision="int8")
    _one_line(exc)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([_image(1) for _ in range(4)])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    qdq = tmp_path / "qdq.onnx"
    quantization.quantize_static(
        str(graphs["dynamic"]), str(qdq), Reader(), quant_format=quantization.QuantFormat.QDQ
    )
    session = backend.load(qdq, precision="int8")
    assert session.precision == "int8"
    assert any("quantized ops run int8" in note for note in session.notes)
    expected = get_backend("onnxruntime").load(qdq).run(feeds := _image(2))  # the same int8 graph on ORT
    heat = expected["heat"]
    assert np.abs(session.run(feeds)["heat"] - heat).max() < 0.05 * (heat.max() - heat.min())


# -- errors: one line, naming the file / option / input ----------------------------------------------
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_corrupt_onnx(tmp_path, backend):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(RNG.bytes(2048))
    with pytest.raises(ModelLoadError, match=f"corrupt.onnx: {backend} could not") as exc:
        get_backend(backend).load(bad)
    _one_line(exc)


def test_corrupt_openvino_ir(tmp_path):
    bad = tmp_path / "corrupt.xml"
    bad.write_bytes(RNG.bytes(2048))
    with pytest.raises(ModelLoadError, match="corrupt.xml: weights file corrupt.bin is missing"):
        get_backend("openvino").load(bad)
    bad.with_suffix(".bin").write_bytes(RNG.bytes(64))
    with pytest.raises(
        ModelLoadError, match="corrupt.xml: openvino could not read it as an OpenVINO IR"
    ) as exc:
        get_backend("openvino").load(bad)
    _one_line(exc)


@pytest.mark.parametrize(
    ("backend", "fixture", "expected"),
    [
        ("onnxruntime", "ir", r"'\.xml' is not a onnxruntime artifact \(expected \.onnx\)"),
        ("coreml", "onnx", r"'\.onnx' is not a coreml artifact \(expected \.mlpackage, \.mlmodel\)"),
    ],
)
def test_wrong_format_for_backend(graphs, ir, backend, fixture, expected):
    artifact = ir if fixture == "ir" else graphs["dynamic"]
    with pytest.raises(ModelLoadError, match=expected) as exc:
        get_backend(backend).load(artifact)
    _one_line(exc)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "coreml", "tensorrt"])
def test_missing_file(tmp_path, backend):
    suffix = get_backend(backend).suffixes[0]
    with pytest.raises(InputFileError, match=f"nothing{re.escape(suffix)}: no such file") as exc:
        get_backend(backend).load(tmp_path / f"nothing{suffix}")
    _one_line(exc)


def test_openvino_unknown_device_lists_available(graphs):
    ov = pytest.importorskip("openvino")
    available = ov.Core().available_devices
    if any(d.startswith("GPU") for d in available):
        pytest.skip(f"this machine has an OpenVINO GPU device ({available})")
    with pytest.raises(
        InvalidOptionError, match=r"openvino device 'GPU': not available here \(available: CPU"
    ) as exc:
        get_backend("openvino").load(graphs["dynamic"], device="GPU")
    _one_line(exc)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_feeds_are_checked_against_inputs(graphs, backend):
    session = get_backend(backend).load(graphs["dynamic"])
    with pytest.raises(InvalidOptionError, match=r"got \['img'\], expected inputs \['image'\]"):
        session.run({"img": _image(1)["image"]})
    with pytest.raises(
        InvalidOptionError, match=r"input 'image': rank 3 .*expected shape \['(\?|batch)', 3, 8, 8\]"
    ):
        session.run({"image": np.zeros((3, 8, 8), np.float32)})
    with pytest.raises(
        InvalidOptionError, match=r"input 'image': shape \(1, 3, 9, 8\), expected .*\(axis 2\)"
    ):
        session.run({"image": np.zeros((1, 3, 9, 8), np.float32)})


# -- TensorRT ----------------------------------------------------------------------------------------
def test_tensorrt_availability_names_what_is_missing(tmp_path):
    backend = get_backend("tensorrt")
    status = backend.availability()
    if status.ok:
        pytest.skip(f"TensorRT runs here ({status.reason})")
    assert "tensorrt" in status.reason
    engine = tmp_path / "pose.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(BackendUnavailableError, match=re.escape(status.reason)) as exc:
        backend.load(engine)
    _one_line(exc)
    assert all(not row.ok and row.reason == status.reason for row in backend.capabilities())


@pytest.mark.gpu
def test_tensorrt_matches_onnxruntime(graphs, tmp_path):
    status = get_backend("tensorrt").availability()
    if not status.ok:
        pytest.skip(f"TensorRT backend: {status.reason}")
    from spinepose_deploy.export.base import BatchRange
    from spinepose_deploy.export.tensorrt import write
    from spinepose_deploy.zoo.specs import get_spec

    written = write(
        graphs["dynamic"], tmp_path, spec=get_spec("pose-s-v2"), precision="fp32", batch=BatchRange(1, 2, 4)
    )
    session = get_backend("tensorrt").load(tmp_path / written.primary)
    feeds = _image(6)  # more than the profile's max: run in chunks
    expected = get_backend("onnxruntime").load(graphs["dynamic"]).run(feeds)
    got = session.run(feeds)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-2)
    session.close()


# -- Core ML -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlpackage(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("coremltools")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            heat = torch.relu(self.conv(x))
            return heat, heat.mean(dim=(2, 3))

    torch.manual_seed(0)
    traced = torch.jit.trace(Tiny().eval(), torch.rand(1, 3, 8, 8))
    model = ct.convert(
        traced,
        convert_to="mlprogram",
        inputs=[ct.TensorType(name="image", shape=(ct.RangeDim(1, 8), 3, 8, 8))],
        outputs=[ct.TensorType(name="heat"), ct.TensorType(name="score")],
    )
    path = tmp_path_factory.mktemp("coreml") / "tiny.mlpackage"
    model.save(str(path))
    return path


def test_coreml_spec_is_validated_here(mlpackage):
    session = get_backend("coreml").load(mlpackage, validate_only=True)
    assert [(i.name, i.shape, i.dtype) for i in session.inputs] == [("image", ("batch", 3, 8, 8), "float32")]
    assert [o.name for o in session.outputs] == ["heat", "score"]
    assert session.max_batch == 8 and session.precision == "fp16"


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML predicts")
def test_coreml_prediction_is_refused_off_macos(mlpackage):
    backend = get_backend("coreml")
    with pytest.raises(
        BackendUnavailableError, match=r"needs macOS .*tiny.mlpackage is valid, inputs: image"
    ) as exc:
        backend.load(mlpackage)
    _one_line(exc)
    session = backend.load(mlpackage, validate_only=True)
    with pytest.raises(BackendUnavailableError, match="validate only: Core ML prediction needs macOS"):
        session.run(_image(2))


@pytest.mark.parametrize("damage", ["manifest", "spec"])
def test_coreml_corrupt_package(mlpackage, tmp_path, damage):
    import shutil

    broken = tmp_path / "broken.mlpackage"
    shutil.copytree(mlpackage, broken)
    if damage == "manifest":
        (broken / "Manifest.json").unlink()
    else:
        (broken / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(RNG.bytes(512))
    with pytest.raises(ModelLoadError, match="broken.mlpackage: coreml could not load it: ") as exc:
        get_backend("coreml").load(broken, validate_only=True)
    _one_line(exc)


@pytest.mark.macos
def test_coreml_predicts_on_macos(mlpackage):
    status = get_backend("coreml").availability()
    if not status.ok:
        pytest.skip(f"Core ML backend: {status.reason}")
    session = get_backend("coreml").load(mlpackage, compute_units="cpu_only")
    out = session.run(_image(10))  # more than the RangeDim's 8: run in chunks
    assert out["heat"].shape == (10, 4, 8, 8) and out["score"].shape == (10, 4)

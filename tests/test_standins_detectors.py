"""Detector stand-ins (YOLOX, RF-DETR): size, FLOPs, exported contract, in-graph NMS, ORT and OpenVINO."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from spinepose_deploy.errors import ExportError  # noqa: E402
from spinepose_deploy.zoo.specs import get_spec  # noqa: E402
from spinepose_deploy.zoo.standins import build, rfdetr, yolox  # noqa: E402
from spinepose_deploy.zoo.standins.common import count_params  # noqa: E402
from spinepose_deploy.zoo.standins.flops import gflops  # noqa: E402

SLOW = pytest.mark.slow
YOLOX = [pytest.param("yolox-tiny"), pytest.param("yolox-m", marks=SLOW), pytest.param("yolox-x", marks=SLOW)]
RFDETR = [pytest.param("rfdetr-n"), *(pytest.param(f"rfdetr-{v}", marks=SLOW) for v in "sml")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each stand-in once per module, into a private cache."""
    cache = tmp_path_factory.mktemp("standin-cache")
    paths: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEPOSE_DEPLOY_CACHE", str(cache))

        def get(name: str) -> str:
            if name not in paths:
                paths[name] = str(build.build_standin(name))
            return paths[name]

        yield get


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _real_images(name: str) -> np.ndarray:
    """Real photos preprocessed as the pipeline would (the builder's calibration batch)."""
    return build._calibration_batch(get_spec(name))


def _openvino_run(path, feed: np.ndarray) -> list[np.ndarray]:
    ov = pytest.importorskip("openvino")
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(feed)
    return [result[out] for out in compiled.outputs]


def _check_graph(path) -> None:
    """Opset 17, and no parameter shared through Identity (onnx2torch, used for Core ML, rejects it)."""
    model = onnx.load(str(path))
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    inits = {init.name for init in model.graph.initializer}
    assert not [n.name for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits]


def _onnx_params(path) -> int:
    model = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)


# ---- size and FLOPs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", YOLOX)
def test_yolox_params_and_flops_match_published(name):
    spec = get_spec(name)
    model = yolox.create(spec)
    params_m = count_params(model) / 1e6
    # published counts are for 80 classes; ours has one (a ~0.5 % difference at most)
    assert params_m == pytest.approx(spec.params_m, rel=0.02)
    measured = gflops(model, (1, 3, *spec.input_size))
    assert measured == pytest.approx(yolox.DOCUMENTED_GFLOPS[spec.variant], rel=0.25)
    assert measured == pytest.approx(spec.gflops, rel=0.05)


@pytest.mark.parametrize("name", RFDETR)
def test_rfdetr_params_and_flops_match_documented(name):
    spec = get_spec(name)
    model = rfdetr.create(spec)
    assert count_params(model) / 1e6 == pytest.approx(spec.params_m, rel=0.15)
    measured = gflops(model, (1, 3, *spec.input_size))
    assert measured == pytest.approx(rfdetr.DOCUMENTED_GFLOPS[spec.variant], rel=0.25)


# ---- exported graphs --------------------------------------------------------------------------------


def _check_dets(dets: np.ndarray, labels: np.ndarray) -> None:
    assert dets.dtype == np.float32 and labels.dtype == np.int64
    assert dets.ndim == 3 and dets.shape[0] == 1 and dets.shape[2] == 5
    assert labels.shape == dets.shape[:2]
    assert dets.shape[1] <= yolox.KEEP_TOP_K
    scores = dets[0, :, 4]
    assert np.all(np.diff(scores) <= 0), "dets are not sorted by score"
    assert np.all(scores >= yolox.SCORE_THRESHOLD)
    assert np.all(dets[0, :, 0] <= dets[0, :, 2]) and np.all(dets[0, :, 1] <= dets[0, :, 3])
    assert np.all(labels == 0)


@pytest.mark.parametrize("name", YOLOX)
def test_yolox_standin_contract_and_nms(built, name):
    path = built(name)
    spec = get_spec(name)
    session = _session(path)
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == [
        ("input", [1, 3, *spec.input_size], "tensor(float)")
    ]
    outs = session.get_outputs()
    assert [(o.name, o.type, len(o.shape)) for o in outs] == [
        ("dets", "tensor(float)", 3), ("labels", "tensor(int64)", 2)
    ]
    assert outs[0].shape[0] == 1 and outs[0].shape[2] == 5 and isinstance(outs[0].shape[1], str)
    _check_graph(path)
    images = _real_images(name)
    counts = []
    for image in images:
        dets, labels = session.run(None, {"input": image[None]})
        _check_dets(dets, labels)
        counts.append(int((dets[0, :, 4] > yolox.HOST_THRESHOLD).sum()))
    # the score prior (set in finalize) gives a few boxes above the host's threshold, not dozens
    assert sum(counts) >= 1 and max(counts) <= 40, counts
    # OpenVINO runs the same NMS graph and returns the same boxes
    dets, labels = session.run(None, {"input": images[:1]})
    ov_dets, ov_labels = _openvino_run(path, images[:1])
    assert ov_dets.shape == dets.shape and ov_labels.dtype == np.int64
    # scores a few 1e-5 apart may swap places between runtimes: match each box, not each row
    for row in dets[0]:
        close = np.abs(ov_dets[0] - row) <= 0.5 + 1e-3 * np.abs(row)
        assert close.all(axis=1).any(), f"OpenVINO has no box close to {row}"


@pytest.mark.parametrize("name", RFDETR)
def test_rfdetr_standin_contract(built, name):
    path = built(name)
    spec = get_spec(name)
    size = spec.input_size[0]
    session = _session(path)
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == [3, size, size] and isinstance(inp.shape[0], str)
    assert [(o.name, o.shape[1:], o.type) for o in session.get_outputs()] == [
        ("dets", [300, 4], "tensor(float)"), ("labels", [300, 91], "tensor(float)")
    ]
    _check_graph(path)
    assert _onnx_params(path) / 1e6 == pytest.approx(rfdetr.INFERENCE_PARAMS_M[spec.variant], rel=0.02)
    images = _real_images(name)
    dets, logits = session.run(None, {"input": images[:2]})
    assert dets.shape == (2, 300, 4) and logits.shape == (2, 300, 91)
    assert np.all((dets > 0) & (dets < 1))
    assert np.isfinite(logits).all()
    # the score prior leaves a few person queries (logit 1) above the host's 0.3, nearly no other class
    probs = 1 / (1 + np.exp(-logits))
    persons = (probs[..., 1] > 0.3).sum(axis=1)
    assert 1 <= persons.max() <= 30
    assert (probs[..., 2:] > 0.3).sum() <= persons.sum()
    # the batch axis is really dynamic: one image alone gives the same result as inside a batch
    one_dets, one_logits = session.run(None, {"input": images[:1]})
    np.testing.assert_allclose(one_dets[0], dets[0], atol=1e-4)
    np.testing.assert_allclose(one_logits[0], logits[0], atol=1e-3)
    ov_dets, ov_logits = _openvino_run(path, images[:1])
    np.testing.assert_allclose(ov_dets, one_dets, atol=1e-3)
    np.testing.assert_allclose(ov_logits, one_logits, atol=1e-2)


# ---- the NMS tail on its own ------------------------------------------------------------------------


def _nms_only(tmp_path, num_anchors: int):
    """A graph that passes (boxes, scores) straight through, with the YOLOX NMS tail appended."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["b"], ["out0"]), helper.make_node("Identity", ["s"], ["out1"])],
        "raw",
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, num_anchors, 4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, num_anchors, 1])],
        [helper.make_tensor_value_info("out0", TensorProto.FLOAT, [1, num_anchors, 4]),
         helper.make_tensor_value_info("out1", TensorProto.FLOAT, [1, num_anchors, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = yolox.add_nms(model, num_anchors)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / f"nms-{num_anchors}.onnx"
    onnx.save(model, path)
    return path


def _grid_boxes(n: int, side: float = 10.0, gap: float = 20.0) -> np.ndarray:
    """n disjoint boxes on a row-major grid."""
    idx = np.arange(n)
    x0, y0 = (idx % 100) * gap, (idx // 100) * gap
    return np.stack([x0, y0, x0 + side, y0 + side], -1).astype(np.float32)[None]


def test_nms_tail_suppresses_sorts_and_caps(tmp_path):
    anchors = 3549  # yolox-tiny at 416: 52^2 + 26^2 + 13^2
    session = _session(_nms_only(tmp_path, anchors))
    boxes = _grid_boxes(anchors)
    scores = np.full((1, anchors, 1), 0.01, np.float32)
    boxes[0, 1] = boxes[0, 0] + [1, 0, 1, 0]  # IoU 9/11 with box 0: suppressed
    scores[0, :3, 0] = [0.8, 0.9, 0.6]
    dets, labels = session.run(None, {"b": boxes, "s": scores})
    _check_dets(dets, labels)
    np.testing.assert_allclose(dets[0, :, 4], [0.9, 0.6])
    np.testing.assert_allclose(dets[0, 0, :4], boxes[0, 1])
    # more boxes above the threshold than keep_top_k: the best KEEP_TOP_K come out, in order
    scores = np.linspace(0.06, 0.99, anchors, dtype=np.float32)[None, :, None]
    dets, labels = session.run(None, {"b": boxes, "s": scores})
    _check_dets(dets, labels)
    assert dets.shape == (1, yolox.KEEP_TOP_K, 5)
    np.testing.assert_allclose(dets[0, :, 4], scores[0, ::-1, 0][: yolox.KEEP_TOP_K])


def test_nms_tail_returns_empty_when_nothing_passes(tmp_path):
    anchors = 8400  # yolox-m/x at 640: exercises the pre-top-k branch too
    path = _nms_only(tmp_path, anchors)
    boxes = _grid_boxes(anchors)
    low = np.full((1, anchors, 1), yolox.SCORE_THRESHOLD / 2, np.float32)
    dets, labels = _session(path).run(None, {"b": boxes, "s": low})
    assert dets.shape == (1, 0, 5) and dets.dtype == np.float32
    assert labels.shape == (1, 0) and labels.dtype == np.int64
    ov_dets, ov_labels = _openvino_run(path, [boxes, low])
    assert ov_dets.shape == (1, 0, 5) and ov_labels.shape == (1, 0)
    # one box above the threshold comes through the pre-top-k and NMS unchanged
    low[0, 4321, 0] = 0.7
    dets, labels = _session(path).run(None, {"b": boxes, "s": low})
    np.testing.assert_allclose(dets, np.concatenate([boxes[:, 4321], [[0.7]]], -1)[None], rtol=1e-6)


def test_nms_tail_rejects_unexpected_outputs():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["b"], ["out0"])], "raw",
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4, 4])],
        [helper.make_tensor_value_info("out0", TensorProto.FLOAT, [1, 4, 4])],
    )
    with pytest.raises(ExportError, match="expected 2 raw outputs"):
        yolox.add_nms(helper.make_model(graph), 16)

"""Pose and lifter stand-ins: faithful parameter counts, and the build/cache/check machinery."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="stand-ins need torch (pip install 'spinepose-deploy[standins]')")
ort = pytest.importorskip("onnxruntime")

from spinepose_deploy.zoo.specs import get_spec  # noqa: E402
from spinepose_deploy.zoo.standins import build, build_standin, is_standin, lifter, pose  # noqa: E402
from spinepose_deploy.zoo.standins.common import count_params  # noqa: E402

BUILT = ("pose-s-v2", "lifter")
SLOW_POSE = ("pose-m-v2", "pose-l-v2", "pose-x-v1")


@pytest.mark.parametrize(
    "name",
    ["pose-s-v2", *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_POSE)],
)
def test_pose_param_count_matches_published(name):
    spec = get_spec(name)
    count = count_params(pose.create(spec)) / 1e6
    print(f"{name}: {count:.4f}M params (published {spec.params_m}M)")
    assert count == pytest.approx(spec.params_m, rel=0.01)


def test_lifter_is_small():
    count = count_params(lifter.create(get_spec("lifter")))
    print(f"lifter: {count / 1e6:.4f}M params")
    assert 1e5 < count < 5e6


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module, so each graph is built once."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEPOSE_DEPLOY_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def built(cache):
    return {name: build_standin(name) for name in BUILT}


def _io(tensors, default):
    return [t.name or default for t in tensors]


@pytest.mark.parametrize("name", BUILT)
def test_built_graph_has_the_released_contract(built, cache, name):
    spec, path = get_spec(name), built[name]
    assert path.parent == cache / "standins"
    assert path.name == f"{name}-{build.standin_key(spec)[:12]}.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == _io(spec.inputs, "input")
    assert [o.name for o in session.get_outputs()] == _io(spec.outputs, "output")
    declared = session.get_inputs() + session.get_outputs()
    for arg, want in zip(declared, spec.inputs + spec.outputs, strict=True):
        assert arg.shape == list(want.shape)  # static dims and symbolic names as released

    shape = (3, *spec.inputs[0].shape[1:])
    feed = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outputs = session.run(None, {session.get_inputs()[0].name: feed})
    for value, want in zip(outputs, spec.outputs, strict=True):
        assert value.shape == (3, *want.shape[1:])
        assert np.isfinite(value).all() and value.std() > 1e-3  # not degenerate

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["standin"] == "true" and props["model"] == name
    assert props["seed"] == str(build.model_seed(name)) and "keypoints mean nothing" in props["note"]
    assert is_standin(path)


def test_pose_outputs_differ_per_crop(built):
    """Real-image crops give different SimCC peaks: BN statistics came from images, not from nothing."""
    spec = get_spec("pose-s-v2")
    session = ort.InferenceSession(str(built["pose-s-v2"]), providers=["CPUExecutionProvider"])
    simcc_x, _ = session.run(None, {"input": build._calibration_batch(spec)})
    assert np.abs(simcc_x[0] - simcc_x[1]).mean() > 1e-2
    assert len(np.unique(simcc_x.argmax(-1))) > 20


@pytest.mark.parametrize("name", BUILT)
def test_second_build_is_a_cache_hit(built, name):
    before = built[name].stat().st_mtime_ns
    assert build_standin(name) == built[name]
    assert built[name].stat().st_mtime_ns == before


@pytest.mark.parametrize("name", BUILT)
def test_forced_rebuild_is_byte_identical(built, name):
    first = built[name].read_bytes()
    assert build_standin(name, force=True).read_bytes() == first


def test_interrupted_build_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", interrupt)
    with pytest.raises(KeyboardInterrupt):
        build_standin("lifter")
    left = [p.name for p in (tmp_path / "standins").iterdir() if p.suffix != ".lock"]
    assert left == []


def test_failed_forced_rebuild_keeps_the_cached_file(built, monkeypatch):
    path = built["lifter"]
    before = path.read_bytes()
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        build_standin("lifter", force=True)
    assert path.read_bytes() == before


def test_key_follows_the_contract():
    spec = get_spec("pose-s-v2")
    assert build.standin_key(spec) == build.standin_key(get_spec("pose-s-v2"))
    assert build.standin_key(spec) != build.standin_key(dataclasses.replace(spec, mean=(0.0, 0.0, 0.0)))
    assert build.standin_key(spec) != build.standin_key(get_spec("pose-s-v1"))


def test_plain_graph_is_not_a_standin(tmp_path):
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([node], "g", [value], [onnx.helper.make_tensor_value_info("y", 1, [1])])
    onnx.save(onnx.helper.make_model(graph), tmp_path / "plain.onnx")
    assert not is_standin(tmp_path / "plain.onnx")

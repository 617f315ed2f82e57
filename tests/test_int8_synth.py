"""INT8 on synthetic scenes with ground truth (``--calib synth``), given boxes (``boxes.json``), trained weights.

The gate's accuracy check is shown on hand-made outputs (a reference that decodes to the truth, candidates
that stay close or drift), so the decision logic is tested without a network; then real INT8 bundles of the
stand-ins trained on the synthetic world are exported and gated on ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy.errors import GateFailedError, InputFileError, InvalidOptionError
from spinepose_deploy.export import calibration, fidelity
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.export.fidelity import Thresholds
from spinepose_deploy.ops import pose as pose_ops
from spinepose_deploy.ops.lifter import lifter_feed
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.synth import dataset
from spinepose_deploy.zoo import fetch, source
from spinepose_deploy.zoo.specs import get_spec, resolve_mode
from spinepose_deploy.zoo.standins import trained

SELECTION = resolve_mode("small", "yolox", "v2")
GRAPHS = {role: GraphInfo.from_spec(spec, input_name="input") for role, spec in SELECTION.graphs().items()}
HAS_TRAINED = all(trained.packed_path(n).is_file() for n in ("pose-s-v2", "lifter"))
needs_trained = pytest.mark.skipif(not HAS_TRAINED, reason=f"no trained stand-ins in {trained.trained_dir()}")


# ------------------------------------------------------------------------------ the synthetic source


def test_synth_source_says_what_it_is_and_keeps_seeds_apart(tmp_path):
    synth = calibration.open_source("synth:3")
    assert isinstance(synth, calibration.SynthSource) and synth.samples == 3
    described = synth.describe()
    assert described["kind"] == "synthetic" and described["ground_truth"] and described["seeds"] == [500_000, 500_002]
    assert synth.summary().startswith("calibration data: synthetic scenes (synth: seeds 500000..500002, 3 samples")
    calib = set(range(described["seeds"][0], described["seeds"][1] + 1))
    gate = range(calibration.SYNTH_GATE_SEED, calibration.SYNTH_GATE_SEED + calibration.SYNTH_LIFTER_GATE_SCENES)
    labelled = {int(label.split("#")[1]) for label in described["holdout"]["frames"]}
    assert not calib & set(gate) and labelled <= set(gate) and max(gate) < dataset.HELDOUT_SEED
    assert calibration.open_source("synth").samples == calibration.DEFAULT_SAMPLES
    assert calibration.open_source("synth", samples=5).samples == 5
    assert isinstance(calibration.open_source(Path("synth")), calibration.SynthSource)  # no such path here
    with pytest.raises(InvalidOptionError, match=r"--calib synth:x: expected 'synth' or 'synth:N'"):
        calibration.open_source("synth:x")
    most = calibration.SYNTH_GATE_SEED - calibration.SYNTH_CALIB_SEED  # calibration seeds stop where the gate's start
    with pytest.raises(InvalidOptionError, match=rf"--calib synth:0: expected 1 to {most} scenes"):
        calibration.open_source("synth:0")
    with pytest.raises(InvalidOptionError, match="--calib synth:4 and --calib-samples 8 disagree"):
        calibration.open_source("synth:4", samples=8)
    (tmp_path / "synth").mkdir()  # an existing folder of that name, given as a path, is a folder
    with pytest.raises(InputFileError, match="has no images"):
        calibration.open_source(tmp_path / "synth")


def test_synth_feeds_are_ground_truth_crops_and_2d():
    synth = calibration.SynthSource(4)
    shots = list(synth.shots())
    # no runners: pose crops come from the (jittered) ground-truth boxes, the lifter gets ground-truth 2D
    feeds = list(calibration.pipeline_feeds(synth, GRAPHS, {}, ("pose", "lifter")))
    assert len(feeds) == 4 and any(feeds)
    for shot, feed in zip(shots, feeds, strict=True):
        truth, people = shot.truth, len(shot.truth.boxes)
        if people == 0:
            assert feed == {}
            continue
        assert feed["pose"]["input"].shape == (people, 3, 256, 192)
        expected, _ = lifter_feed(truth.keypoints, truth.visible.astype(np.float32), truth.intrinsics)
        np.testing.assert_allclose(feed["lifter"]["input"], expected)
        assert np.all(feed["lifter"]["input"][~truth.visible] == 0)
        assert not np.allclose(shot.boxes, truth.boxes)  # a detector's error for calibration ...
    assert all(np.array_equal(s.boxes, s.truth.boxes) for s in synth.gate_shots("pose"))  # ... exact at the gate


# ------------------------------------------------------------------------- the gate on ground truth


def _replay(outputs: list[dict]):
    stream = iter(outputs)
    return lambda feed: next(stream)


def _pose_outputs(frames_: object, shift_px: np.ndarray) -> list[dict]:
    """SimCC one-hot logits at the true keypoints (crop pixels) + ``shift_px`` (N, 37, 2), split like the feeds."""
    truth = frames_.truth
    points = pose_ops.image_to_crop(
        np.concatenate([t.keypoints for t in truth]),
        np.concatenate([t.centers for t in truth]),
        np.concatenate([t.scales for t in truth]),
        (256, 192),
    )
    bins = np.rint((points + shift_px) * 2).astype(int)
    n = len(bins)
    sx, sy = np.zeros((n, 37, 384), np.float32), np.zeros((n, 37, 512), np.float32)
    rows, cols = np.meshgrid(np.arange(n), np.arange(37), indexing="ij")
    sx[rows, cols, np.clip(bins[..., 0], 0, 383)] = 1.0
    sy[rows, cols, np.clip(bins[..., 1], 0, 511)] = 1.0
    sizes = np.cumsum([len(f["input"]) for f in frames_.feeds])[:-1]
    return [{"simcc_x": x, "simcc_y": y} for x, y in zip(np.split(sx, sizes), np.split(sy, sizes), strict=True)]


def _gate(frames_, reference: list[dict], candidate: list[dict]) -> tuple[dict, list[str]]:
    """What the exporter's gate does with an artifact's outputs."""
    ref, got = frames_.run(_replay(reference), _replay(candidate))
    frames_.outputs = (reference, candidate)
    metrics = fidelity.measure(frames_.graph.spec.role.value, ref, got, frames_.decode_boxes(ref, got))
    metrics.update(frames_.accuracy())
    return metrics, fidelity.check(frames_.graph.spec.role.value, metrics, Thresholds())


def _fresh(frames_):
    frames_._reference = None  # a new candidate against a new reference (the cache holds one per graph)
    return frames_


def test_pose_gate_judges_accuracy_not_bin_agreement():
    shots = [calibration.synth_shot(calibration.SYNTH_GATE_SEED + i, jitter=False) for i in range(6)]
    gate = calibration.gate_frames(shots, GRAPHS, {}, "pose")
    people = sum(len(t.boxes) for t in gate.truth)
    assert people > 4 and len(gate.feeds) == 1  # all people of consecutive frames in one batch
    exact = _pose_outputs(gate, np.zeros((people, 37, 2)))
    one_bin = _pose_outputs(gate, np.full((people, 37, 2), 0.5))  # every keypoint half a pixel off
    metrics, failures = _gate(gate, exact, one_bin)
    accuracy = metrics["accuracy"]
    assert metrics["argmax_agreement"] < 0.1  # the FP32-relative proxy would reject ...
    assert accuracy["decides"] and accuracy["fp32"] > 0.99 and not failures  # ... the truth says it is as good
    far = np.zeros((people, 37, 2))
    far[:, ::3] = 40.0  # a third of the keypoints 40 crop px away
    metrics, failures = _gate(_fresh(gate), exact, _pose_outputs(gate, far))
    assert metrics["accuracy"]["change"] < -0.2 and failures and failures[0].startswith("PCK@0.05 vs ground truth")


def test_lifter_gate_uses_a_bound_and_falls_back_without_skill():
    shots = [calibration.synth_shot(calibration.SYNTH_GATE_SEED + i, jitter=False) for i in range(40)]
    gate = calibration.gate_frames(shots, GRAPHS, {}, "lifter")
    truth = np.concatenate([t.keypoints_3d for t in gate.truth])
    sizes = np.cumsum([len(f["input"]) for f in gate.feeds])[:-1]
    split = lambda a: [{"output": part} for part in np.split(a.astype(np.float32), sizes)]  # noqa: E731
    rng = np.random.default_rng(0)
    small = truth + rng.normal(0, 0.001, truth.shape)  # ~1.6 mm per joint (the spine gate allows 3 mm on the chain)
    metrics, failures = _gate(gate, split(truth), split(small))
    accuracy = metrics["accuracy"]
    assert accuracy["decides"] and accuracy["fp32"] < 1e-3 and 0 < accuracy["change"] < 5 and not failures
    assert accuracy["se"] > 0 and accuracy["worst"] > accuracy["change"] and accuracy["people"] == len(truth)
    drifted = truth + np.where(np.arange(37)[:, None] == 19, 0.0, 0.006)  # every joint 10 mm off the root
    metrics, failures = _gate(_fresh(gate), split(truth), split(drifted))
    assert failures and failures[0].startswith("MPJPE vs ground truth +10.")
    # a reference without skill (worse than the mean pose): the FP32-relative threshold decides
    metrics, failures = _gate(_fresh(gate), split(truth * 0), split(truth * 0))
    assert not metrics["accuracy"]["decides"] and "no skill" in metrics["accuracy"]["note"] and not failures


def test_detector_gate_scores_ap50():
    shots = [calibration.synth_shot(calibration.SYNTH_GATE_SEED + i, jitter=False) for i in range(4)]
    gate = calibration.gate_frames(shots, GRAPHS, {}, "detector")
    assert len(gate.feeds) == 4 and len(gate.meta) == 4

    def dets(keep: float) -> list[dict]:
        out = []
        for truth, ratio in zip(gate.truth, gate.meta, strict=True):
            boxes = truth.boxes[: int(len(truth.boxes) * keep)] * ratio  # keep < 1: a one-figure frame loses it
            rows = np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1)[None].astype(np.float32)
            out.append({"dets": rows, "labels": np.zeros(rows.shape[:2], np.int64)})
        return out

    metrics, failures = _gate(gate, dets(1.0), dets(1.0))
    assert metrics["accuracy"]["fp32"] == pytest.approx(1.0) and metrics["accuracy"]["decides"] and not failures
    metrics, failures = _gate(_fresh(gate), dets(1.0), dets(0.4))
    assert metrics["accuracy"]["candidate"] < 0.9 and failures[0].startswith("AP50 vs ground truth")


def test_ratio_se():
    change = np.array([1.0, -1.0, 1.0, -1.0])
    assert fidelity.ratio_se(change, np.ones(4)) == pytest.approx(np.std(change, ddof=1) / 2)
    assert fidelity.ratio_se(np.array([3.0]), np.array([1.0])) == 0.0


# ----------------------------------------------------------------------------------- given boxes


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), np.full((60, 80, 3), 20 * i, np.uint8))
    return folder


def test_boxes_json_gives_the_pose_crops(tmp_path):
    folder = _images(tmp_path / "imgs", 12)
    boxes = {"f00.png": [[10, 5, 50, 55]], "f01.png": [], "f04.png": [[0, 0, 40, 40], [20, 10, 70, 50]]}
    (folder / "boxes.json").write_text(json.dumps(boxes))
    src = calibration.open_source(folder, samples=8)
    assert "person boxes from boxes.json for 3 image(s)" in src.summary() and "boxes.json" in src.describe()["boxes"]
    shots = {s.label: s for s in src.shots()}
    assert shots["f02.png"].boxes is None  # not listed: the detector's boxes
    runners = {"detector": lambda feed: pytest.fail("the detector ran for an image with given boxes")}
    feeds = calibration.frame_feeds(shots["f00.png"], 0, GRAPHS, runners, ("pose",))
    assert feeds["pose"]["input"].shape == (1, 3, 256, 192)
    assert calibration.frame_feeds(shots["f01.png"], 0, GRAPHS, runners, ("pose",)) == {}  # nobody there
    gate = {s.label: s for s in src.gate_shots()}  # every 5th frame: f04, f09
    np.testing.assert_array_equal(gate["f04.png"].boxes, boxes["f04.png"])


def test_boxes_json_errors(tmp_path):
    folder = _images(tmp_path / "imgs", 2)
    for content, message in (
        ("{", "is not valid JSON"),
        ('{"nope.png": []}', "names image(s) not in the folder: nope.png"),
        ('{"f00.png": [[5, 5, 4, 9]]}', "boxes of 'f00.png' must be a list of"),
        ("[1, 2]", "expected an object"),
    ):
        (folder / "boxes.json").write_text(content)
        with pytest.raises(
            InputFileError, match=f"--calib: .*boxes.json.*{message.replace('(', '.').replace(')', '.')}"
        ):
            calibration.open_source(folder)


def test_augmentation_and_mirroring_move_the_boxes():
    image = np.zeros((120, 160, 3), np.uint8)
    box = np.array([[40, 30, 100, 90]], np.float32)
    image[30:90, 40:100] = 255
    for seed in range(6):
        out, move = calibration._augment(image, np.random.default_rng(seed), mirror=True)
        ys, xs = np.nonzero(out[..., 0] > 100)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        moved = move(box)
        assert len(moved) == 1 and np.abs(moved[0] - found).max() <= 2.0, (seed, moved, found)
    mirrored = calibration._mirror_boxes(box, 160)
    np.testing.assert_array_equal(mirrored, [[60, 30, 120, 90]])


# ----------------------------------------------------------------------------- sources of graphs


def _lifter_graph(path: Path, standin: bool) -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        "tiny-lifter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 37, 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 37, 3])],
        [numpy_helper.from_array(np.ones((2, 3), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if standin:
        helper.set_model_props(model, {"standin": "true", "trained": "synthetic"})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("standin", [True, False])
def test_models_dir_graph_says_standin_from_its_metadata(tmp_path, monkeypatch, standin):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))
    _lifter_graph(tmp_path / "models" / "lifter.onnx", standin)
    graph = source.resolve_graph(get_spec("lifter"), models_dir=tmp_path / "models")
    assert graph.standin is standin and graph.path == tmp_path / "models" / "lifter.onnx"


@needs_trained
def test_weights_trained_uses_the_packaged_graphs_unpinned(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))
    graph = source.resolve_graph(get_spec("lifter"), weights="trained")
    assert graph.standin and graph.path == trained.trained_graph("lifter")
    assert graph.sha256 == fetch.sha256_file(graph.path)
    assert not fetch.pins_path().exists()  # package data is not pinned in the user cache
    # a spec without a trained graph gets the random stand-in, labelled as one
    fake = _lifter_graph(tmp_path / "random.onnx", True)
    monkeypatch.setattr("spinepose_deploy.zoo.standins.build_standin", lambda spec: fake)
    assert not trained.packed_path("pose-m-v2").is_file()
    assert source.resolve_graph(get_spec("pose-m-v2"), weights="trained") == source.SourceGraph(
        get_spec("pose-m-v2"), fake, True, fetch.sha256_file(fake)
    )
    with pytest.raises(InvalidOptionError, match="--weights.*trained"):
        source.resolve_graph(get_spec("lifter"), weights="trainde")


# ------------------------------------------------------------------------------------- bundles


def _check_graph(graph: dict, role: str, expected: str = "int8") -> str:
    """A trained graph kept ``expected``: INT8 that passed on ground truth, or the FP16 fallback after every
    round failed (with the report saying why); returns a summary."""
    report, accuracy = graph["int8"], graph["fidelity"]["accuracy"]
    assert (
        graph["standin"]
        and graph["calibration"]["kind"] == "synthetic"
        and len(graph["calibration"]["data_sha256"]) == 64
    )
    assert graph["precision"] == expected, (role, report["rounds"][-1])
    if expected == "int8":
        assert accuracy["decides"] and report["rounds"][-1]["passed"]
        limit = {"pose": -0.01, "lifter": 5.0, "detector": -0.02}[role]
        assert accuracy["worst"] <= limit if role == "lifter" else accuracy["worst"] >= limit
    else:
        assert report["kept"].startswith("fp16") and all(r["failures"] for r in report["rounds"])
    return f"{role}: {graph['precision']} {accuracy['metric']} {accuracy['candidate']} (FP32 {accuracy['fp32']})"


@needs_trained
def test_onnxruntime_int8_trained_pose_and_lifter_gated_on_ground_truth(tmp_path):
    bundle = export_bundle(
        ExportRequest(
            backend="onnxruntime", precision="int8", out=tmp_path / "b", roles=("pose", "lifter"),
            weights="trained", calib="synth:8", fallback="fp16",
        )
    )  # fmt: skip
    assert bundle.manifest["calibration"]["source"] == "synth" and bundle.manifest["standin"]
    # issue 22's spine gate: INT8 pose moves the 2D regional spine angles beyond 6 degrees p95, and the INT8 lifter
    # the spine (chain error or 3D angles), until every node is float: both ship in FP16
    pose, lifter = bundle.graph("pose"), bundle.graph("lifter")
    assert any("flexion2d" in f for r in pose["int8"]["rounds"] for f in r["failures"])
    spine = ("spine", "inclination", "flexion", "lateral_axial")
    assert any(word in f for f in lifter["int8"]["rounds"][0]["failures"] for word in spine)
    print("; ".join(_check_graph(bundle.graph(role), role, "fp16") for role in ("pose", "lifter")))


@needs_trained
@pytest.mark.slow
def test_openvino_int8_small_mode_trained(tmp_path):
    pytest.importorskip("nncf")
    bundle = export_bundle(
        ExportRequest(
            backend="openvino", precision="int8", out=tmp_path / "b", weights="trained", calib="synth:16",
            fallback="fp16",
        )
    )  # fmt: skip
    # issue 22's spine gate keeps the pose graph (2D regional angles 14 deg p95) and the lifter in FP16 here too
    summary = [_check_graph(bundle.graph(role), role, "fp16") for role in ("pose", "lifter")]
    detector = bundle.graph("detector")
    summary.append(f"detector: {detector['precision']} {detector['fidelity']['accuracy']}")
    if trained.packed_path("yolox-tiny").is_file():  # a trained detector: ground truth decides its gate too
        summary[-1] = _check_graph(detector, "detector")
    print("; ".join(summary))


@needs_trained
@pytest.mark.slow
def test_cli_int8_small_mode_trained_prints_accuracy(tmp_path, capsys, monkeypatch):
    from spinepose_deploy.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # table cells on one line

    code = main(
        ["export", "--backend", "onnxruntime", "--precision", "int8", "--calib", "synth:8", "--weights", "trained",
         "--fallback", "fp16", "--out", str(tmp_path / "b")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and "calibration data: synthetic scenes (synth: seeds 500000..500007" in captured.err
    assert "vs ground truth" in captured.out and "PCK@0.05" in captured.out and "MPJPE" in captured.out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    for role in ("pose", "lifter"):  # the spine gate keeps both in FP16 on ONNX Runtime (as the fast test above)
        _check_graph(manifest["graphs"][role], role, "fp16")


@needs_trained
@pytest.mark.slow
def test_random_detector_is_gated_fp32_relative_and_falls_back(tmp_path, monkeypatch):
    """A detector without skill on the truth (random weights): the FP32-relative gate decides; INT8 fails it."""
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))  # no trained detector anywhere
    request = dict(
        backend="onnxruntime", precision="int8", roles=("detector",), weights="standin", calib="synth:4",
        int8_rounds=0,
    )  # fmt: skip
    with pytest.raises(GateFailedError, match="detector: INT8 fails the fidelity gate"):
        export_bundle(ExportRequest(out=tmp_path / "a", **request))
    bundle = export_bundle(ExportRequest(out=tmp_path / "b", fallback="fp16", **request))
    graph = bundle.graph("detector")
    accuracy = graph["int8"]["rounds"][0]["candidates"]["qdq"]["accuracy"]
    assert graph["precision"] == "fp16" and graph["int8"]["kept"].startswith("fp16 (fallback")
    assert not accuracy["decides"] and graph["fidelity"]["accuracy"]["note"].startswith("the FP32 graph has no skill")
    assert any("box recall" in f for f in graph["int8"]["rounds"][0]["failures"])

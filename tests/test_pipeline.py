"""Pipeline over real stand-in graphs: result shapes, one batched pose run per frame, ORT vs OpenVINO,
bad inputs, tracking memory, OpenPose JSON and overlays."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from spinepose_deploy import Pipeline, PoseResult, backends
from spinepose_deploy.errors import InputFileError, InvalidOptionError, UserError
from spinepose_deploy.ops import image as image_io
from spinepose_deploy.ops.skeleton import SPINE_IDS
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.pipeline import draw, io
from spinepose_deploy.pipeline.load import BundleRecipe
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.zoo.specs import ROLES, get_spec

K = 37
BOXES = np.array([[60, 20, 470, 510], [200, 150, 330, 420], [10, 300, 160, 505], [300, 0, 511, 200]], np.float32)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return image_io.read_image(package_data_dir() / "astronaut.jpg")


@pytest.fixture(scope="module")
def pipe(standin_paths):
    """Small-mode stand-ins on ONNX Runtime, lifting on (no bundle export: fast)."""
    names = {"detector": "yolox-tiny", "pose": "pose-s-v2", "lifter": "lifter"}
    sessions = {role: backends.load(standin_paths[name]) for role, name in names.items()}
    graphs = {role: GraphInfo.from_spec(get_spec(name), standin=True) for role, name in names.items()}
    with Pipeline(sessions["detector"], sessions["pose"], sessions["lifter"], graphs=graphs, lift=True) as pipeline:
        yield pipeline


class Counter:
    """Wraps a Session's run and counts calls and batch sizes."""

    def __init__(self, session) -> None:
        self.session, self.calls, self.batches = session, 0, []
        self._run = session.run

    def __call__(self, feeds):
        self.calls += 1
        self.batches.append(len(next(iter(feeds.values()))))
        return self._run(feeds)

    def __enter__(self):
        self.session.run = self
        return self

    def __exit__(self, *exc):
        del self.session.run  # back to the class method


def _check_shapes(result: PoseResult, n: int, lifted: bool = True) -> None:
    assert len(result) == n and result.standin
    assert result.boxes.shape == (n, 4) and result.box_scores.shape == (n,)
    assert result.keypoints.shape == (n, K, 2) and result.keypoints.dtype == np.float32
    assert result.scores.shape == (n, K) and result.scores.dtype == np.float32
    assert (result.keypoints_3d.shape == (n, K, 3)) if lifted else result.keypoints_3d is None
    assert np.isfinite(result.keypoints).all() and np.isfinite(result.keypoints_3d).all()


# ---------------------------------------------------------------- shapes and batching


def test_given_boxes_give_one_pose_per_box_in_one_batched_run(pipe, image):
    with Counter(pipe.sessions["pose"]) as pose, Counter(pipe.sessions["detector"]) as det:
        result = pipe(image, BOXES)
    _check_shapes(result, 4)
    assert (pose.calls, pose.batches, det.calls) == (1, [4], 0)  # the detector is skipped
    np.testing.assert_array_equal(result.boxes, BOXES)
    assert (result.box_scores == 1).all()
    # 3D is camera space in metres: in front of the camera
    assert (result.keypoints_3d[..., 2].mean(axis=1) > 0).all()


def test_detector_path_runs_pose_and_lifter_once_per_frame(pipe, image):
    with Counter(pipe.sessions["pose"]) as pose, Counter(pipe.sessions["lifter"]) as lifter:
        result = pipe(image)
    n = len(result)
    assert n > 0, "the stand-in YOLOX finds boxes above 0.3 on the astronaut"
    _check_shapes(result, n)
    assert (pose.calls, pose.batches, lifter.calls, lifter.batches) == (1, [n], 1, [n])
    assert (result.box_scores > 0.3).all() and (np.diff(result.box_scores) <= 0).all()  # best first


def test_max_people_keeps_the_best_scores(pipe, image):
    everyone = pipe(image)
    pipe_two = Pipeline(
        pipe.sessions["detector"], pipe.sessions["pose"], graphs=pipe.graphs, max_people=2
    )  # shares the sessions; not closed here
    two = pipe_two(image)
    assert len(two) == min(2, len(everyone))
    np.testing.assert_array_equal(two.boxes, everyone.boxes[: len(two)])
    assert two.keypoints_3d is None


def test_static_batch_pose_graph_is_chunked_by_the_session(pipe, image, tmp_path, standin_paths):
    """A pose artifact with a fixed batch of 1 still gets all crops in one Pipeline call."""
    import onnx

    from spinepose_deploy.export import passes

    model = onnx.load(str(standin_paths["pose-s-v2"]))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "pose-b1.onnx"
    onnx.save(passes.simplify(model), str(path))
    with backends.load(path) as session:
        assert session.inputs[0].static_batch == 1
        static = Pipeline(None, session, graphs={"pose": pipe.graphs["pose"]})
        np.testing.assert_allclose(static(image, BOXES).keypoints, pipe(image, BOXES).keypoints, atol=1e-3)


# ---------------------------------------------------------------- bad inputs


def test_missing_and_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such image file"):
        image_io.read_image(tmp_path / "missing.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(InputFileError, match="not a readable image"):
        image_io.read_image(broken)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputFileError, match="not a readable image"):
        image_io.read_image(tmp_path / "empty.png")
    with pytest.raises(InputFileError, match="no such file or folder"):
        io.resolve_input(tmp_path / "nothing.mp4")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputFileError, match="neither an image"):
        io.resolve_input(tmp_path / "notes.txt")


def test_bad_boxes_raise_or_are_ordered(pipe, image):
    with pytest.raises(UserError, match="empty or not finite"):
        pipe(image, np.array([[100, 100, 100, 100]], np.float32))  # zero size
    with pytest.raises(UserError, match="empty or not finite"):
        pipe(image, np.array([[100, 100, np.nan, 200]], np.float32))
    with pytest.raises(UserError, match=r"expected \(N, 4\)"):
        pipe(image, np.zeros((2, 3), np.float32))
    inverted = pipe(image, BOXES[:1, [2, 3, 0, 1]])  # corners swapped: the same box
    np.testing.assert_array_equal(inverted.keypoints, pipe(image, BOXES[:1]).keypoints)
    empty = pipe(image, np.zeros((0, 4), np.float32))
    _check_shapes(empty, 0)


def test_empty_frame_and_wrong_dtype_are_clear_errors(pipe):
    with pytest.raises(InputFileError, match="empty frame"):
        pipe(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(InputFileError, match="dtype float32"):
        pipe(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InputFileError, match="shape"):
        pipe(np.zeros((64, 64, 2), np.uint8))


def test_grayscale_and_rgba_are_converted(pipe, image, tmp_path):
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    as_bgr = pipe(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), BOXES[:2])
    for variant in (gray, gray[..., None]):
        np.testing.assert_array_equal(pipe(variant, BOXES[:2]).keypoints, as_bgr.keypoints)
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 7  # alpha is dropped, not blended
    np.testing.assert_array_equal(pipe(rgba, BOXES[:2]).keypoints, pipe(image, BOXES[:2]).keypoints)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert image_io.read_image(tmp_path / "gray.png").shape == image.shape
    np.testing.assert_array_equal(image_io.read_image(tmp_path / "rgba.png"), image)


def _write_video(path, frames, fps=30.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_video_that_ends_early_stops_with_a_warning(pipe, tmp_path, caplog):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.avi"
    _write_video(path, [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(20)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated: the header still announces 20 frames
    source = io.resolve_input(path).sources[0]
    with caplog.at_level(logging.WARNING), io.VideoReader(source) as reader:
        results = list(pipe.track(reader, [np.array([[10, 10, 150, 110]], np.float32)] * 20, fps=reader.fps))
    assert reader.frame_count == 20 and 0 < reader.frames_read < 20 and len(results) == reader.frames_read
    assert "ended after" in caplog.text
    path.write_bytes(data[: data.find(b"movi") + 4])  # header only: no frame at all
    with caplog.at_level(logging.WARNING), io.VideoReader(source) as reader:
        assert list(reader) == []
    assert "no frame could be read" in caplog.text
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match="cannot open as a video"):
        io.VideoReader(source)


def test_track_boxes_must_cover_every_frame(pipe, image):
    with pytest.raises(UserError, match="ran out at frame 1"):
        list(pipe.track([image, image], [BOXES]))


# ---------------------------------------------------------------- tracking, JSON, overlays


def test_track_gives_stable_ids_smoothing_and_world_space(pipe, image):
    frames = [np.roll(image, 2 * i, axis=1) for i in range(4)]
    boxes = [BOXES[:3] + np.float32([2 * i, 0, 2 * i, 0]) for i in range(4)]
    results = list(pipe.track(frames, boxes, fps=25.0))
    assert [r.track_ids.tolist() for r in results] == [[0, 1, 2]] * 4
    for r in results:
        assert r.keypoints_3d_world.shape == (3, K, 3)
    single = pipe(frames[-1], boxes[-1])
    assert not np.array_equal(results[-1].keypoints, single.keypoints)  # smoothed
    np.testing.assert_array_equal(results[0].keypoints, pipe(frames[0], boxes[0]).keypoints)  # first: as is
    # two track() calls are independent
    again = list(pipe.track(frames[:1], boxes[:1]))
    assert again[0].track_ids.tolist() == [0, 1, 2]


def test_openpose_layout_matches_upstream(pipe, image):
    result = pipe.to_world(pipe(image, BOXES[:2]))
    data = json.loads(json.dumps(result.to_openpose()))
    assert list(data) == ["version", "people", "world_vertical"] and data["version"] == 1.0
    assert data["world_vertical"]["vertical_source"] == "level_camera_prior"  # one frame: no floor evidence yet
    person = data["people"][0]
    assert list(person) == ["pose_keypoints_2d", "pose_keypoints_3d"]
    assert len(person["pose_keypoints_2d"]) == K * 3 and len(person["pose_keypoints_3d"]) == K * 4
    x, y, s = person["pose_keypoints_2d"][:3]
    assert (x, y, s) == pytest.approx((*result.keypoints[0, 0].tolist(), float(result.scores[0, 0])))
    assert person["pose_keypoints_3d"][:3] == pytest.approx(result.keypoints_3d_world[0, 0].tolist())
    spine = result.to_openpose(spine_only=True)["people"][1]
    assert len(spine["pose_keypoints_2d"]) == 9 * 3 and len(spine["pose_keypoints_3d"]) == 9 * 4
    assert spine["pose_keypoints_2d"][:2] == pytest.approx(result.keypoints[1, SPINE_IDS[0]].tolist())
    assert PoseResult.empty().to_openpose() == {"version": 1.0, "people": []}
    two_d = Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs)(image, BOXES[:1])
    assert list(two_d.to_openpose()["people"][0]) == ["pose_keypoints_2d"]


def test_overlay_on_narrow_image_with_panel_and_standin_label(pipe, image):
    narrow = cv2.resize(image, (120, 120))  # upstream's line width would be 0 here
    result = pipe.to_world(pipe(narrow, np.array([[5, 5, 115, 115]], np.float32)))
    overlay = draw.draw_result(narrow, result)
    assert overlay.shape == (120, 120 + 160, 3)  # 3D panel on the right
    assert not np.array_equal(overlay[:, :120], narrow)
    assert (overlay[:12, :60, 2] > 150).any()  # the red STAND-IN label
    plain = draw.draw_result(narrow, PoseResult.empty())
    np.testing.assert_array_equal(plain, narrow)


def test_options_are_checked_up_front(pipe):
    with pytest.raises(InvalidOptionError, match="unknown bogus"):
        Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs, bogus=1)
    with pytest.raises(InvalidOptionError, match="--max-people"):
        Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs, max_people=0)
    with pytest.raises(InvalidOptionError, match="3x3"):
        Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs, intrinsics=np.eye(2))
    with pytest.raises(InvalidOptionError, match="lifter"):
        Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs, lift=True)
    with pytest.raises(InvalidOptionError, match="no detector"):
        Pipeline(None, pipe.sessions["pose"], graphs=pipe.graphs)(np.zeros((8, 8, 3), np.uint8))


def test_video_writer_is_atomic(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError), io.VideoWriter(out, 10) as writer:
        writer.write(np.zeros((32, 48, 3), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with io.VideoWriter(out, 10) as writer:
        for _ in range(3):
            writer.write(np.zeros((32, 48, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 3


# ---------------------------------------------------------------- bundles (slow: exports)


@pytest.fixture(scope="module")
def fp32_bundles(standin_paths):
    return {name: BundleRecipe(name, "fp32", "standin").cached() for name in ("onnxruntime", "openvino")}


@pytest.mark.slow
def test_ort_and_openvino_bundles_agree_within_recorded_tolerance(fp32_bundles, image):
    pytest.importorskip("openvino")
    from spinepose_deploy.bundle.bundle import Bundle

    pipes = {name: Pipeline.from_bundle(path, lift=True) for name, path in fp32_bundles.items()}
    fidelity = {
        role: {name: Bundle.load(path).graph(role)["fidelity"] for name, path in fp32_bundles.items()}
        for role in ("detector", "pose", "lifter")
    }
    try:
        ort, ov = pipes["onnxruntime"], pipes["openvino"]
        # detector: same people; boxes within the recorded max |d dets| (network px -> image px)
        a, b = ort(image), ov(image)
        assert len(a) == len(b) > 0
        ratio = 416 / max(image.shape[:2])
        det_tol = max(f["max_abs"]["dets"] for f in fidelity["detector"].values()) / ratio
        np.testing.assert_allclose(a.boxes, b.boxes, atol=det_tol + 1e-4)
        # pose on the same boxes: argmax agreement and score deviation as recorded
        a, b = ort(image, a.boxes), ov(image, a.boxes)
        pose = fidelity["pose"]
        agree = np.mean(np.abs(a.keypoints - b.keypoints).max(-1) < 1e-3)
        assert agree >= min(f["argmax_agreement"] for f in pose.values())
        score_tol = max(max(f["max_abs"].values()) for f in pose.values())
        np.testing.assert_allclose(a.scores, b.scores, atol=2 * score_tol + 1e-6)
        # lifter on the same 2D: MPJPE within the recorded one
        mm = (
            1000
            * np.linalg.norm(
                ort.lift(a.keypoints, a.scores, image.shape[:2]) - ov.lift(a.keypoints, a.scores, image.shape[:2]),
                axis=-1,
            ).mean()
        )
        assert mm <= 2 * max(f["mpjpe_mm"] for f in fidelity["lifter"].values()) + 1e-3
    finally:
        for p in pipes.values():
            p.close()


@pytest.mark.slow
def test_from_bundle_refuses_another_backend(fp32_bundles):
    with pytest.raises(InvalidOptionError, match="exported for onnxruntime"):
        Pipeline.from_bundle(fp32_bundles["onnxruntime"], backend="openvino")
    with pytest.raises(InvalidOptionError, match="unknown"):
        Pipeline.from_bundle(fp32_bundles["onnxruntime"], backend="tensorflow")


def test_from_zoo_refuses_a_bad_precision_before_building_anything(monkeypatch):
    import spinepose_deploy.export.exporter  # noqa: F401  (imported unpatched: it binds resolve_graph at import)
    from spinepose_deploy.zoo import source

    monkeypatch.setattr(source, "resolve_graph", lambda *a, **k: pytest.fail("resolved a graph"))
    with pytest.raises(InvalidOptionError, match="--precision"):
        Pipeline.from_zoo(backend="onnxruntime", precision="fp8", weights="standin")


@pytest.mark.slow
def test_from_zoo_auto_mixes_backends_per_role_and_falls_back_past_a_failing_choice(image, monkeypatch, caplog):
    pytest.importorskip("openvino")
    from spinepose_deploy.select import auto as select

    def choice(role, backend):
        return select.Choice(role, "", "", backend, "fp32", "cpu", 1.0, 1)

    ranked = {
        "detector": [choice("detector", "tensorrt"), choice("detector", "openvino")],  # no TensorRT here
        "pose": [choice("pose", "onnxruntime")],
        "lifter": [choice("lifter", "openvino")],
    }
    monkeypatch.setattr(select, "ranked_configurations", lambda selection, **kw: ranked)
    with caplog.at_level(logging.WARNING), Pipeline.from_zoo(backend="auto", weights="standin") as pipe:
        assert {r: s.backend for r, s in pipe.sessions.items() if s is not None} == {
            "detector": "openvino",
            "pose": "onnxruntime",
        }
        assert len(pipe(image, BOXES)) == 4
        assert pipe.auto_choice == "detector openvino fp32, pose onnxruntime fp32"
    assert "detector: tensorrt fp32 failed to load" in caplog.text


def test_from_zoo_auto_reads_and_hashes_each_bundle_file_once(monkeypatch):
    """One bundle serves all three roles: its manifest is read and each artifact hashed once per load."""
    from spinepose_deploy.bundle import bundle as bundle_module
    from spinepose_deploy.select import auto as select

    ranked = {role: [select.Choice(role, "", "", "onnxruntime", "fp32", "cpu", 1.0, 1)] for role in ROLES}
    monkeypatch.setattr(select, "ranked_configurations", lambda selection, **kw: ranked)
    Pipeline.from_zoo(backend="auto", weights="standin", lift=True).close()  # exports into the cache once
    hashed: list[str] = []
    reads: list[str] = []
    real_hash, real_load = bundle_module.sha256_file, bundle_module.Bundle.load.__func__

    def counting_hash(path):
        hashed.append(Path(path).name)
        return real_hash(path)

    def counting_load(cls, path, **kw):
        reads.append(str(path))
        return real_load(cls, path, **kw)

    monkeypatch.setattr(bundle_module, "sha256_file", counting_hash)
    monkeypatch.setattr(bundle_module.Bundle, "load", classmethod(counting_load))
    with Pipeline.from_zoo(backend="auto", weights="standin", lift=True) as pipe:
        assert set(pipe.auto_choice.split(", ")) == {f"{role} onnxruntime fp32" for role in ROLES}
    assert len(reads) == 1
    assert sorted(hashed) == ["detector.onnx", "lifter.onnx", "pose.onnx"]


def test_auto_picks_a_reduced_precision_whose_gate_passes_with_the_auto_weights(monkeypatch):
    """What picks BF16 on a BF16 host: weights auto (offline: the trained stand-ins) give reduced-precision
    bundles that pass their gate, so the ranking's faster, lower precision is loaded, not skipped."""
    from spinepose_deploy.select import auto as select

    monkeypatch.setenv("SPINEPOSE_DEPLOY_OFFLINE", "1")
    ranked = {role: [select.Choice(role, "", "", "onnxruntime", precision, "cpu", latency, 1)
                     for precision, latency in (("fp16", 1.0), ("fp32", 2.0))] for role in ROLES}  # fmt: skip
    monkeypatch.setattr(select, "ranked_configurations", lambda selection, **kw: ranked)
    with Pipeline.from_zoo(backend="auto") as pipe:
        assert pipe.auto_choice == "detector onnxruntime fp16, pose onnxruntime fp16"
        assert pipe.standin and pipe.graphs["pose"].model == "pose-s-v2"


# ---------------------------------------------------------------- memory


def _synthetic_frames(count: int, size=(240, 320)):
    """Four walking stick figures on a moving background, with their boxes."""
    h, w = size
    for t in range(count):
        frame = np.full((h, w, 3), 40 + (t % 50), np.uint8)
        boxes = []
        for p in range(4):
            x = int((30 + 70 * p + 2 * t) % (w - 40)) + 5
            y = 40 + 10 * (p % 2)
            cv2.rectangle(frame, (x, y), (x + 30, y + 150), (80 + 40 * p, 160, 200), -1)
            cv2.circle(frame, (x + 15, y - 12), 10, (200, 200, 220), -1)
            boxes.append([x - 4, y - 26, x + 34, y + 154])
        yield frame, np.asarray(boxes, np.float32)


@pytest.mark.slow
def test_track_300_frames_memory_stays_flat(pipe):
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    frames = _synthetic_frames(300)
    pairs = iter(frames)
    current: list = []

    def images():
        for frame, boxes in pairs:
            current[:] = [boxes]
            yield frame

    def boxes():
        while True:
            yield current[0]

    baseline = None
    for index, result in enumerate(pipe.track(images(), boxes())):
        assert len(result) == 4
        if index == 30:  # after warm-up (world frame frozen, arenas sized)
            gc.collect()
            baseline = process.memory_info().rss
    gc.collect()
    growth = (process.memory_info().rss - baseline) / 2**20
    print(f"RSS after warm-up {baseline / 2**20:.1f} MB, growth over 270 frames {growth:+.2f} MB")
    assert index == 299 and growth < 20, f"RSS grew {growth:.1f} MB over 270 frames"

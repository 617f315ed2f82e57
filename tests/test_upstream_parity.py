"""Pipeline(seed_compat=True) against the upstream ``spinepose`` 2.1.0 package on the same stand-in graphs.

Upstream's estimator is pointed at the local stand-in ONNX files (its MODE table and lifter config are
overridden in a subclass), so nothing downloads. Both run ONNX Runtime on the CPU with the same
optimisation level; the only structural difference is that upstream runs one crop per session call and
we run all crops of a frame as one batch, so agreement is to float tolerance, not bit-exact.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spinepose_deploy import backends
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.pipeline.pipeline import Pipeline
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.zoo.specs import get_spec

spinepose = pytest.importorskip("spinepose", reason="upstream spinepose 2.1.0 is not installed (dev extra)")

KPT_ATOL = 1e-3  # px: SimCC bins are 0.5 crop px, so a float difference never moves a keypoint this far
SCORE_ATOL = 1e-4
LIFT_ATOL = 1e-4  # metres


def _upstream_class(paths: dict, detector_name: str):
    """SpinePoseEstimator whose "small" mode reads the local stand-in files."""
    from spinepose import SpinePoseEstimator

    det_hw = get_spec(detector_name).input_size
    mode = {
        "det_yolox": str(paths.get("yolox-tiny", "")),
        "det_yolox_input_size": get_spec("yolox-tiny").input_size,
        "det_rfdetr": str(paths.get("rfdetr-n", "")),
        "det_rfdetr_input_size": get_spec("rfdetr-n").input_size if "rfdetr-n" in paths else det_hw,
        "pose": str(paths["pose"]),
        "pose_input_size": (192, 256),  # upstream's RTMPose takes (width, height)
    }
    lifter = {"onnx_model": str(paths["lifter"]), "model_input_size": (37, 2), "mean": (0.0, 0.0), "std": (1.0, 1.0)}
    return type("LocalSpinePose", (SpinePoseEstimator,), {"MODE": {"small": mode}, "LIFTING_MODEL_CONFIG": lifter})


def _ours(paths: dict, detector_name: str, pose_name: str, **options) -> Pipeline:
    names = {"detector": detector_name, "pose": pose_name, "lifter": "lifter"}
    files = {"detector": paths[detector_name], "pose": paths["pose"], "lifter": paths["lifter"]}
    sessions = {role: backends.load(files[role], backend="onnxruntime") for role in names}
    graphs = {role: GraphInfo.from_spec(get_spec(name), standin=True) for role, name in names.items()}
    return Pipeline(sessions["detector"], sessions["pose"], sessions["lifter"], graphs=graphs, seed_compat=True,
                    **options)  # fmt: skip


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return cv2.imread(str(package_data_dir() / "astronaut.jpg"), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def paths(standin_paths) -> dict:
    return {**standin_paths, "pose": standin_paths["pose-s-v2"]}


BOXES = np.array([[60, 20, 470, 510], [200, 150, 330, 420], [10, 300, 160, 505], [300, 0, 511, 200]], np.float32)


def test_given_boxes_keypoints_scores_and_3d_match_upstream(paths, image):
    upstream = _upstream_class(paths, "yolox-tiny")(
        mode="small", detector="yolox", enable_lifting=True, hardware_acceleration=False, mixed_precision=False
    )
    up_kpts, up_scores, up_3d = upstream(image, BOXES)
    with _ours(paths, "yolox-tiny", "pose-s-v2", lift=True) as ours:
        result = ours(image, BOXES)
    np.testing.assert_allclose(result.keypoints, up_kpts, atol=KPT_ATOL)
    np.testing.assert_allclose(result.scores, up_scores, atol=SCORE_ATOL)
    np.testing.assert_allclose(result.keypoints_3d, up_3d, atol=LIFT_ATOL)
    upstream.close()


def test_detector_path_matches_upstream(paths, image):
    upstream = _upstream_class(paths, "yolox-tiny")(
        mode="small", detector="yolox", hardware_acceleration=False, mixed_precision=False
    )
    up_boxes = upstream.detect(image)
    up_kpts, up_scores = upstream(image)
    with _ours(paths, "yolox-tiny", "pose-s-v2") as ours:
        result = ours(image)
    assert len(result) == len(up_boxes) > 0, "the stand-in detector should find someone on the astronaut"
    np.testing.assert_allclose(result.boxes, up_boxes, atol=1e-3)
    np.testing.assert_allclose(result.keypoints, up_kpts, atol=KPT_ATOL)
    np.testing.assert_allclose(result.scores, up_scores, atol=SCORE_ATOL)
    upstream.close()


def test_seed_compat_keeps_intrinsics_and_scale_across_calls_like_upstream(paths, image):
    upstream = _upstream_class(paths, "yolox-tiny")(
        mode="small", detector="yolox", enable_lifting=True, hardware_acceleration=False, mixed_precision=False
    )
    small = cv2.resize(image, (320, 240))
    with _ours(paths, "yolox-tiny", "pose-s-v2", lift=True) as ours:
        for frame, boxes in ((image, BOXES), (small, BOXES[:2] * 0.5)):  # a second, differently sized frame
            up_3d = upstream(frame, boxes)[2]
            np.testing.assert_allclose(ours(frame, boxes).keypoints_3d, up_3d, atol=LIFT_ATOL)
    upstream.close()


def _moving_frames(image: np.ndarray, count: int) -> list[np.ndarray]:
    """The image shifted a few pixels per frame, so tracks match and smoothing has work to do."""
    h, w = image.shape[:2]
    return [cv2.warpAffine(image, np.float32([[1, 0, 3 * i], [0, 1, 2 * i]]), (w, h)) for i in range(count)]


@pytest.mark.slow
def test_track_with_lifting_in_world_space_matches_upstream_pose_tracker(paths, image):
    """Detection capped at 10, lifting with the tracker's 0.3 threshold, the world frame over warm-up
    frames. Smoothing is off: the stand-in detector's boxes jump between frames, so upstream's id
    bookkeeping (which smooths the wrong poses once a pose goes untracked) cannot be compared; the
    One-Euro arithmetic itself is checked against the OneEuroFilter package in test_pipeline_geometry."""
    from spinepose import PoseTracker

    frames = _moving_frames(image, 6)
    tracker = PoseTracker(
        _upstream_class(paths, "yolox-tiny"), mode="small", detector="yolox", smoothing=False, enable_lifting=True,
        warmup_frames=3, hardware_acceleration=False, mixed_precision=False,
    )  # fmt: skip
    expected = [tracker(frame) for frame in frames]
    tracker.close()
    with _ours(paths, "yolox-tiny", "pose-s-v2", lift=True, warmup_frames=3, smoothing=False) as ours:
        got = list(ours.track(frames, fps=30.0))
    for (kpts, scores, world), result in zip(expected, got, strict=True):
        np.testing.assert_allclose(result.keypoints, kpts, atol=KPT_ATOL)
        np.testing.assert_allclose(result.scores, scores, atol=SCORE_ATOL)
        np.testing.assert_allclose(result.keypoints_3d_world, world, atol=LIFT_ATOL)


def test_detection_interval_matches_upstream_det_frequency(paths, image):
    """seed_compat with det_every=3: upstream's fixed schedule, boxes carried from the tracked keypoints.

    The carried boxes equal upstream's ``bboxes_last_frame`` to float32 rounding (ours keeps float32 keypoints,
    upstream float64); on the random-weight pose graph that rounding can flip a flat SimCC row's argmax, so the
    carried frames' keypoints are compared as a share, the detection frames exactly."""
    from spinepose import PoseTracker

    frames = _moving_frames(image, 7)
    tracker = PoseTracker(
        _upstream_class(paths, "yolox-tiny"), mode="small", detector="yolox", smoothing=False, det_frequency=3,
        hardware_acceleration=False, mixed_precision=False,
    )  # fmt: skip
    expected, carried = [], [None]
    for frame in frames:
        expected.append(tracker(frame))
        carried.append(np.asarray(tracker.bboxes_last_frame, np.float64).reshape(-1, 4))
    tracker.close()
    with _ours(paths, "yolox-tiny", "pose-s-v2", smoothing=False, det_every=3) as ours:
        got = list(ours.track(frames, fps=30.0))
    assert any(len(kpts) for kpts, _ in expected[1:3])  # the carried frames have people to compare
    for index, ((kpts, scores), result) in enumerate(zip(expected, got, strict=True)):
        if index % 3 == 0:
            np.testing.assert_allclose(result.keypoints, kpts, atol=KPT_ATOL)
            np.testing.assert_allclose(result.scores, scores, atol=SCORE_ATOL)
            continue
        np.testing.assert_allclose(result.boxes, carried[index][:10], atol=1e-3)
        assert result.keypoints.shape == kpts.shape
        same = np.linalg.norm(result.keypoints - kpts, axis=-1) < KPT_ATOL
        assert same.size == 0 or same.mean() >= 0.9, same.mean()


@pytest.mark.slow
def test_rfdetr_and_v1_pose_match_upstream(paths, image):
    from spinepose_deploy.zoo.standins import build_standin

    local = {**paths, "rfdetr-n": build_standin("rfdetr-n"), "pose": build_standin("pose-s-v1")}
    upstream = _upstream_class(local, "rfdetr-n")(
        mode="small", detector="rfdetr", model_version="v1", hardware_acceleration=False, mixed_precision=False
    )
    up_boxes = upstream.detect(image)
    up_kpts, up_scores = upstream(image)
    with _ours(local, "rfdetr-n", "pose-s-v1") as ours:
        result = ours(image)
    assert len(result) == len(up_boxes) > 0
    np.testing.assert_allclose(result.boxes, up_boxes, atol=1e-3)
    np.testing.assert_allclose(result.keypoints, up_kpts, atol=KPT_ATOL)  # v1 spine smoothing included
    np.testing.assert_allclose(result.scores, up_scores, atol=SCORE_ATOL)
    upstream.close()

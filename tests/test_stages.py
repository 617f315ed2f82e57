"""Stage objects: the calibration path and the runtime path feed each graph the very same arrays.

Runtime = ``Pipeline`` over ONNX Runtime Sessions (the Sessions record every feed they get); calibration =
``export.calibration.frame_feeds`` with the same graphs as FP32 runners. Same frame, same boxes -> identical
detector input, pose crops and lifter input.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinepose_deploy import Pipeline, backends
from spinepose_deploy.errors import InvalidOptionError
from spinepose_deploy.export import calibration
from spinepose_deploy.ops import image as image_io
from spinepose_deploy.ops import lifter as lift_ops
from spinepose_deploy.ops.pose import smooth_spine_v1
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.stages import Detector, GraphInfo, Lifter, PoseEstimator
from spinepose_deploy.zoo.specs import get_spec

NAMES = {"detector": "yolox-tiny", "pose": "pose-s-v2", "lifter": "lifter"}
BOXES = np.array([[60, 20, 470, 510], [200, 150, 330, 420], [10, 300, 160, 505]], np.float32)


class Recorder:
    """Wraps a Session's ``run`` and keeps a copy of every feed."""

    def __init__(self, session) -> None:
        self.session, self.feeds = session, []
        self._run = session.run

    def __call__(self, feeds):
        self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self._run(feeds)

    def __enter__(self):
        self.session.run = self
        return self

    def __exit__(self, *exc):
        del self.session.run


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return image_io.read_image(package_data_dir() / "astronaut.jpg")


@pytest.fixture(scope="module")
def sessions(standin_paths):
    loaded = {role: backends.load(standin_paths[name]) for role, name in NAMES.items()}
    yield loaded
    for session in loaded.values():
        session.close()


@pytest.fixture(scope="module")
def graphs(sessions) -> dict[str, GraphInfo]:
    return {
        role: GraphInfo.from_spec(get_spec(NAMES[role]), standin=True, input_name=sessions[role].inputs[0].name)
        for role in NAMES
    }


def _pipeline(sessions, graphs, **options) -> Pipeline:
    return Pipeline(sessions["detector"], sessions["pose"], sessions["lifter"], graphs=graphs, **options)


def test_calibration_feeds_equal_runtime_feeds(image, sessions, graphs):
    runners = {role: session.run for role, session in sessions.items()}
    shot = calibration.Shot("astronaut", image, BOXES)
    calib = calibration.frame_feeds(shot, 0, graphs, runners, ("detector", "pose", "lifter"))

    # calibration feeds the lifter every point as visible (its documented choice; stand-in scores are
    # meaningless): compare with the runtime's keypoints normalised the same way
    pipe = _pipeline(sessions, graphs, lift=True)
    with Recorder(sessions["detector"]) as det, Recorder(sessions["pose"]) as pose, Recorder(sessions["lifter"]):
        pipe.detect(image)
        keypoints, scores = pipe.estimate(image, BOXES)
    assert len(det.feeds) == 1 and len(pose.feeds) == 1
    np.testing.assert_array_equal(calib["detector"][graphs["detector"].input_name],
                                  det.feeds[0][graphs["detector"].input_name])  # fmt: skip
    np.testing.assert_array_equal(calib["pose"][graphs["pose"].input_name], pose.feeds[0][graphs["pose"].input_name])
    assert calib["pose"][graphs["pose"].input_name].shape == (3, 3, 256, 192)

    k = lift_ops.estimate_intrinsics(image.shape[1], image.shape[0])
    runtime_lifter, _ = Lifter(graphs["lifter"]).preprocess(keypoints, np.ones_like(scores), k)
    np.testing.assert_array_equal(calib["lifter"][graphs["lifter"].input_name],
                                  runtime_lifter[graphs["lifter"].input_name])  # fmt: skip
    # and the runtime's lifter run is fed exactly that when every keypoint passes the threshold
    with Recorder(sessions["lifter"]) as lifter:
        pipe.lift(keypoints, np.ones_like(scores), image.shape[:2])
    np.testing.assert_array_equal(lifter.feeds[0][graphs["lifter"].input_name],
                                  calib["lifter"][graphs["lifter"].input_name])  # fmt: skip


def test_calibration_crops_come_from_the_runtime_detector_boxes(image, sessions, graphs):
    """Without given boxes calibration crops the FP32 detector's boxes, in the runtime's score order."""
    runners = {role: session.run for role, session in sessions.items()}
    feeds = calibration.frame_feeds(image, 3, graphs, runners, ("pose",))
    boxes, _ = Detector(graphs["detector"], sessions["detector"].run)(image)
    name = graphs["pose"].input_name
    # the random stand-in may find nobody: then calibration's fallback boxes
    crop = boxes[: calibration.MAX_CROPS] if len(boxes) else calibration.frames.person_boxes(image, 2, 3)
    expected = PoseEstimator(graphs["pose"]).preprocess(image, crop)[0][name]
    np.testing.assert_array_equal(feeds["pose"][name], expected)


def test_v1_pose_stage_smooths_the_spine_for_every_caller(image, sessions, graphs):
    """The v1 spine rule lives in the stage: a v1 GraphInfo changes the inner spine points, v2 does not."""
    v2 = PoseEstimator(graphs["pose"], sessions["pose"].run)
    v1 = PoseEstimator(GraphInfo(**{**graphs["pose"].__dict__, "version": "v1"}), sessions["pose"].run)
    k2, s2 = v2(image, BOXES)
    k1, s1 = v1(image, BOXES)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(k1, smooth_spine_v1(k2, s2)[0])
    assert not np.array_equal(k1, k2)


def test_stage_without_runner_only_preprocesses(image, graphs):
    pose = PoseEstimator(graphs["pose"])
    feed, crops = pose.preprocess(image, BOXES)
    assert feed[graphs["pose"].input_name].shape == (3, 3, 256, 192) and len(crops) == 3
    with pytest.raises(InvalidOptionError, match="no Session to run"):
        pose(image, BOXES)

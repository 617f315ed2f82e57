"""Detection interval: option checks, adaptive triggers, and the one-frame-ahead runner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from spinepose_deploy.errors import InvalidOptionError
from spinepose_deploy.pipeline.detect_policy import DetectionPolicy, DetectionSchedule, check_det_every
from spinepose_deploy.pipeline.overlap import ahead
from spinepose_deploy.pipeline.pipeline import PipelineOptions


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, r"--det-every: 0, expected a positive whole number"),
        (-3, r"--det-every: -3, expected a positive"),
        ("2.5", r"--det-every: '2.5' is not a whole number"),
        (2.5, r"--det-every: 2.5, expected"),
        ("x", r"--det-every: 'x' is not a whole number"),
        (True, r"--det-every: True"),
    ],
)
def test_bad_intervals_are_one_line_errors(value, message):
    with pytest.raises(InvalidOptionError, match=message) as info:
        check_det_every(value)
    assert "\n" not in str(info.value)


def test_good_intervals_and_defaults():
    assert check_det_every("5") == 5 and check_det_every(3.0) == 3 and check_det_every(np.int64(2)) == 2
    assert PipelineOptions(seed_compat=True).detection_policy() == DetectionPolicy(1, adaptive=False)
    assert PipelineOptions(det_every=4, seed_compat=True).detection_policy() == DetectionPolicy(4, adaptive=False)
    assert PipelineOptions().detection_policy().adaptive
    with pytest.raises(InvalidOptionError, match="--det-every: 0"):
        PipelineOptions(det_every=0)


FRAME = np.full((100, 200, 3), 90, np.uint8)
INSIDE = np.array([[50, 20, 90, 80]], np.float32)


def _schedule(every: int = 5, adaptive: bool = True, boxes=INSIDE, score: float = 0.9, lost=False):
    schedule = DetectionSchedule(DetectionPolicy(every, adaptive=adaptive))
    assert schedule.decide(0, FRAME) == "first"
    schedule.observe(boxes, np.ones(len(boxes)), np.full((len(boxes), 37), score), lost)
    return schedule


def test_carried_boxes_are_reused_until_due():
    schedule = _schedule()
    assert [schedule.decide(i, FRAME) for i in (1, 2, 3, 4, 5)] == [None, None, None, None, "due"]
    np.testing.assert_array_equal(schedule.carried.boxes, INSIDE)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"lost": True}, "lost"),
        ({"score": 0.1}, "low score"),
        ({"boxes": np.array([[0, 20, 40, 80]], np.float32)}, "edge"),
        ({"boxes": np.array([[150, 20, 199, 80]], np.float32)}, "edge"),
        ({"boxes": np.zeros((0, 4), np.float32)}, "empty"),
    ],
)
def test_adaptive_triggers_redetect_at_once(kwargs, reason):
    schedule = _schedule(**kwargs)
    if reason in ("edge", "empty"):  # these last for many frames: every other frame at most
        assert schedule.decide(1, FRAME) is None
    assert schedule.decide(2, FRAME) == reason
    assert _schedule(adaptive=False, **kwargs).decide(1, FRAME) is None  # seed_compat: upstream's fixed interval


def test_scene_cut_triggers_redetect():
    schedule = _schedule()
    assert schedule.decide(1, FRAME) is None
    schedule.observe(INSIDE, np.ones(1), np.full((1, 37), 0.9), False)
    assert schedule.decide(2, np.full_like(FRAME, 250)) == "scene cut"


def test_ahead_keeps_order_bounds_memory_and_raises_in_the_caller():
    started = []

    def slow_square(x: int) -> int:
        started.append(x)
        time.sleep(0.001 * (x % 3))
        return x * x

    with ahead(slow_square, range(50), depth=2) as stream:
        first = next(stream)
        time.sleep(0.05)
        assert first == 0 and len(started) <= 4  # at most depth results waiting plus the one being made
        assert [first, *stream] == [x * x for x in range(50)]

    def fail_at_3(x: int) -> int:
        if x == 3:
            raise ValueError("frame 3 is broken")
        return x

    with pytest.raises(ValueError, match="frame 3 is broken"), ahead(fail_at_3, range(10)) as stream:
        assert list(stream)


def test_closing_ahead_stops_the_worker():
    def frames():
        yield from range(10**6)

    stream = ahead(lambda x: x, frames(), depth=1)
    assert next(stream) == 0
    stream.close()
    assert not any(t.name == "spinepose-ahead" and t.is_alive() for t in threading.enumerate())


# ---------------------------------------------------------------- track over synthetic walking video


@pytest.fixture(scope="module")
def walking_pipe():
    """Trained small-mode stand-ins on ONNX Runtime (no export: their ONNX files loaded directly)."""
    from spinepose_deploy import Pipeline, backends
    from spinepose_deploy.pipeline.pipeline import GraphInfo
    from spinepose_deploy.zoo.standins import trained

    names = {"detector": "yolox-tiny", "pose": "pose-s-v2"}
    if not all(trained.packed_path(n).is_file() for n in names.values()):
        pytest.skip("no trained yolox-tiny / pose-s-v2 graphs in the package")
    sessions = {role: backends.load(trained.trained_graph(n), backend="onnxruntime") for role, n in names.items()}
    from spinepose_deploy.zoo.specs import get_spec

    graphs = {role: GraphInfo.from_spec(get_spec(n), standin=True) for role, n in names.items()}
    with Pipeline(sessions["detector"], sessions["pose"], graphs=graphs) as pipe:
        yield pipe


@pytest.fixture(scope="module")
def clip():
    from spinepose_deploy.synth.video import WalkingClip

    return list(WalkingClip(3, frames=40, people=3, size=(240, 320)))


class _CountRuns:
    def __init__(self, session):
        self.session, self.calls, self.real = session, 0, session.run

    def __call__(self, feeds):
        self.calls += 1
        return self.real(feeds)

    def __enter__(self):
        self.session.run = self
        return self

    def __exit__(self, *exc):
        del self.session.run


def _track(pipe, clip, **options):
    from spinepose_deploy.pipeline.pipeline import PipelineOptions

    saved = pipe.options
    pipe.options = PipelineOptions.build(saved, **options)
    try:
        with _CountRuns(pipe.sessions["detector"]) as counter:
            results = list(pipe.track((f.image for f in clip), fps=30.0))
    finally:
        pipe.options = saved
    return results, counter.calls


def test_overlap_gives_the_same_results_in_order(walking_pipe, clip):
    ahead_results, _ = _track(walking_pipe, clip, det_every=3, overlap=True)
    serial_results, _ = _track(walking_pipe, clip, det_every=3, overlap=False)
    for a, b in zip(ahead_results, serial_results, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)


def test_interval_runs_the_detector_less_and_keeps_people(walking_pipe, clip):
    from spinepose_deploy.synth.metrics import track_accuracy

    every_frame, calls_1 = _track(walking_pipe, clip, det_every=1)
    fixed, calls_5 = _track(walking_pipe, clip, det_every=5, det_adaptive=False)
    adaptive, calls_adaptive = _track(walking_pipe, clip, det_every=5)
    assert calls_1 == len(clip) and calls_5 == len(range(0, len(clip), 5))
    assert calls_5 <= calls_adaptive < calls_1
    reference = track_accuracy(clip, every_frame)
    assert reference["pck"] > 0.5  # the trained graphs see the walkers
    assert track_accuracy(clip, adaptive)["pck"] >= reference["pck"] - 0.1


def test_ctrl_c_in_the_frame_source_stops_the_worker(walking_pipe, clip):
    def frames():
        yield clip[0].image
        yield clip[1].image
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(walking_pipe.track(frames()))
    assert not any(t.name == "spinepose-ahead" and t.is_alive() for t in threading.enumerate())

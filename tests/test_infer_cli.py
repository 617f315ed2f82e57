"""``spinepose-deploy infer``: image, folder and video inputs; OpenPose JSON as upstream; clear errors."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from spinepose_deploy.cli import main
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.pipeline.load import BundleRecipe

ASTRONAUT = package_data_dir() / "astronaut.jpg"


@pytest.fixture(scope="module")
def bundle(standin_paths):
    """The small ORT fp32 stand-in bundle (the same cache entry ``from_zoo(weights="standin")`` uses)."""
    return BundleRecipe("onnxruntime", "fp32", "standin").cached()


def _video(path, count=5, size=(160, 192)):
    image = cv2.resize(cv2.imread(str(ASTRONAUT)), size[::-1])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size[::-1])
    for i in range(count):
        writer.write(np.roll(image, 3 * i, axis=1))
    writer.release()
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


# ---------------------------------------------------------------- fast: checked before any model loads


def test_missing_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["infer", str(tmp_path / "nope.jpg")]) == 2
    assert "nope.jpg: no such file or folder" in _one_line_error(capsys)


def test_json_file_for_a_video_and_zoo_options_with_a_bundle_are_refused(tmp_path, capsys):
    video = _video(tmp_path / "clip.avi")
    assert main(["infer", str(video), "--json", str(tmp_path / "out.json")]) == 2
    assert "give a folder" in _one_line_error(capsys)
    assert main(["infer", str(ASTRONAUT), "--bundle", str(tmp_path), "--mode", "large"]) == 2
    assert "--mode: not allowed with --bundle" in _one_line_error(capsys)
    assert main(["infer", str(ASTRONAUT), "--vis", str(tmp_path / "o.mp4")]) == 2
    assert "video file for an image input" in _one_line_error(capsys)


@pytest.mark.parametrize(("value", "expected"), [("0", "--det-every: 0, expected a positive"),
                                               ("-2", "--det-every: -2, expected"),
                                               ("2.5", "--det-every: '2.5' is not a whole number")])
def test_bad_detection_interval_is_one_line_before_any_model_loads(tmp_path, capsys, value, expected):
    video = _video(tmp_path / "clip.avi")
    assert main(["infer", str(video), "--det-every", value]) == 2
    assert expected in _one_line_error(capsys)


def test_show_is_refused_up_front_without_a_gui(capsys):
    from spinepose_deploy.pipeline.io import gui_available

    if gui_available():
        pytest.skip("this OpenCV has a GUI: --show would open a window")
    assert main(["infer", str(ASTRONAUT), "--show"]) == 2
    assert "--show: this OpenCV build has no GUI" in _one_line_error(capsys)


# ---------------------------------------------------------------- slow: run the stand-in bundle


@pytest.mark.slow
def test_image_json_and_overlay_like_upstream(bundle, tmp_path, capsys):
    out_json, out_vis = tmp_path / "res" / "astronaut.json", tmp_path / "vis" / "astronaut.png"
    argv = ["infer", str(ASTRONAUT), "--bundle", str(bundle), "--json", str(out_json), "--vis", str(out_vis), "--lift"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "STAND-IN" in captured.err and "1 frames" in captured.out
    data = json.loads(out_json.read_text())
    assert list(data) == ["version", "people"] and data["version"] == 1.0 and data["people"]
    for person in data["people"]:
        assert list(person) == ["pose_keypoints_2d", "pose_keypoints_3d"]
        assert len(person["pose_keypoints_2d"]) == 37 * 3 and len(person["pose_keypoints_3d"]) == 37 * 4
    overlay = cv2.imread(str(out_vis))
    assert overlay.shape[0] == 512 and overlay.shape[1] > 512  # the 3D panel is appended
    assert [p.name for p in out_json.parent.iterdir()] == ["astronaut.json"]  # no temporaries left


@pytest.mark.slow
def test_folder_gives_one_json_per_image_and_per_video_frame(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(ASTRONAUT, folder / "a.jpg")
    shutil.copy(package_data_dir() / "grace_hopper.jpg", folder / "b.jpg")
    _video(folder / "c.avi", count=3)
    assert main(["infer", str(folder), "--bundle", str(bundle), "--json", str(tmp_path / "out"), "--spine-only"]) == 0
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert names == ["a.json", "b.json", "c/frame_00000.json", "c/frame_00001.json", "c/frame_00002.json"]
    for person in json.loads((tmp_path / "out" / "a.json").read_text())["people"]:
        assert list(person) == ["pose_keypoints_2d"] and len(person["pose_keypoints_2d"]) == 9 * 3


@pytest.mark.slow
def test_video_gives_one_json_per_frame_and_an_overlay_video(bundle, tmp_path, capsys):
    video = _video(tmp_path / "clip.avi", count=5)
    out = tmp_path / "json"
    # no --bundle: from_zoo exports (or reuses) the same cached stand-in bundle
    argv = ["infer", str(video), "--backend", "onnxruntime", "--weights", "standin", "--json", str(out),
            "--vis", str(tmp_path / "o.mp4"), "--lift"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.json" for i in range(5)]
    assert "5 frames" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, frame = capture.read()
    assert ok and frame.shape[0] == 160 and frame.shape[1] > 192  # overlay + 3D panel
    for path in out.iterdir():
        data = json.loads(path.read_text())
        assert data["version"] == 1.0 and all(len(p["pose_keypoints_3d"]) == 37 * 4 for p in data["people"])

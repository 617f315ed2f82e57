"""`spinepose-deploy synth` writes scenes with ground truth; `infer --weights trained` finds the figures in them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinepose_deploy.cli import main
from spinepose_deploy.synth import metrics
from spinepose_deploy.zoo.standins import trained


def test_synth_writes_png_and_ground_truth_json(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "scenes"), "--count", "2", "--seed", "1000004"]) == 0
    record = json.loads((tmp_path / "scenes" / "scene_1000004.json").read_text())
    assert record["seed"] == 1000004 and record["size_hw"] and len(record["keypoint_names"]) == 37
    person = record["people"][0]
    assert len(person["keypoints_xy"]) == 37 and len(person["keypoints_3d_m"]) == 37 and len(person["box_xyxy"]) == 4
    assert (tmp_path / "scenes" / "scene_1000005.png").stat().st_size > 10_000
    assert "infer" in capsys.readouterr().out


def test_synth_refuses_a_file_as_the_folder(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("mine")
    assert main(["synth", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


@pytest.mark.skipif(len(trained.available()) < 3, reason="needs the packaged trained detector, pose and lifter")
def test_infer_with_trained_standins_finds_the_figures(tmp_path):
    assert main(["synth", str(tmp_path), "--count", "1", "--seed", "1000004"]) == 0
    scene = tmp_path / "scene_1000004.png"
    out = tmp_path / "result.json"
    vis = tmp_path / "v.jpg"
    argv = ["infer", str(scene), "--backend", "onnxruntime", "--weights", "trained", "--json", str(out),
            "--vis", str(vis)]
    assert main(argv) == 0
    truth = json.loads(scene.with_suffix(".json").read_text())["people"]
    found = json.loads(out.read_text())["people"]
    assert len(found) == len(truth) == 3
    # each figure's visible keypoints: the nearest prediction (OpenPose x, y, score triples) within 5 % of its box
    predicted = [np.asarray(p["pose_keypoints_2d"], np.float32).reshape(-1, 3)[:, :2] for p in found]
    for person in truth:
        gt = np.asarray(person["keypoints_xy"], np.float32)[None]
        visible = np.asarray(person["visible"], bool)[None]
        box = np.asarray(person["box_xyxy"], np.float32)[None]
        best = max(metrics.pck(p[None], gt, visible, box)["pck"] for p in predicted)
        assert best > 0.7


def test_a_colon_in_a_user_value_is_printed_as_typed(tmp_path, capsys):
    # rich would render ":abc:" style codes as emoji; the error must quote the value exactly
    assert main(["export", "--backend", "onnxruntime", "--precision", "int8", "--calib", "synth:abc:",
                 "--out", str(tmp_path / "b")]) == 2
    assert "--calib synth:abc:" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()

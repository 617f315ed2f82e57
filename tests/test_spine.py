"""Spine kinematics: the angle maths against analytic figures and the synthetic clips' kinematic truth,
the CSV / TRC / C3D files read back by real readers (OpenSim, ezc3d), and ``infer``'s one-line refusals."""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import pytest

from spinepose_deploy.cli import main
from spinepose_deploy.ops.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, SPINE_IDS
from spinepose_deploy.pipeline.result import PoseResult
from spinepose_deploy.pipeline.spine_outputs import SpineRecorder, SpineRequest, angle_labels
from spinepose_deploy.spine import mocap
from spinepose_deploy.spine.angles import ANGLE_NAMES, INNER_POINTS, NAMES_2D, NAMES_3D, spine_angles
from spinepose_deploy.spine.filtering import FilterKind, FilterSpec
from spinepose_deploy.spine.markers import MarkerNames
from spinepose_deploy.spine.table import COLUMNS, AngleTable
from spinepose_deploy.synth import skeleton as sk
from spinepose_deploy.synth.motion import MOTIONS, make_clip

K = KEYPOINT_INDEX
DEG = np.pi / 180


def _chain_2d(turns_deg, start_deg=0.0, length=20.0) -> np.ndarray:
    """37 keypoints whose spine chain turns clockwise (on screen) by ``turns_deg`` at the inner points."""
    kp = np.zeros((37, 2))
    heading = start_deg  # from image up, clockwise
    pos = np.array([100.0, 300.0])
    kp[SPINE_IDS[0]] = pos
    for j, kid in enumerate(SPINE_IDS[1:]):
        if j > 0:
            heading += turns_deg[j - 1]
        pos = pos + length * np.array([np.sin(heading * DEG), -np.cos(heading * DEG)])
        kp[kid] = pos
    return kp


def _col(angles, name):
    return angles.values[..., ANGLE_NAMES.index(name)]


# ---------------------------------------------------------------- the maths


def test_2d_turns_regions_and_inclinations_match_an_analytic_chain():
    turns = [5.0, -10.0, 20.0, 3.0, -7.0, 15.0, -4.0]
    kp = _chain_2d(turns, start_deg=12.0)
    angles = spine_angles(kp, np.ones(37))
    got = [_col(angles, f"bend2d_{p}") for p in INNER_POINTS]
    np.testing.assert_allclose(got, turns, atol=1e-9)
    np.testing.assert_allclose(_col(angles, "lumbar2d"), 5 - 10, atol=1e-9)
    np.testing.assert_allclose(_col(angles, "thoracic2d"), 20 + 3 - 7, atol=1e-9)
    np.testing.assert_allclose(_col(angles, "cervical2d"), 15 - 4, atol=1e-9)
    trunk = kp[K["neck"]] - kp[K["hip"]]  # leaning right on screen is positive
    np.testing.assert_allclose(_col(angles, "trunk_incl2d"), np.degrees(np.arctan2(trunk[0], -trunk[1])), atol=1e-9)
    assert _col(angles, "trunk_incl2d") > 12.0
    assert np.isnan(angles.values[len(NAMES_2D):]).all() and (angles.confidence[len(NAMES_2D):] == 0).all()


def test_vectorised_over_people_and_frames_equals_one_by_one():
    rng = np.random.default_rng(3)
    kp = rng.uniform(0, 500, (3, 4, 37, 2))
    world = rng.normal(0, 0.5, (3, 4, 37, 3))
    scores = rng.uniform(0.0, 1.0, (3, 4, 37))
    whole = spine_angles(kp, scores, world)
    assert whole.values.shape == (3, 4, len(ANGLE_NAMES))
    one = spine_angles(kp[2, 1], scores[2, 1], world[2, 1])
    np.testing.assert_array_equal(whole.values[2, 1], one.values)
    np.testing.assert_array_equal(whole.confidence[2, 1], one.confidence)


@pytest.mark.parametrize(
    ("pose", "name", "expected"),
    [
        # pure lateral bend: each inner point turns by its share of the bend (the elevation out of the pelvis's
        # sagittal plane: within 0.7 degree of the share, the segments also lean in the sagittal plane at rest)
        (sk.Pose((0.0, 20 * DEG, 0.0), (0, 0, 0), ((0, 0, 0, 0),) * 2, ((0, 0, 0, 0, 0),) * 2), "lat", 20.0),
        # pure twist: the clavicles (on the T3 segment) turn by the first five joints' share, 0.62
        (sk.Pose((0.0, 0.0, 30 * DEG), (0, 0, 0), ((0, 0, 0, 0),) * 2, ((0, 0, 0, 0, 0),) * 2), "rot", 30.0),
    ],
)
def test_3d_angles_match_the_kinematic_model(pose, name, expected):
    body = sk.forward_kinematics(sk.Body(), pose)
    angles = spine_angles(np.zeros((37, 2)), np.ones(37), body)
    share = sk._SPINE_SHARE
    if name == "lat":
        np.testing.assert_allclose([_col(angles, f"lat_{p}") for p in INNER_POINTS], expected * share[1:], atol=0.7)
        np.testing.assert_allclose(_col(angles, "thorax_pelvis_lat"), expected * share[:5].sum(), atol=1.0)
    else:
        np.testing.assert_allclose(_col(angles, "thorax_pelvis_rot"), expected * share[:5].sum(), atol=0.5)


def test_pure_flexion_adds_its_share_to_the_rest_curvature():
    rest = spine_angles(np.zeros((37, 2)), np.ones(37), sk.forward_kinematics(sk.Body(), _flexed(0.0)))
    bent = spine_angles(np.zeros((37, 2)), np.ones(37), sk.forward_kinematics(sk.Body(), _flexed(40.0)))
    offsets = sk._SPINE_OFFSETS
    rest_expected = np.diff(np.degrees(np.arctan2(offsets[:, 2], offsets[:, 1])))
    flex = [f"flex_{p}" for p in INNER_POINTS]
    np.testing.assert_allclose([_col(rest, n) for n in flex], rest_expected, atol=1e-9)
    np.testing.assert_allclose([_col(bent, n) - _col(rest, n) for n in flex], 40.0 * sk._SPINE_SHARE[1:], atol=1e-9)
    assert np.allclose([_col(bent, f"lat_{p}") for p in INNER_POINTS], 0.0, atol=1e-9)


def _flexed(deg: float) -> sk.Pose:
    return sk.Pose((deg * DEG, 0.0, 0.0), (0, 0, 0), ((0, 0, 0, 0),) * 2, ((0, 0, 0, 0, 0),) * 2)


@pytest.mark.parametrize("motion", MOTIONS)
def test_ground_truth_keypoints_through_the_camera_give_the_truth_within_0_01_degree(motion):
    clip = make_clip(motion, frames=12)
    camera = clip.camera.astype(np.float32)  # what a file or a network hands over: float32 camera metres
    inverse = np.linalg.inv(clip.world_to_camera)
    world = camera @ inverse[:3, :3].T + inverse[:3, 3]
    angles = spine_angles(clip.pixels, np.ones(clip.pixels.shape[:2]), world)
    error = np.abs(angles.values[:, len(NAMES_2D):] - clip.truth)
    assert np.isfinite(clip.truth).all()
    assert error.max() < 0.01, NAMES_3D[int(np.argmax(error.max(axis=0)))]
    assert np.abs(clip.truth).max() > 10  # the motion really moves the spine


def test_low_scores_give_nan_never_a_number_and_angles_without_those_points_stay():
    clip = make_clip("side_bend", frames=2)
    scores = np.ones((2, 37))
    scores[:, K["spine_03"]] = 0.1
    scores[:, [K["left_hip"], K["right_hip"]]] = 0.0
    angles = spine_angles(clip.pixels, scores, clip.world)
    for name in ("bend2d_spine_02", "bend2d_spine_03", "bend2d_spine_04", "lumbar2d", "thoracic2d",
                 "flex_spine_03", "lat_spine_02", "lumbar_flex", "thorax_pelvis_rot", "trunk_incl"):  # fmt: skip
        assert np.isnan(_col(angles, name)).all(), name
    assert np.allclose(angles.confidence[:, ANGLE_NAMES.index("thorax_pelvis_rot")], 0)
    # head on thorax uses neither the hips nor T12: still measured, and equal to the truth
    head = _col(angles, "head_thorax_lat")
    assert np.isfinite(head).all()
    np.testing.assert_allclose(head, clip.truth[:, NAMES_3D.index("head_thorax_lat")], atol=1e-6)


def test_pose_result_spine_angles_and_overlay_labels():
    clip = make_clip("bend", frames=1)
    result = PoseResult(boxes=np.zeros((1, 4), np.float32), box_scores=np.ones(1, np.float32),
                        keypoints=clip.pixels.astype(np.float32), scores=np.ones((1, 37), np.float32),
                        keypoints_3d_world=clip.world.astype(np.float32))  # fmt: skip
    angles = result.spine_angles()
    assert angles["trunk_incl"].shape == (1,)
    np.testing.assert_allclose(angles.values[0, len(NAMES_2D):], clip.truth[0], atol=0.01)
    (label,) = angle_labels(angles)
    assert label == f"trunk {angles['trunk_incl'][0]:.0f} neck {angles['neck_incl'][0]:.0f} deg"


def test_overlay_writes_the_labels_beside_each_box():
    from spinepose_deploy.pipeline.draw import draw_result

    image = np.zeros((120, 200, 3), np.uint8)
    result = PoseResult(boxes=np.array([[10, 20, 60, 100]], np.float32), box_scores=np.ones(1, np.float32),
                        keypoints=np.zeros((1, 37, 2), np.float32), scores=np.zeros((1, 37), np.float32))  # fmt: skip
    plain = draw_result(image, result)
    labelled = draw_result(image, result, labels=["trunk 12 neck 5 deg"])
    changed = np.argwhere((labelled != plain).any(axis=-1))
    assert len(changed) > 50 and changed[:, 1].min() >= 60 and changed[:, 0].min() >= 40  # right of the box, lower half


# ---------------------------------------------------------------- files


def _results(frames: int = 5):
    clip = make_clip("twist", frames=frames)
    for t in range(frames):
        scores = np.ones((2, 37), np.float32)
        scores[1, K["nose"]] = 0.0  # person 1 loses its nose: a missing marker
        world = np.stack([clip.world[t], clip.world[t] + [1.0, 0.0, 0.0]]).astype(np.float32)
        kp = np.stack([clip.pixels[t], clip.pixels[t]]).astype(np.float32)
        ids = np.array([7, 3]) if t != 2 else np.array([7, -1])  # track 3 untracked in frame 2
        yield t, PoseResult(boxes=np.zeros((2, 4), np.float32), box_scores=np.ones(2, np.float32), keypoints=kp,
                            scores=scores, keypoints_3d_world=world, track_ids=ids)  # fmt: skip


def test_recorder_writes_csv_rows_and_one_trc_per_track_that_opensim_reads(tmp_path):
    opensim = pytest.importorskip("opensim", reason="OpenSim's own TRC reader: pip install opensim (dev extra)")
    # keypoint names and raw values: this test reads keypoints back exactly (test_biomech.py: the defaults)
    request = SpineRequest(csv=tmp_path / "a.csv", trc=tmp_path / "trc", marker_names=MarkerNames.KEYPOINTS,
                           filtering=FilterSpec(FilterKind.NONE))  # fmt: skip
    recorder = SpineRecorder(request)
    results = list(_results())
    for t, result in results:
        recorder.add("clip", t, t / 25.0, result)
    files = recorder.finish_source("clip", 25.0) + recorder.finish()
    assert sorted(p.name for p in files) == ["a.csv", "clip_track3.trc", "clip_track7.trc"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 10
    assert [r["track_id"] for r in rows[:4]] == ["7", "3", "7", "3"] and rows[5]["track_id"] == "-1"
    assert rows[2]["time_s"] == "0.0400" and float(rows[0]["conf_thorax_pelvis_rot"]) == 1.0
    assert abs(float(rows[0]["thorax_pelvis_rot"]) - _results_truth("thorax_pelvis_rot")) < 0.01
    table = opensim.TimeSeriesTableVec3(str(tmp_path / "trc" / "clip_track3.trc"))
    assert table.getNumColumns() == 37 and list(table.getColumnLabels()) == list(KEYPOINT_NAMES)
    assert table.getTableMetaDataAsString("DataRate") == "25" and table.getTableMetaDataAsString("Units") == "m"
    assert table.getNumRows() == 5  # frames 0..4; frame 2 (untracked) is a row of missing markers
    np.testing.assert_allclose(list(table.getIndependentColumn()), np.arange(5) / 25.0, atol=1e-6)
    hip = table.getRowAtIndex(4)[K["hip"]]
    np.testing.assert_allclose([hip.get(i) for i in range(3)], results[4][1].keypoints_3d_world[1, K["hip"]], atol=1e-6)
    assert np.isnan(table.getRowAtIndex(0)[K["nose"]].get(0))  # below the threshold: missing, not a number
    assert np.isnan(table.getRowAtIndex(2)[K["hip"]].get(1))


def _results_truth(name: str) -> float:
    return float(make_clip("twist", frames=5).truth[0, NAMES_3D.index(name)])


def test_trc_text_is_strict_opensim_layout():
    points = np.arange(2 * 37 * 3, dtype=float).reshape(2, 37, 3) / 100
    points[1, 0] = np.nan
    lines = mocap.trc_text(points, 30.0, file_name="x.trc").split("\n")
    assert lines[0].split("\t") == ["PathFileType", "4", "(X/Y/Z)", "x.trc"]
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=True))
    assert header == {"DataRate": "30", "CameraRate": "30", "NumFrames": "2", "NumMarkers": "37", "Units": "m",
                      "OrigDataRate": "30", "OrigDataStartFrame": "1", "OrigNumFrames": "2"}  # fmt: skip
    names = lines[3].split("\t")
    assert names[:3] == ["Frame#", "Time", "nose"] and [n for n in names[2:] if n] == list(KEYPOINT_NAMES)
    assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and lines[5] == ""
    first = lines[6].split("\t")
    assert len(first) == 2 + 37 * 3 and first[:2] == ["1", "0.000000"] and float(first[3]) == pytest.approx(0.01)
    assert lines[7].split("\t")[2:5] == ["NaN", "NaN", "NaN"]


def test_c3d_reads_back_with_ezc3d(tmp_path):
    ezc3d = pytest.importorskip("ezc3d", reason="C3D needs ezc3d: pip install 'spinepose-deploy[biomech]'")
    points = np.random.default_rng(0).normal(0, 1, (4, 37, 3))
    points[2, 5] = np.nan
    path = mocap.write_c3d(tmp_path / "t.c3d", points, 50.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.c3d"]  # no temporary left behind
    c3d = ezc3d.c3d(str(path))
    assert list(c3d["parameters"]["POINT"]["LABELS"]["value"]) == list(KEYPOINT_NAMES)
    assert c3d["parameters"]["POINT"]["RATE"]["value"][0] == 50.0
    assert list(c3d["parameters"]["POINT"]["UNITS"]["value"]) == ["m"]
    back = c3d["data"]["points"][:3].transpose(2, 1, 0)
    np.testing.assert_allclose(back, points, atol=1e-5)  # NaN where NaN (assert_allclose compares NaN equal)


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from spinepose_deploy.spine.plot import write_plot

    table = AngleTable()
    for t, result in _results():
        table.add("clip", t, t / 25.0, result.track_ids, result.spine_angles())
    path = write_plot(table, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


# ---------------------------------------------------------------- infer's refusals, before any model loads


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture()
def image(tmp_path):
    from spinepose_deploy.paths import package_data_dir

    return str(package_data_dir() / "astronaut.jpg")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trc", "out"], "--trc: markers need world-space 3D keypoints; add --lift"),
        (["--c3d", "out"], "--c3d: markers need world-space 3D keypoints; add --lift"),
        (["--lift", "--trc", "x.trc"], "is a file name; give a folder (one file per track)"),
        (["--spine", "angles.txt"], "--spine: 'angles.txt' does not end in .csv"),
        (["--spine", "."], "--spine: '.' is a folder; expected a .csv file"),
        (["--spine-plot", "a.jpg"], "--spine-plot: 'a.jpg' does not end in .png"),
        (["--vis-angles"], "--vis-angles: draws on the overlay; add --vis"),
        (["--ray", "--vis", "v", "--vis-angles"], "--vis-angles: not available with --ray"),
    ],
)
def test_bad_spine_requests_get_one_line(image, args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["infer", image, *args]) == 2
    assert message in _error(capsys)


def test_trc_folder_that_is_a_file_and_missing_matplotlib_are_refused(image, tmp_path, capsys, monkeypatch):
    (tmp_path / "taken").write_text("x")
    assert main(["infer", image, "--lift", "--trc", str(tmp_path / "taken")]) == 2
    assert "exists and is not a folder" in _error(capsys)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the chart extra were not installed
    assert main(["infer", image, "--spine-plot", str(tmp_path / "a.png")]) == 2
    assert "pip install 'spinepose-deploy[chart]'" in _error(capsys)


# ---------------------------------------------------------------- the whole journey (slow: runs the models)


@pytest.mark.slow
def test_infer_on_a_synthetic_clip_writes_csv_plot_trc_and_c3d(tmp_path, capsys):
    opensim = pytest.importorskip("opensim", reason="OpenSim's own TRC reader: pip install opensim (dev extra)")
    pytest.importorskip("ezc3d")
    from spinepose_deploy.synth.files import write_clip

    video = write_clip(tmp_path, make_clip("bend", frames=8))
    out = tmp_path / "out"
    code = main(["infer", str(video), "--weights", "trained", "--lift", "--spine", str(out / "a.csv"),
                 "--spine-plot", str(out / "a.png"), "--trc", str(out / "trc"), "--c3d", str(out / "c3d"),
                 "--vis", str(out / "o.mp4"), "--vis-angles"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO((out / "a.csv").read_text())))
    assert len(rows) == 8 and {r["track_id"] for r in rows} == {"0"}
    assert all(r["trunk_incl"] != "" and r["bend2d_spine_03"] != "" for r in rows)
    table = opensim.TimeSeriesTableVec3(str(out / "trc" / "bend_track0.trc"))
    assert table.getNumRows() == 8 and table.getNumColumns() == 33  # upstream's OpenSim marker set
    assert (out / "c3d" / "bend_track0.c3d").stat().st_size > 1000
    assert (out / "a.png").stat().st_size > 10_000 and (out / "o.mp4").stat().st_size > 1000


def test_fidelity_reports_how_many_degrees_a_lowered_graph_moved_the_spine():
    from spinepose_deploy.export.fidelity import lifter_metrics, pose_metrics

    rng = np.random.default_rng(1)
    ref = {"simcc_x": rng.random((3, 37, 384)), "simcc_y": rng.random((3, 37, 512))}
    assert pose_metrics(ref, ref)["spine_deg_p95"] == 0.0
    moved = {"simcc_x": np.roll(ref["simcc_x"], 1, axis=1), "simcc_y": ref["simcc_y"]}  # other keypoints' peaks
    metrics = pose_metrics(ref, moved)
    assert metrics["spine_deg_median"] > 1.0 and metrics["spine_deg_max"] >= metrics["spine_deg_p95"]
    clip = make_clip("bend", frames=3)
    camera = clip.camera - clip.camera[:, 19:20]
    tilted = camera @ sk.rx(2 * DEG).T  # the whole body turned 2 degrees about the camera x axis
    lifted = lifter_metrics(camera, tilted)
    assert lifted["spine_deg_max"] == pytest.approx(2.0, abs=0.3) and lifted["mpjpe_mm"] > 0
    # graphs without 37 keypoints (tiny test graphs) report no spine numbers
    assert "spine_deg_p95" not in pose_metrics({"simcc_x": np.ones((1, 4, 8)), "simcc_y": np.ones((1, 4, 8))},
                                               {"simcc_x": np.ones((1, 4, 8)), "simcc_y": np.ones((1, 4, 8))})

"""Files for OpenSim, Pose2Sim and an ergonomist (issue 23): upstream marker names and the video clock in TRC
and C3D (read back by OpenSim and ezc3d), ``.mot`` read by OpenSim, offline filtering against a known signal,
neutral posture, zones / ROM / CVA against the synthetic clips' known angles, the HTML report, one-line
refusals, and (slow) the whole ``infer`` journey and OpenSim inverse kinematics on our TRC."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

import numpy as np
import pytest

from spinepose_deploy.cli import main
from spinepose_deploy.errors import InvalidOptionError
from spinepose_deploy.ops.skeleton import KEYPOINT_INDEX
from spinepose_deploy.pipeline.result import PoseResult
from spinepose_deploy.pipeline.spine_outputs import SpineRecorder, SpineRequest
from spinepose_deploy.spine.filtering import FilterKind, FilterSpec, filter_angles, interpolate_gaps
from spinepose_deploy.spine.markers import OPENSIM_NAMES, MarkerNames, marker_set
from spinepose_deploy.spine.neutral import NeutralSpec
from spinepose_deploy.spine.storage import write_mot
from spinepose_deploy.spine.summary import craniovertebral_angle, zone_times
from spinepose_deploy.synth.motion import make_clip

K = KEYPOINT_INDEX
RAW = FilterSpec(FilterKind.NONE)


def _clip_results(motion: str, frames: int, first: int = 0, track: int = 0):
    """The clip's exact keypoints as the pipeline's results, frame by frame from video frame ``first``."""
    clip = make_clip(motion, frames=frames)
    for t in range(frames):
        yield first + t, PoseResult(
            boxes=np.zeros((1, 4), np.float32), box_scores=np.ones(1, np.float32),
            keypoints=clip.pixels[t][None].astype(np.float32), scores=np.ones((1, 37), np.float32),
            keypoints_3d_world=clip.world[t][None], track_ids=np.array([track]),
        )  # fmt: skip


def _record(request: SpineRequest, results, fps: float = 24.0, source: str = "clip"):
    recorder = SpineRecorder(request)
    for frame, result in results:
        recorder.add(source, frame, frame / fps, result)
    return recorder, recorder.finish_source(source, fps) + recorder.finish()


# ---------------------------------------------------------------- markers and the video clock


def test_upstream_marker_set_is_33_pose2sim_names_without_eyes_or_ears():
    ids, names = marker_set()
    assert len(names) == len(set(names)) == 33 and len(ids) == 33
    assert {"Hip", "LHip", "Spine_01", "Spine_05", "Neck", "Neck_02", "Neck_03", "LClavicle", "RLatissimus",
            "LBigToe", "RHeel", "Head", "Nose"} <= set(names)  # fmt: skip
    assert not {"left_eye", "right_eye", "left_ear", "right_ear"} & set(OPENSIM_NAMES)
    assert names[ids.index(K["spine_03"])] == "Spine_03"
    assert marker_set(MarkerNames.KEYPOINTS)[1][K["left_latissimus"]] == "left_latissimus"
    with pytest.raises(InvalidOptionError, match="--marker-names: 'vicon' is not one of opensim, keypoints"):
        MarkerNames.parse("vicon")


def test_trc_and_c3d_carry_upstream_names_and_the_video_clock(tmp_path):
    opensim = pytest.importorskip("opensim", reason="OpenSim's own TRC reader: pip install opensim (dev extra)")
    ezc3d = pytest.importorskip("ezc3d", reason="C3D needs ezc3d: pip install 'spinepose-deploy[biomech]'")
    results = list(_clip_results("bend", 6, first=50, track=2))
    results[3][1].scores[0, K["spine_02"]] = 0.0  # a missing marker in video frame 53
    request = SpineRequest(trc=tmp_path / "trc", c3d=tmp_path / "c3d", filtering=RAW)
    _, files = _record(request, results, fps=25.0)
    assert sorted(p.name for p in files) == ["clip_track2.c3d", "clip_track2.trc"]
    _, names = marker_set()
    table = opensim.TimeSeriesTableVec3(str(tmp_path / "trc" / "clip_track2.trc"))
    assert list(table.getColumnLabels()) == list(names)
    np.testing.assert_allclose(list(table.getIndependentColumn()), np.arange(50, 56) / 25.0, atol=1e-6)
    assert table.getTableMetaDataAsString("OrigDataStartFrame") == "51"
    spine_02 = names.index("Spine_02")
    assert np.isnan(table.getRowAtIndex(3)[spine_02].get(0))
    hip = table.getRowAtIndex(0)[names.index("Hip")]
    np.testing.assert_allclose([hip.get(i) for i in range(3)], results[0][1].keypoints_3d_world[0, K["hip"]], atol=1e-6)
    c3d = ezc3d.c3d(str(tmp_path / "c3d" / "clip_track2.c3d"))
    assert list(c3d["parameters"]["POINT"]["LABELS"]["value"]) == list(names)
    assert c3d["header"]["points"]["first_frame"] == 50 and c3d["header"]["points"]["frame_rate"] == 25.0
    assert list(c3d["parameters"]["TRIAL"]["ACTUAL_START_FIELD"]["value"]) == [51, 0]
    residuals = c3d["data"]["meta_points"]["residuals"][0]
    assert residuals[spine_02, 3] < 0 and (np.delete(residuals, spine_02, axis=0) >= 0).all()
    assert np.isnan(c3d["data"]["points"][0, spine_02, 3]) and residuals[spine_02, 2] == 0


def test_every_track_file_names_the_world_vertical_read_back_by_opensim_and_ezc3d(tmp_path):
    """Issue 22 item 1: TRC header, C3D parameters, .mot header, summary JSON and HTML report all carry the
    vertical (source, camera pitch / roll, uncertainty) the 3D angles stand on: here a floor fit whose estimate
    moves over the track, so the files must name the last one."""
    opensim = pytest.importorskip("opensim", reason="OpenSim's readers: pip install opensim (dev extra)")
    ezc3d = pytest.importorskip("ezc3d", reason="C3D needs ezc3d: pip install 'spinepose-deploy[biomech]'")
    from dataclasses import replace

    from spinepose_deploy.ops.world import Vertical

    early = replace(Vertical.from_pitch_roll(5.0, 0.0, source="floor"), uncertainty_deg=4.0)
    late = replace(Vertical.from_pitch_roll(18.25, -3.5, source="floor"), uncertainty_deg=1.25)
    results = [(f, replace(r, vertical=early if f < 4 else late)) for f, r in _clip_results("bend", 8)]
    request = SpineRequest(trc=tmp_path / "trc", c3d=tmp_path / "c3d", mot=tmp_path / "mot",
                           report=tmp_path / "report", filtering=RAW)  # fmt: skip
    _record(request, results)
    trc = opensim.TimeSeriesTableVec3(str(tmp_path / "trc" / "clip_track0.trc"))
    header = trc.getTableMetaDataAsString("header").split("\t")  # OpenSim keeps the first line
    assert header[:4] == ["PathFileType", "4", "(X/Y/Z)", "clip_track0.trc"]
    assert dict(cell.split("=") for cell in header[4].split()) == {
        "vertical_source": "floor", "camera_pitch_deg": "18.25", "camera_roll_deg": "-3.5",
        "vertical_uncertainty_deg": "1.25"}  # fmt: skip
    assert trc.getTableMetaDataAsString("Units") == "m" and trc.getNumRows() == 8
    world = ezc3d.c3d(str(tmp_path / "c3d" / "clip_track0.c3d"))["parameters"]["WORLD"]
    assert list(world["VERTICAL_SOURCE"]["value"]) == ["floor"]
    assert world["CAMERA_PITCH_DEG"]["value"][0] == pytest.approx(18.25)
    assert world["CAMERA_ROLL_DEG"]["value"][0] == pytest.approx(-3.5)
    assert world["VERTICAL_UNCERTAINTY_DEG"]["value"][0] == pytest.approx(1.25)
    mot = opensim.TimeSeriesTable(str(tmp_path / "mot" / "clip_track0.mot"))
    assert mot.getTableMetaDataAsString("vertical_source") == "floor"
    assert float(mot.getTableMetaDataAsString("camera_pitch_deg")) == pytest.approx(18.25)
    assert mot.getNumRows() == 8 and "trunk_incl" in list(mot.getColumnLabels())
    summary = json.loads((tmp_path / "report" / "clip_summary.json").read_text())
    assert summary["tracks"][0]["world_vertical"] == {"vertical_source": "floor", "camera_pitch_deg": 18.25,
                                                      "camera_roll_deg": -3.5, "vertical_uncertainty_deg": 1.25}
    page = (tmp_path / "report" / "clip.html").read_text()
    assert "World vertical (3D angles): floor, camera pitch +18.2 roll -3.5 deg +- 1.2" in page
    # without 3D there is no vertical to name: the summary says null and the page says nothing
    flat = [(f, replace(r, keypoints_3d_world=None, vertical=late)) for f, r in _clip_results("bend", 3)]
    _record(SpineRequest(report=tmp_path / "flat", filtering=RAW), flat)
    assert json.loads((tmp_path / "flat" / "clip_summary.json").read_text())["tracks"][0]["world_vertical"] is None
    assert "World vertical" not in (tmp_path / "flat" / "clip.html").read_text()


# ---------------------------------------------------------------- .mot


def test_mot_per_track_is_read_by_opensim_with_absolute_and_relative_angles(tmp_path):
    opensim = pytest.importorskip("opensim", reason="OpenSim's Storage reader: pip install opensim (dev extra)")
    request = SpineRequest(mot=tmp_path / "mot", csv=tmp_path / "a.csv", filtering=RAW,
                           neutral=NeutralSpec.parse("10:13"))  # fmt: skip
    recorder, files = _record(request, _clip_results("bend", 8, first=10), fps=24.0)
    table = opensim.TimeSeriesTable(str(tmp_path / "mot" / "clip_track0.mot"))
    labels = list(table.getColumnLabels())
    assert table.getTableMetaDataAsString("inDegrees") == "yes"
    np.testing.assert_allclose(list(table.getIndependentColumn()), np.arange(10, 18) / 24.0, atol=1e-6)
    assert {"trunk_incl", "lumbar_flex", "cva", "trunk_incl_rel", "lumbar_flex_rel"} <= set(labels)
    clip = make_clip("bend", frames=8)
    from spinepose_deploy.spine.angles import NAMES_3D

    truth = clip.truth[:, NAMES_3D.index("lumbar_flex")]
    got = np.array([table.getDependentColumn("lumbar_flex")[i] for i in range(8)])
    rel = np.array([table.getDependentColumn("lumbar_flex_rel")[i] for i in range(8)])
    np.testing.assert_allclose(got, truth, atol=1e-3)
    np.testing.assert_allclose(rel, truth - np.median(truth[:3]), atol=1e-3)  # neutral: frames 10-12's median
    assert "neutral (range): frames 10-12" in (tmp_path / "mot" / "clip_track0.mot").read_text()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert float(rows[5]["lumbar_flex_rel"]) == pytest.approx(rel[5], abs=2e-3)


def test_mot_without_angles_and_neutral_range_without_a_person_are_refused_in_one_line(tmp_path):
    with pytest.raises(InvalidOptionError, match="--mot: no angles to write"):
        write_mot(tmp_path / "x.mot", np.arange(3), [], np.zeros((3, 0)))
    request = SpineRequest(mot=tmp_path / "mot", filtering=RAW, neutral=NeutralSpec.parse("0s:0.1s"))
    with pytest.raises(InvalidOptionError, match=r"--neutral 0s:0.1s: no tracked person in frames 0-2 of 'clip'"):
        _record(request, _clip_results("bend", 4, first=10))


# ---------------------------------------------------------------- filtering


def test_filtering_brings_noisy_angles_closer_to_the_truth_and_leaves_long_gaps_empty():
    fps = 30.0
    t = np.arange(300) / fps
    truth = np.stack([30 * np.sin(2 * np.pi * 0.4 * t), 10 + 15 * np.sin(2 * np.pi * 1.1 * t + 1)], axis=1)
    rng = np.random.default_rng(0)
    noisy = truth + rng.normal(0, 3.0, truth.shape)
    noisy[[40, 170], 0] += 45  # outliers: Hampel's
    noisy[100:106, 0] = np.nan  # 6 frames: filled
    noisy[200:230, 0] = np.nan  # 30 frames > max gap 10: stays empty
    filtered = filter_angles(noisy, fps, FilterSpec())
    rms = lambda x: float(np.sqrt(np.nanmean((x - truth) ** 2)))  # noqa: E731
    assert rms(filtered) < 0.5 * rms(noisy)
    assert np.isfinite(filtered[100:106, 0]).all() and np.abs(filtered[100:106, 0] - truth[100:106, 0]).max() < 4
    assert np.isnan(filtered[200:230, 0]).all() and np.isfinite(filtered[200:230, 1]).all()
    np.testing.assert_array_equal(filter_angles(noisy, fps, RAW), noisy)  # --filter none: raw
    # zero lag: a filtered clean sine is not shifted
    clean = filter_angles(truth, fps, FilterSpec())
    assert np.abs(clean[30:-30] - truth[30:-30]).max() < 0.5
    # leading / trailing gaps are never extrapolated
    assert np.isnan(interpolate_gaps(np.array([np.nan, 1.0, 2.0, np.nan]), 5)[[0, 3]]).all()


def test_filtering_across_plus_minus_180_stays_smooth():
    angle = 179.0 + np.linspace(0, 4, 60)  # crosses 180 -> -180
    wrapped = 180.0 - np.mod(180.0 - angle, 360.0)
    out = filter_angles(wrapped[:, None], 30.0, FilterSpec())[:, 0]
    np.testing.assert_allclose(np.mod(out - angle + 180, 360) - 180, 0, atol=0.05)


# ---------------------------------------------------------------- neutral posture


@pytest.mark.parametrize(
    ("text", "frames"), [("0:30", (0, 30)), ("0s:1.5s", (0, 36)), ("12:24", (12, 24)), ("0.5s:1s", (12, 24))]
)
def test_neutral_ranges_in_frames_or_seconds(text, frames):
    assert NeutralSpec.parse(text).frames(24.0) == frames


@pytest.mark.parametrize(
    ("text", "message"),
    [("0:", "expected auto, START:END frames"), ("5:2", "is empty"), ("0:1.5s", "mixes frames and seconds"),
     ("0:1.5", "frames are whole numbers"), ("standing", "expected auto")],
)  # fmt: skip
def test_bad_neutral_text_is_refused(text, message):
    with pytest.raises(InvalidOptionError, match=message):
        NeutralSpec.parse(text)


def test_neutral_range_outside_the_video_is_refused():
    NeutralSpec.parse("0:48").check_video("bend", 48, 24.0)
    with pytest.raises(InvalidOptionError, match=r"--neutral 40:60: frames 40-59 are outside 'bend' \(48 frames"):
        NeutralSpec.parse("40:60").check_video("bend", 48, 24.0)
    with pytest.raises(InvalidOptionError, match="outside 'bend'"):
        NeutralSpec.parse("3s:4s").check_video("bend", 48, 24.0)


def test_auto_neutral_finds_the_upright_stretch_and_removes_the_rest_curvature(tmp_path):
    # the bend clip starts upright and bends forward twice (4 s: the 2 s default has no quiet half second);
    # the figure at rest reads its rest lumbar curvature (-15 deg with issue 22's fitted definition)
    request = SpineRequest(csv=tmp_path / "a.csv", filtering=RAW, neutral=NeutralSpec.parse("auto"))
    recorder, _ = _record(request, _clip_results("bend", 96))
    (summary,) = recorder.summaries
    neutral = summary.neutral
    assert neutral["rule"] == "auto" and neutral["end_frame"] - neutral["start_frame"] == 12
    clip = make_clip("bend", frames=96)
    from spinepose_deploy.spine.angles import NAMES_3D

    trunk = clip.truth[:, NAMES_3D.index("trunk_incl")]
    window = trunk[neutral["start_frame"]:neutral["end_frame"]]
    assert np.abs(window).max() < 10  # an upright stretch, not the bent one
    rest = clip.truth[0, NAMES_3D.index("lumbar_flex")]  # the figure's rest curvature (issue 22's fitted lumbar)
    assert abs(neutral["angles_deg"]["lumbar_flex"] - rest) < 3  # the rest curvature it takes away
    assert summary.basis == "relative to neutral" and abs(summary.angles["lumbar_flex"]["min"]) < 3


# ---------------------------------------------------------------- summary against known angles


def test_zones_rom_and_cva_match_the_clips_known_angles(tmp_path):
    from spinepose_deploy.spine.angles import NAMES_3D

    request = SpineRequest(report=tmp_path / "report", filtering=RAW)
    recorder, files = _record(request, _clip_results("bend", 48))
    (summary,) = recorder.summaries
    clip = make_clip("bend", frames=48)
    trunk = clip.truth[:, NAMES_3D.index("trunk_incl")]
    neck = clip.truth[:, NAMES_3D.index("neck_incl")]
    fps = 24.0
    expected = {"extension": (trunk < 0).sum(), "0-20": ((trunk >= 0) & (trunk < 20)).sum(),
                "20-60": ((trunk >= 20) & (trunk < 60)).sum(), ">60": (trunk >= 60).sum()}  # fmt: skip
    assert summary.zones["trunk"]["angle"] == "trunk_incl"
    got = summary.zones["trunk"]["seconds"]
    assert {k: round(v * fps) for k, v in got.items()} == {k: int(v) for k, v in expected.items()}
    assert sum(got.values()) == pytest.approx(48 / fps)
    assert got["20-60"] > 0.3 and got["0-20"] > 0.3  # the motion really visits both zones
    neck_zones = summary.zones["neck"]["seconds"]
    assert round(neck_zones[">20"] * fps) == int((neck >= 20).sum())
    stats = summary.angles["trunk_incl"]
    assert stats["rom"] == pytest.approx(trunk.max() - trunk.min(), abs=0.01)
    assert stats["max"] == pytest.approx(trunk.max(), abs=0.01)
    assert stats["max_at_s"] == pytest.approx(int(np.argmax(trunk)) / fps)
    # CVA: C7 -> ears' midpoint above the horizontal, from the clip's world points
    line = clip.world[:, [K["left_ear"], K["right_ear"]]].mean(1) - clip.world[:, K["neck"]]
    cva = np.degrees(np.arctan2(line[:, 1], np.hypot(line[:, 0], line[:, 2])))
    assert summary.cva["min"] == pytest.approx(cva.min(), abs=0.01) and 20 < summary.cva["median"] < 90
    data = json.loads((tmp_path / "report" / "clip_summary.json").read_text())
    assert data["tracks"][0]["zones"] == summary.zones and "Not for clinical use" in data["warning"]


def test_zone_times_and_2d_cva():
    angle = np.array([-3.0, 0.0, 19.9, 20.0, 59.0, 60.0, 75.0, np.nan])
    assert zone_times(angle, (20.0, 60.0), 2.0) == {"extension": 0.5, "0-20": 1.0, "20-60": 1.0, ">60": 1.0}
    kp = np.zeros((1, 37, 2))
    kp[0, K["neck"]] = (100, 200)
    kp[0, K["left_ear"]] = (130, 170)  # 30 px forward, 30 px up: 45 degrees
    scores = np.ones((1, 37))
    scores[0, K["right_ear"]] = 0.1
    assert craniovertebral_angle(kp, scores)[0] == pytest.approx(45.0)
    scores[0, K["left_ear"]] = 0.0
    assert np.isnan(craniovertebral_angle(kp, scores)[0])


def test_report_is_one_self_contained_page_with_the_warning(tmp_path):
    pytest.importorskip("matplotlib")
    request = SpineRequest(report=tmp_path / "r", neutral=NeutralSpec.parse("auto"))
    recorder = SpineRecorder(request, standin=True)
    for frame, result in _clip_results("side_bend", 30):
        recorder.add("side", frame, frame / 24.0, result)
    files = recorder.finish_source("side", 24.0)
    assert sorted(p.name for p in files) == ["side.html", "side_summary.json"]
    page = (tmp_path / "r" / "side.html").read_text()
    assert "Not for clinical use" in page and "STAND-IN" in page and "data:image/png;base64," in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<script" not in page  # nothing fetched
    assert "trunk zone (trunk_incl)" in page and "craniovertebral angle" in page


# ---------------------------------------------------------------- infer's refusals (before any model loads)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from spinepose_deploy.synth.files import write_clip

    return str(write_clip(tmp_path_factory.mktemp("clip"), make_clip("bend", frames=6)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mot", "m", "--neutral", "0:100"], "--neutral 0:100: frames 0-99 are outside 'bend' (6 frames"),
        (["--mot", "m", "--filter-cutoff", "12"], "--filter-cutoff: 12 Hz is at or above half the frame rate (24 fps"),
        (["--mot", "m", "--filter-order", "3"], "--filter-order: 3; expected an even order"),
        (["--mot", "m", "--filter", "kalman"], "--filter: 'kalman' is not one of butterworth, none"),
        (["--mot", "x.mot"], "--mot: 'x.mot' is a file name; give a folder"),
        (["--report", "r.html"], "--report: 'r.html' is a file name; give a folder"),
        (["--neutral", "auto"], "--neutral: relative angles go into --spine, --mot or --report"),
        (["--lift", "--trc", "t", "--marker-names", "vicon"], "--marker-names: 'vicon' is not one of"),
        (["--ray", "--json", "j", "--lift", "--mot", "m", "--lift-filtered"], "--lift-filtered: not available with"),
        (["--lift", "--trc", "t", "--lift-filtered", "--filter", "none"], "--lift-filtered: lifts again from the"),
        (["--mot", "m", "--lift-filtered"], "needs --lift and a --filter other than none"),
    ],
)
def test_bad_biomech_requests_get_one_line(video, args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["infer", video, *args]) == 2
    assert message in _error(capsys)


def test_missing_scipy_is_named_and_filter_none_needs_no_scipy(video, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "scipy", None)  # as if the biomech extra were not installed
    monkeypatch.setitem(sys.modules, "scipy.signal", None)
    assert main(["infer", video, "--spine", "a.csv", "--neutral", "0:100"]) == 2
    assert "--filter: scipy is required for offline filtering" in _error(capsys)
    # with --filter none the same request gets past scipy to the next check
    assert main(["infer", video, "--spine", "a.csv", "--filter", "none", "--neutral", "0:100"]) == 2
    assert "--neutral 0:100: frames 0-99 are outside" in _error(capsys)


# ---------------------------------------------------------------- the whole journey (slow: runs the models)


@pytest.mark.slow
def test_synthetic_clip_through_infer_gives_files_opensim_and_ezc3d_read_on_the_video_clock(tmp_path, capsys):
    opensim = pytest.importorskip("opensim", reason="OpenSim's readers: pip install opensim (dev extra)")
    ezc3d = pytest.importorskip("ezc3d")
    from spinepose_deploy.synth.files import write_clip

    clip = make_clip("bend", frames=48)  # synth --motion bend's default: upright, bent, upright, bent
    video = write_clip(tmp_path, clip)
    out = tmp_path / "out"
    code = main(["infer", str(video), "--weights", "trained", "--lift", "--trc", str(out / "trc"), "--c3d",
                 str(out / "c3d"), "--mot", str(out / "mot"), "--spine", str(out / "a.csv"), "--neutral", "auto",
                 "--report", str(out / "report")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "spine summary" in captured.out and "trunk" in captured.out
    times = np.arange(48) / clip.fps
    trc = opensim.TimeSeriesTableVec3(str(out / "trc" / "bend_track0.trc"))
    assert trc.getNumColumns() == 33 and "Spine_03" in list(trc.getColumnLabels())
    np.testing.assert_allclose(list(trc.getIndependentColumn()), times, atol=1e-6)
    mot = opensim.TimeSeriesTable(str(out / "mot" / "bend_track0.mot"))
    np.testing.assert_allclose(list(mot.getIndependentColumn()), times, atol=1e-6)
    assert mot.getTableMetaDataAsString("inDegrees") == "yes" and "trunk_incl" in list(mot.getColumnLabels())
    c3d = ezc3d.c3d(str(out / "c3d" / "bend_track0.c3d"))
    assert c3d["header"]["points"]["first_frame"] == 0 and c3d["data"]["points"].shape[2] == 48
    assert c3d["header"]["points"]["frame_rate"] == clip.fps
    rows = list(csv.DictReader(io.StringIO((out / "a.csv").read_text())))
    assert [float(r["time_s"]) for r in rows] == pytest.approx(times, abs=1e-4)
    summary = json.loads((out / "report" / "bend_summary.json").read_text())
    assert summary["standin"] is True
    neutral = summary["tracks"][0]["neutral"]
    assert neutral["rule"] == "auto" and "none" not in neutral and "trunk_incl_rel" in list(mot.getColumnLabels())
    # issue 23 saw auto pick the bent peak (the old vertical was ~30 deg off): with the floor vertical it picks
    # the upright stretch of the clip's known angles, not the bend (peak 26.6 deg)
    from spinepose_deploy.spine.angles import NAMES_3D

    truth = clip.truth[:, NAMES_3D.index("trunk_incl")]
    window = truth[neutral["start_frame"]:neutral["end_frame"]]
    assert abs(np.median(window)) < 5 and window.max() < truth.max() - 10
    assert summary["tracks"][0]["world_vertical"]["vertical_source"] == "floor_contacts"
    assert "vertical_source=floor_contacts" in (out / "mot" / "bend_track0.mot").read_text()
    page = (out / "report" / "bend.html").read_text()
    assert "Not for clinical use" in page and "data:image/png;base64," in page
    # the trained stand-ins' image-plane trunk angle follows the known bend (the side view): its ROM within 6 deg
    trunk = truth
    rom_2d = summary["tracks"][0]["angles"]["trunk_incl2d"]["rom"]
    assert abs(rom_2d - (trunk.max() - trunk.min())) < 6


# the bodies of the small model the IK test builds: name -> (origin marker, markers on it)
_IK_BODIES = {
    "pelvis": ("Hip", ("Hip", "LHip", "RHip", "Spine_01")),
    "torso": ("Hip", ("Spine_02", "Spine_03", "Spine_04", "Spine_05", "Neck", "LShoulder", "RShoulder", "LClavicle",
                      "RClavicle", "LLatissimus", "RLatissimus")),
    "head": ("Neck", ("Neck_02", "Neck_03", "Head", "Nose")),
}  # fmt: skip


def test_opensim_inverse_kinematics_runs_on_our_trc(tmp_path):  # ~1 s: in the fast suite
    """Upstream's Model.osim is not shipped by any pip package, so the test builds a 3-body model (pelvis on a
    free joint, torso and head on ball joints) whose markers carry upstream's names, placed from the first frame."""
    osim = pytest.importorskip("opensim", reason="OpenSim's IK: pip install opensim (dev extra)")
    results = list(_clip_results("bend", 24, first=5))
    results[7][1].scores[0, K["spine_04"]] = 0.0  # one missing marker: IK must carry on without it
    _record(SpineRequest(trc=tmp_path / "trc"), results)
    trc = tmp_path / "trc" / "clip_track0.trc"
    table = osim.TimeSeriesTableVec3(str(trc))
    first = table.getRowAtIndex(0)
    at = {name: np.array([first[i].get(k) for k in range(3)]) for i, name in enumerate(table.getColumnLabels())}
    vec = lambda v: osim.Vec3(*(float(x) for x in v))  # noqa: E731
    model = osim.Model()
    bodies = {name: osim.Body(name, 5.0, vec((0, 0, 0)), osim.Inertia(0.05, 0.05, 0.05)) for name in _IK_BODIES}
    for body in bodies.values():
        model.addBody(body)
    zero = vec((0, 0, 0))
    model.addJoint(osim.FreeJoint("ground_pelvis", model.getGround(), vec(at["Hip"]), zero, bodies["pelvis"], zero,
                                  zero))  # fmt: skip
    model.addJoint(osim.BallJoint("lumbar", bodies["pelvis"], zero, zero, bodies["torso"], zero, zero))
    model.addJoint(osim.BallJoint("neck", bodies["torso"], vec(at["Neck"] - at["Hip"]), zero, bodies["head"], zero,
                                  zero))  # fmt: skip
    for name, (origin, markers) in _IK_BODIES.items():
        for marker in markers:
            model.addMarker(osim.Marker(marker, bodies[name], vec(at[marker] - at[origin])))
    model.finalizeConnections()
    times = list(table.getIndependentColumn())
    tool = osim.InverseKinematicsTool()
    tool.setModel(model)
    tool.setMarkerDataFileName(str(trc))
    tool.setStartTime(times[0])
    tool.setEndTime(times[-1])
    tool.setResultsDir(str(tmp_path))
    tool.setOutputMotionFileName(str(tmp_path / "ik.mot"))
    assert tool.run()
    motion = osim.TimeSeriesTable(str(tmp_path / "ik.mot"))
    q = np.array([motion.getRowAtIndex(i).to_numpy() for i in range(motion.getNumRows())])
    assert q.shape == (24, 12) and np.isfinite(q).all()
    np.testing.assert_allclose(list(motion.getIndependentColumn()), np.arange(5, 29) / 24.0, atol=1e-6)
    lumbar = q[:, [i for i, n in enumerate(motion.getColumnLabels()) if n.startswith("lumbar")]]
    assert np.ptp(lumbar, axis=0).max() > 10  # the bend moves the torso on the pelvis (degrees)


def test_relifting_from_filtered_2d_brings_the_angles_closer_to_the_truth_and_fills_short_gaps():
    """``--lift-filtered``'s maths with a lift of known geometry: back-projection of the pixels at the clip's true
    depth (the network lifter is the seam; the slow test runs the real one)."""
    from spinepose_deploy.spine.angles import NAMES_2D, NAMES_3D, SpineAngles, spine_angles
    from spinepose_deploy.spine.filtering import FilterSpec
    from spinepose_deploy.spine.tracks import Track, relifted

    clip = make_clip("bend", frames=72)
    rng = np.random.default_rng(1)
    noisy = clip.pixels + rng.normal(0, 1.5, clip.pixels.shape)
    scores = np.ones(clip.pixels.shape[:2])
    scores[30:33, K["spine_03"]] = 0.0  # a 3-frame gap of one spine point
    inverse = np.linalg.inv(clip.world_to_camera)
    k_inv = np.linalg.inv(clip.intrinsics)

    def lift(keypoints: np.ndarray, frames: np.ndarray) -> np.ndarray:
        rays = np.concatenate([keypoints, np.ones(keypoints.shape[:2] + (1,))], -1) @ k_inv.T
        camera = rays * clip.camera[frames, :, 2:3]
        return camera @ inverse[:3, :3].T + inverse[:3, 3]

    raw = spine_angles(noisy, scores, lift(noisy, np.arange(72)))
    names = SpineAngles.names
    track = Track("clip", 0, clip.fps, 0, names, raw.values, np.zeros(72))
    calls = []

    def relift(keypoints: np.ndarray, s: np.ndarray) -> np.ndarray:
        calls.append(len(keypoints))
        return lift(keypoints, np.arange(72))

    smooth = relifted(track, noisy, scores, relift, FilterSpec(cutoff_hz=4.0), 0.3)
    assert calls == [72]
    truth = np.concatenate([clip.truth_2d, clip.truth], axis=1)
    lumbar = names.index("lumbar_flex")
    err = lambda v: float(np.sqrt(np.nanmean((v[5:-5, lumbar] - truth[5:-5, lumbar]) ** 2)))  # noqa: E731
    assert err(smooth.angles) < 0.6 * err(raw.values) and np.isfinite(smooth.angles[30:33, lumbar]).all()
    assert np.isnan(raw.values[30:33, lumbar]).all()  # the raw path had nothing there
    assert np.isfinite(smooth.points[30:33, K["spine_03"]]).all() and len(names) == len(NAMES_2D) + len(NAMES_3D)


@pytest.mark.slow
def test_infer_lift_filtered_relifts_each_track_from_its_filtered_2d(tmp_path, capsys):
    opensim = pytest.importorskip("opensim", reason="OpenSim's TRC reader: pip install opensim (dev extra)")
    from spinepose_deploy.synth.files import write_clip

    video = write_clip(tmp_path, make_clip("bend", frames=24))
    runs = {}
    for name, extra in (("plain", []), ("relifted", ["--lift-filtered"])):
        out = tmp_path / name
        code = main(["infer", str(video), "--weights", "trained", "--lift", "--trc", str(out), "--spine",
                     str(out / "a.csv"), *extra])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        table = opensim.TimeSeriesTableVec3(str(out / "bend_track0.trc"))
        rows = [table.getRowAtIndex(t) for t in range(table.getNumRows())]
        runs[name] = np.array([[[row[m].get(i) for i in range(3)] for m in range(33)] for row in rows])
    assert np.isfinite(runs["relifted"]).all() and runs["relifted"].shape == runs["plain"].shape
    assert np.abs(runs["relifted"] - runs["plain"]).max() > 1e-4  # the markers really come from another lift

"""``infer --ray``: a local 2-CPU Ray instance gives the single-machine outputs, survives a killed worker,
skips finished inputs on a rerun and reports bad files; without ray the CLI says how to install it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from spinepose_deploy.cli import main
from spinepose_deploy.errors import BackendUnavailableError, InputFileError, InvalidOptionError
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.pipeline.spec import PipelineSpec
from spinepose_deploy.scale.ray_infer import RAY_MISSING
from spinepose_deploy.scale.sources import resolve_sources

DATA = package_data_dir()
OPTIONS = {"lift": True}  # 3D and the world frame: the most state a video carries across frames


def _image(src: str, path: Path, size: int = 416) -> Path:
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(DATA / src)), (size, size)))
    return path


def _video(path: Path, count: int = 8, size: tuple[int, int] = (320, 320)) -> Path:
    image = cv2.resize(cv2.imread(str(DATA / "astronaut.jpg")), size[::-1])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size[::-1])
    for i in range(count):
        writer.write(np.roll(image, 4 * i, axis=1))
    writer.release()
    return path


def _files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every output (the resume bookkeeping folder left out)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".spinepose-ray" not in p.parts
    }


# ---------------------------------------------------------------- fast: no Ray needed


def test_sources_from_a_glob_a_list_file_and_a_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for folder in ("x", "y"):
        (tmp_path / folder / "clip.avi").write_bytes(b"")
    (tmp_path / "x" / "clip.jpg").write_bytes(b"")
    (tmp_path / "x" / "notes.txt").write_text("not media")
    found = resolve_sources(str(tmp_path / "**" / "*"))
    names = sorted(s.name for s in found.spec.sources)
    assert names == ["clip.jpg", "x_clip.avi", "y_clip.avi"]  # shared stems, then shared names, disambiguated
    assert all(s.path.is_absolute() for s in found.spec.sources) and found.spec.kind == "folder"
    listing = tmp_path / "files.txt"
    listing.write_text("# two files and a stranger\nx/clip.jpg\n\ny/clip.avi\nx/notes.txt\n")
    found = resolve_sources(listing)
    assert [(s.kind, s.name) for s in found.spec.sources] == [("image", "clip.jpg"), ("video", "clip.avi")]
    assert len(found.rejected) == 1 and "notes.txt" in found.rejected[0][1]
    assert [s.name for s in resolve_sources(tmp_path / "x").spec.sources] == ["clip.avi", "clip.jpg"]
    with pytest.raises(InputFileError, match="matches no images or videos"):
        resolve_sources(str(tmp_path / "*.png"))
    with pytest.raises(InputFileError, match="webcam cannot run on Ray"):
        resolve_sources("0")


def test_pipeline_spec_refuses_zoo_options_with_a_bundle(tmp_path):
    with pytest.raises(InvalidOptionError, match="mode: not allowed with a bundle"):
        PipelineSpec(bundle=str(tmp_path), mode="large")
    with pytest.raises(InvalidOptionError, match="unknown"):
        PipelineSpec(options={"lfit": True})


def test_without_ray_the_cli_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from spinepose_deploy.scale import infer_on_ray

    with pytest.raises(BackendUnavailableError) as info:
        infer_on_ray(tmp_path, out_json=tmp_path / "out")
    assert str(info.value) == RAY_MISSING
    assert main(["infer", str(tmp_path), "--ray", "--json", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {RAY_MISSING}"  # one line, the [ray] extra not eaten as markup


# ---------------------------------------------------------------- on a local Ray instance


@pytest.fixture(scope="module")
def local_ray(session_cache):
    """A 2-CPU local Ray (workers inherit SPINEPOSE_DEPLOY_CACHE from this process)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def bundle(standin_paths):
    from spinepose_deploy.pipeline.load import BundleRecipe

    return BundleRecipe("onnxruntime", "fp32", "standin").cached()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Two images, an 8-frame video and a corrupt image."""
    folder = tmp_path_factory.mktemp("mixed")
    _image("astronaut.jpg", folder / "a.jpg")
    _image("grace_hopper.jpg", folder / "b.png")
    _video(folder / "c.avi")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    return folder


@pytest.fixture(scope="module")
def reference(mixed, bundle, tmp_path_factory):
    """The single-machine ``infer`` outputs for the good files (same names: a folder input)."""
    from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
    from spinepose_deploy.pipeline.io import resolve_input
    from spinepose_deploy.pipeline.pipeline import Pipeline

    root = tmp_path_factory.mktemp("reference")
    clean = root / "in"
    shutil.copytree(mixed, clean, ignore=shutil.ignore_patterns("broken.*"))
    plan = OutputPlan(resolve_input(clean), root / "json", root / "vis")
    with Pipeline.from_bundle(bundle, **OPTIONS) as pipeline:
        run_infer(pipeline, plan)
    return {"json": _files(root / "json"), "vis": _files(root / "vis")}


def _check_outputs(out: Path, reference: dict) -> None:
    for kind in ("json", "vis"):
        got = _files(out / kind)
        assert sorted(got) == sorted(reference[kind])
        different = [name for name in got if got[name] != reference[kind][name]]
        assert not different, f"{kind} outputs differ from the single-machine run: {different}"


@pytest.fixture(scope="module")
def first_run(local_ray, mixed, bundle, tmp_path_factory):
    from spinepose_deploy.scale import infer_on_ray

    out = tmp_path_factory.mktemp("ray-out")
    spec = PipelineSpec(bundle=str(bundle), options=OPTIONS)
    summary = infer_on_ray(mixed, pipeline=spec, out_json=out / "json", out_vis=out / "vis", progress=False)
    return out, spec, summary


def test_mixed_folder_matches_the_single_machine_run(first_run, reference):
    out, _, summary = first_run
    assert [o.name for o in summary.done] == ["a", "b", "c"]
    assert [(o.name, o.frames) for o in summary.done if o.kind == "video"] == [("c", 8)]
    (failed,) = summary.failed
    assert failed.name == "broken" and "not a readable image" in failed.error
    assert summary.actors == 2 and summary.frames == 10
    _check_outputs(out, reference)
    written = json.loads((out / "json" / ".spinepose-ray" / "summary.json").read_text())
    assert written["counts"] == {"done": 3, "skipped": 0, "failed": 1}
    assert written["failed"][0]["error"] == failed.error and "\n" not in failed.error
    marker = json.loads((out / "json" / ".spinepose-ray" / "markers" / "c.done.json").read_text())
    assert marker["frames"] == 8 and len(marker["outputs"]) == 9  # 8 frame JSONs + the overlay video


def test_a_second_run_does_no_work(first_run, mixed, bundle, capsys):
    out, _, _ = first_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"}
    # the CLI spells every option out; the first run gave only lift: the same settings, so nothing to do
    argv = ["infer", str(mixed), "--bundle", str(bundle), "--lift", "--json", str(out / "json"),
            "--vis", str(out / "vis"), "--ray"]  # fmt: skip
    assert main(argv) == 1  # 1: an input failed (in the first run; not retried, the file is unchanged)
    assert "0 done, 3 skipped, 1 failed" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"}
    assert after == before
    summary = json.loads((out / "json" / ".spinepose-ray" / "summary.json").read_text())
    assert summary["actors"] == 0 and summary["done"] == []  # no worker was even started
    assert sorted(o["name"] for o in summary["skipped"]) == ["a", "b", "c"]
    assert [(o["name"], o["previous"]) for o in summary["failed"]] == [("broken", True)]


def test_a_worker_killed_mid_video_is_replaced_and_the_job_completes(local_ray, mixed, bundle, reference, tmp_path):
    from spinepose_deploy.scale import infer_on_ray

    class KillOnce:
        """Builds the pipeline; its first ``track`` SIGKILLs the worker process at frame 3 (once per test)."""

        def __init__(self, spec, flag):
            self.spec, self.flag = spec, flag

        def __call__(self):
            import os
            import signal

            pipeline, flag = self.spec.build(), self.flag
            original = pipeline.track

            def track(frames, *args, **kwargs):
                for index, result in enumerate(original(frames, *args, **kwargs)):
                    if index == 3 and not flag.exists():
                        flag.touch()
                        os.kill(os.getpid(), signal.SIGKILL)
                    yield result

            pipeline.track = track
            return pipeline

    flag = tmp_path / "killed"
    factory = KillOnce(PipelineSpec(bundle=str(bundle), options=OPTIONS), flag)
    out = tmp_path / "out"
    summary = infer_on_ray(mixed, pipeline=factory, out_json=out / "json", out_vis=out / "vis", progress=False)
    assert flag.exists() and summary.worker_restarts == 1 and summary.retries == 1
    assert [(o.name, o.attempts) for o in summary.done] == [("a", 1), ("b", 1), ("c", 2)]
    assert [o.name for o in summary.failed] == ["broken"]
    _check_outputs(out, reference)
    assert not [p for p in (out / "vis").iterdir() if p.name.startswith(".")]  # no temporaries left in place


def test_a_bundle_shipped_through_the_object_store_gives_the_same_outputs(local_ray, mixed, bundle, reference,
                                                                           session_cache, tmp_path):  # fmt: skip
    from spinepose_deploy.scale import infer_on_ray

    out = tmp_path / "out"
    spec = PipelineSpec(bundle=str(bundle), options=OPTIONS)
    images = [mixed / "a.jpg", mixed / "b.png"]
    summary = infer_on_ray(images, pipeline=spec, out_json=out, ship_bundle=True, num_actors=1, progress=False)
    assert [o.name for o in summary.done] == ["a", "b"] and not summary.failed
    assert _files(out) == {name: data for name, data in reference["json"].items() if "/" not in name}
    (unpacked,) = [p for p in (session_cache / "ray-bundles").iterdir() if p.is_dir()]
    assert (unpacked / "manifest.json").read_bytes() == (Path(bundle) / "manifest.json").read_bytes()


# ---------------------------------------------------------------- long videos in segments, spine files


@pytest.fixture(scope="module")
def walking(tmp_path_factory):
    """A 1.5-second synthetic video of people walking in and out (MJPG: every frame a keyframe)."""
    from spinepose_deploy.synth.video import WalkingClip

    folder = tmp_path_factory.mktemp("long")
    writer = cv2.VideoWriter(str(folder / "walk.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for frame in WalkingClip(3, frames=45, people=3, size=(240, 320), fps=30.0):
        writer.write(frame.image)
    writer.release()
    _image("astronaut.jpg", folder / "still.jpg")
    return folder


@pytest.fixture(scope="module")
def trained_spec(standin_paths):
    from spinepose_deploy.pipeline.load import BundleRecipe

    bundle = BundleRecipe("onnxruntime", "fp32", "trained").cached()  # people found and tracked in synthetic video
    return PipelineSpec(bundle=str(bundle), options=OPTIONS)


def _spine_request(root: Path):
    from spinepose_deploy.pipeline.spine_outputs import SpineRequest

    return SpineRequest(csv=root / "angles.csv", trc=root / "trc")


def test_segments_joined_on_one_machine_are_the_whole_video_run(walking, trained_spec, tmp_path):
    """No Ray: the segments' raw results, checked and stitched, are the whole-video run, spine rows included."""
    from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
    from spinepose_deploy.pipeline.io import InputSource, resolve_input
    from spinepose_deploy.scale import segments, spine_rows

    video = walking / "walk.avi"
    source = InputSource("video", "walk", video)
    with trained_spec.build() as pipeline:
        whole = spine_rows.Rows()
        run_infer(pipeline, OutputPlan(resolve_input(video), tmp_path / "whole"), spine=whole)
        parts = segments.plan_segments(45, 30.0, 0.5, pipeline.options.detection_policy().every)
        assert [(p.start, p.stop, p.warmup) for p in parts] == [(0, 15, 0), (15, 30, 10), (30, None, 10)]
        results = [segments.run_segment(pipeline, source, p, 10) for p in parts]
    assert segments.mismatch(results) is None
    joined = spine_rows.Rows()
    segments.stitch(results, OutputPlan(resolve_input(video), tmp_path / "joined"), source, spine=joined)
    assert _files(tmp_path / "joined") == _files(tmp_path / "whole")
    rows, fps = spine_rows.from_bytes(spine_rows.to_bytes(joined.rows, joined.fps))
    assert fps == 30.0 and len(rows) == 45
    for (frame, time_s, got, size), (frame0, time0, want, size0) in zip(rows, whole.rows, strict=True):
        assert (frame, time_s, size) == (frame0, time0, size0) == (frame0, time0, (240, 320))
        assert got.track_ids.tolist() == want.track_ids.tolist()
        assert np.array_equal(got.keypoints_3d_world, want.keypoints_3d_world, equal_nan=True)
        assert got.vertical == want.vertical and got.vertical is not None  # the files name it
    broken = list(results)
    broken[1] = segments.SegmentResult(**{**results[1].__dict__, "head": "0" * 64})
    assert "did not reach the state" in segments.mismatch(broken)


@pytest.mark.slow
def test_a_long_video_in_segments_gives_the_single_machine_json_and_spine_files(local_ray, walking, trained_spec,
                                                                                 tmp_path, capsys):  # fmt: skip
    from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
    from spinepose_deploy.pipeline.io import resolve_input
    from spinepose_deploy.pipeline.spine_outputs import SpineRecorder
    from spinepose_deploy.scale import infer_on_ray

    local = tmp_path / "local"
    with trained_spec.build() as pipeline:
        run_infer(pipeline, OutputPlan(resolve_input(walking), local / "json"),
                  spine=SpineRecorder(_spine_request(local)))  # fmt: skip
    out = tmp_path / "ray"
    summary = infer_on_ray(walking, pipeline=trained_spec, out_json=out / "json", segment_seconds=0.5,
                           spine=_spine_request(out), progress=False)  # fmt: skip
    assert summary.segments == 3 and summary.rejoined == 0  # 15-frame segments, each joined exactly
    assert [(o.name, o.frames) for o in summary.done] == [("still", 1), ("walk", 45)]
    assert _files(out / "json") == _files(local / "json")
    assert (out / "angles.csv").read_bytes() == (local / "angles.csv").read_bytes()
    trc = _files(out / "trc")
    assert trc == _files(local / "trc") and len(trc) >= 2  # one file per track id: the ids are the same too
    rows = (local / "angles.csv").read_text().splitlines()
    header = rows[0].split(",")
    frame_col, track_col = header.index("frame"), header.index("track_id")
    frames_of: dict[str, set[int]] = {}
    for row in rows[1:]:
        cells = row.split(",")
        if cells[0] == "walk":
            frames_of.setdefault(cells[track_col], set()).add(int(cells[frame_col]))
    assert any(min(f) < 15 and max(f) >= 30 for f in frames_of.values()), "a track crosses every boundary"
    # a rerun skips both inputs and still writes the spine files, from the rows kept in the bookkeeping
    again = tmp_path / "again"
    argv = ["infer", str(walking), "--bundle", trained_spec.bundle, "--lift", "--json", str(out / "json"), "--ray",
            "--segment-seconds", "0.5", "--spine", str(again / "angles.csv"), "--trc", str(again / "trc")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "0 done, 2 skipped, 0 failed" in printed and "spine:" in printed
    assert (again / "angles.csv").read_bytes() == (local / "angles.csv").read_bytes()
    assert _files(again / "trc") == trc


@pytest.mark.slow
def test_ray_with_a_relative_calibration_gives_the_single_machine_outputs(local_ray, walking, trained_spec, tmp_path,
                                                                         monkeypatch, capsys):  # fmt: skip
    """--calibration (and so --camera-pitch/--camera-roll, the same options) reach the Ray workers: a relative
    path is read by workers whose folder differs, and the vertical comes back into the driver's files."""
    from spinepose_deploy.ops.calibration import read_calibration

    monkeypatch.chdir(tmp_path)
    # a Pose2Sim camera (z-up world, world -> camera Rodrigues rotation) 105 deg about x: looking 15 deg down
    Path("Calib.toml").write_text(
        '[cam_01]\nname = "cam_01"\nsize = [ 320.0, 240.0]\n'
        "matrix = [ [ 280.0, 0.0, 160.0], [ 0.0, 280.0, 120.0], [ 0.0, 0.0, 1.0]]\n"
        f"distortions = [ 0.0, 0.0, 0.0, 0.0]\nrotation = [ {np.radians(105.0)}, 0.0, 0.0]\n"
        "translation = [ 0.0, 1.0, 4.0]\nfisheye = false\n\n[metadata]\nadjusted = false\nerror = 0.0\n"
    )
    assert read_calibration("Calib.toml").vertical.pitch_deg == pytest.approx(15.0)
    video = str(walking / "walk.avi")
    common = ["--bundle", trained_spec.bundle, "--lift", "--calibration", "Calib.toml"]
    assert main(["infer", video, *common, "--json", "local/json", "--spine", "local/a.csv", "--trc", "local/trc",
                 "--mot", "local/mot"]) == 0  # fmt: skip
    assert main(["infer", video, *common, "--ray", "--segment-seconds", "0.5", "--json", str(tmp_path / "ray/json"),
                 "--spine", "ray/a.csv", "--trc", "ray/trc", "--mot", "ray/mot"]) == 0  # fmt: skip
    assert "3 video segments" in capsys.readouterr().out
    for kind in ("json", "trc", "mot"):
        local = _files(tmp_path / "local" / kind)
        assert local and _files(tmp_path / "ray" / kind) == local, kind
    assert (tmp_path / "ray/a.csv").read_bytes() == (tmp_path / "local/a.csv").read_bytes()
    rows = (tmp_path / "ray/a.csv").read_text().splitlines()
    header = rows[1 - 1].split(",")
    cells = rows[1].split(",")
    assert cells[header.index("vertical_source")] == "calibration"
    assert float(cells[header.index("camera_pitch_deg")]) == pytest.approx(15.0, abs=1e-3)

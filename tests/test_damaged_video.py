"""A damaged video is read quietly: FFmpeg's flood stays off the terminal, one warning line says what was hit.

The clips are real: written with OpenCV's FFmpeg (MPEG-4 Part 2 in MP4, MJPEG in AVI), then damaged on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from spinepose_deploy import _video
from spinepose_deploy.export import calibration
from spinepose_deploy.paths import package_data_dir
from spinepose_deploy.pipeline.io import InputSource, VideoReader

FFMPEG_NOISE = "@ 0x"  # every FFmpeg log line reads "[codec @ 0x...] ..."
pytestmark = pytest.mark.skipif(os.name == "nt", reason="FFmpeg's log is silenced, not counted, on Windows")


def _clip(path: Path, count: int, fourcc: str) -> Path:
    image = cv2.resize(cv2.imread(str(package_data_dir() / "astronaut.jpg")), (320, 256))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (320, 256))
    for i in range(count):
        writer.write(np.roll(image, 5 * i, axis=1))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """clean.mp4 (30 frames), damaged.mp4 (the same with 4 KB zeroed in the middle), truncated.avi."""
    root = tmp_path_factory.mktemp("clips")
    clean = _clip(root / "clean.mp4", 30, "mp4v")
    data = bytearray(clean.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    (root / "damaged.mp4").write_bytes(bytes(data))
    avi = _clip(root / "whole.avi", 10, "MJPG").read_bytes()
    (root / "truncated.avi").write_bytes(avi[: int(len(avi) * 0.6)])
    return {"clean": clean, "damaged": root / "damaged.mp4", "truncated": root / "truncated.avi"}


def _first_changed_frame(clean: Path, damaged: Path) -> int:
    """Where the damage shows: the first frame whose pixels differ from the clean clip's (read quietly)."""
    a, b = _video.open_capture(str(clean)), _video.open_capture(str(damaged))
    report = _video.DecodeReport()
    for index in range(30):
        if not np.array_equal(_video.read_frame(a, index, report)[1], _video.read_frame(b, index, report)[1]):
            return index
    raise AssertionError("the damage changed no frame")


def test_reader_counts_concealed_frames_and_keeps_ffmpeg_off_stderr(clips, capfd):
    with VideoReader(InputSource("video", "damaged", clips["damaged"])) as reader:
        frames = list(reader)
    assert len(frames) == 30
    out, err = capfd.readouterr()
    assert FFMPEG_NOISE not in err and FFMPEG_NOISE not in out
    report = reader.decode
    assert report.damaged and report.damaged[0] == _first_changed_frame(clips["clean"], clips["damaged"])
    assert report.messages > 1000 and report.stopped_at is None
    with VideoReader(InputSource("video", "clean", clips["clean"])) as reader:
        assert len(list(reader)) == 30 and reader.decode.ok


def test_reader_says_where_an_unreadable_frame_stopped_it(clips, capfd):
    with VideoReader(InputSource("video", "truncated", clips["truncated"])) as reader:
        count = len(list(reader))
    assert 0 < count < 10 and reader.decode.stopped_at == count and reader.decode.announced == 10
    assert f"video ended after {count} of the 10 frames its header announces: frame {count} could not be read" in (
        reader.decode.warning("truncated.avi")
    )
    assert FFMPEG_NOISE not in capfd.readouterr().err


def test_other_output_written_while_reading_is_passed_through(capfd):
    result, lines = _video.quietly(lambda: os.write(2, b"[h264 @ 0x1234] noise\nnot ffmpeg\n"))
    assert lines == ["[h264 @ 0x1234] noise"]
    assert capfd.readouterr().err == "not ffmpeg\n"


@pytest.fixture(scope="module")
def bundle(standin_paths):
    from spinepose_deploy.pipeline.load import BundleRecipe

    return BundleRecipe("onnxruntime", "fp32", "standin").cached()


def test_infer_cli_on_a_damaged_video_is_quiet_and_warns_once(clips, bundle, tmp_path):
    out = tmp_path / "json"
    command = [sys.executable, "-c", "from spinepose_deploy.cli import run; run()", "infer", str(clips["damaged"]),
               "--bundle", str(bundle), "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    assert FFMPEG_NOISE not in done.stderr.replace("'[mpeg4 @ 0x", "")  # only the quoted first message
    first = _first_changed_frame(clips["clean"], clips["damaged"])
    warnings = [line for line in done.stderr.splitlines() if "damaged video" in line]
    assert len(warnings) == 1, done.stderr
    assert f"damaged.mp4: damaged video: 1 frame(s) decoded with errors and were concealed by FFmpeg, the first " \
           f"at frame {first}" in warnings[0]  # fmt: skip
    assert done.stdout.startswith("30 frames")
    flagged = sorted(p.name for p in out.glob("*.json") if json.loads(p.read_text()).get("decode_damaged"))
    assert flagged == [f"frame_{first:05d}.json"] and len(list(out.glob("*.json"))) == 30


def test_calibration_video_leaves_damaged_frames_out_and_says_so(clips, capfd, caplog):
    source = calibration.open_source(clips["damaged"], samples=24)  # 24 samples + held-out: every frame
    first = _first_changed_frame(clips["clean"], clips["damaged"])
    used = {f.index for f in source.calib + source.holdout}
    assert first not in used and source.decode["first_damaged_frame"] == first
    assert source.describe()["decode"]["damaged_frames"] == 1  # recorded in the manifest's calibration
    warnings = [r.getMessage() for r in caplog.records if "damaged video" in r.getMessage()]
    assert len(warnings) == 1 and f"the first at frame {first}" in warnings[0] and "left out of calibration" in (
        warnings[0]
    )
    images = [image for _, image in source.frames()]
    assert len(images) == 24 and FFMPEG_NOISE not in capfd.readouterr().err


def test_ray_worker_reports_the_damage_in_its_outcome_and_marker(clips, bundle, tmp_path, capfd):
    """The Ray worker's unit of work (run_unit), as each actor runs it."""
    from spinepose_deploy.pipeline.infer import OutputPlan
    from spinepose_deploy.pipeline.io import resolve_input
    from spinepose_deploy.pipeline.spec import PipelineSpec
    from spinepose_deploy.scale import resume
    from spinepose_deploy.scale.worker import Unit, run_unit

    plan = OutputPlan(resolve_input(clips["damaged"]), tmp_path / "json")
    source = plan.spec.sources[0]
    marker = resume.marker_path(resume.state_dir(plan), source)
    with PipelineSpec(bundle=str(bundle)).build() as pipeline:
        outcome = run_unit(pipeline, plan, Unit(source, "fp", marker))
    first = _first_changed_frame(clips["clean"], clips["damaged"])
    assert outcome.status == "done" and outcome.frames == 30
    assert outcome.to_dict()["decode"]["first_damaged_frame"] == first
    assert f"the first at frame {first}" in outcome.decode["warning"]
    assert json.loads(marker.read_text())["decode"]["damaged_frames"] == 1
    assert FFMPEG_NOISE not in capfd.readouterr().err

"""Model zoo specs, the CLI skeleton and the shared atomic writes."""

from __future__ import annotations

import json

import pytest

from spinepose_deploy import _atomic
from spinepose_deploy.cli import main
from spinepose_deploy.errors import InvalidOptionError, UnknownModelError
from spinepose_deploy.zoo.specs import MODELS, MODES, Role, get_spec, resolve_mode


def test_zoo_has_every_released_graph():
    names = set(MODELS)
    assert {f"pose-{v}-v2" for v in "sml"} | {f"pose-{v}-v1" for v in "smlx"} <= names
    assert {"yolox-tiny", "yolox-m", "yolox-x", "rfdetr-n", "rfdetr-s", "rfdetr-m", "rfdetr-l", "lifter"} <= names
    assert len(MODELS) == 15
    for spec in MODELS.values():
        assert spec.url.startswith("https://") and spec.inputs and spec.outputs


def test_pose_contract_follows_input_size():
    spec = get_spec("pose-x-v1")
    assert spec.input_size == (384, 288)
    assert spec.outputs[0].shape == ("batch", 37, 576) and spec.outputs[1].shape == ("batch", 37, 768)
    assert spec.url.endswith("spinepose-x_32xb128-10e_spinetrack-384x288.onnx")
    assert get_spec("pose-s-v2").url.endswith("spinepose-s_32xb256-10e_simspine-256x192.onnx")


def test_yolox_digests_are_the_published_ones():
    # written out from the mmpose download page, not derived from the specs: a typo in either is caught
    published = {"yolox-tiny": "6f3252f9", "yolox-m": "c2c7a14a", "yolox-x": "a39d44ed"}
    for name, digest in published.items():
        spec = get_spec(name)
        assert spec.sha256_prefix == digest and spec.archive_member == "end2end.onnx"
        assert spec.url.startswith("https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/")
        assert spec.url.endswith(f"-{digest}.zip")


def test_modes_resolve_and_refuse_v2_for_xlarge():
    selection = resolve_mode("medium", "rfdetr", "v1")
    assert (selection.detector.name, selection.pose.name, selection.lifter.role) == (
        "rfdetr-s",
        "pose-m-v1",
        Role.LIFTER,
    )
    assert set(MODES) == {"small", "medium", "large", "xlarge"}
    with pytest.raises(InvalidOptionError, match="xlarge.*only v1"):
        resolve_mode("xlarge", "yolox", "v2")


def test_unknown_model_suggests_the_close_name():
    with pytest.raises(UnknownModelError, match="Did you mean 'pose-s-v2'"):
        get_spec("pose-s-v3")


def test_cli_models_json_lists_all(capsys):
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["models"]) == 15 and data["modes"]["xlarge"]["versions"] == ["v1"]


def _row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [name])


def test_cli_models_table_says_what_is_cached_pinned_and_built(tmp_path, monkeypatch, capsys, standin_paths):
    """Real files in a fresh cache: a pinned real lifter, a built lifter stand-in, nothing else."""
    import shutil

    from spinepose_deploy.zoo import fetch

    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPINEPOSE_DEPLOY_MODELS", raising=False)
    lifter = get_spec("lifter")
    (tmp_path / "cache" / "standins").mkdir(parents=True)
    shutil.copy(standin_paths["lifter"], tmp_path / "cache" / "standins" / standin_paths["lifter"].name)
    models = tmp_path / "dir"
    models.mkdir()
    shutil.copy(standin_paths["lifter"], models / lifter.filename)
    real = fetch.fetch_model(lifter, models_dir=models)  # pins it (used in place, not copied)
    shutil.copy(real, fetch.models_cache() / lifter.filename)  # and now cached too
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    size_mb = 2 * standin_paths["lifter"].stat().st_size / 1e6
    assert _row(out, "lifter")[-3:] == ["pinned", "built", f"{size_mb:.1f}"]
    assert _row(out, "pose-s-v2")[-3:] == ["-", "-", "-"]
    assert "Trained stand-ins ship with the package for: pose-s-v2, yolox-tiny, lifter" in out
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    local = next(m["local"] for m in data["models"] if m["name"] == "lifter")
    assert local["pinned"] == fetch.sha256_file(real) and len(local["standins"]) == 1
    assert data["cache"]["size_bytes"] >= 2 * standin_paths["lifter"].stat().st_size


def test_cli_models_table_fits_80_columns_and_widens_on_a_wide_terminal(tmp_path):
    import os
    import subprocess
    import sys

    def models(columns: int) -> list[str]:
        env = {**os.environ, "COLUMNS": str(columns), "SPINEPOSE_DEPLOY_CACHE": str(tmp_path)}
        command = [sys.executable, "-c", "from spinepose_deploy.cli import run; run()", "models"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.splitlines()

    narrow = models(80)
    assert max(map(len, narrow)) <= 80 and any(line.split()[:1] == ["rfdetr-n"] for line in narrow)
    header = next(line for line in narrow if line.split()[:1] == ["name"])
    assert header.split() == ["name", "role", "input", "Mparam", "GFLOPs", "real", "stand-in", "MB"]
    assert any("simcc_x, simcc_y" in line for line in models(160))  # outputs shown when there is room


def test_cli_user_error_is_one_line_exit_2(capsys):
    assert main(["models", "build", "nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model 'nonexistent' is unknown") and "Traceback" not in err


def test_cli_doctor_json_reports_ort_cpu(capsys):
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["capabilities"]
    assert any(r["backend"] == "onnxruntime" and r["device"] == "cpu" and r["ok"] for r in rows)
    assert any(r["backend"] == "tensorrt" and not r["ok"] and r["reason"] for r in rows)


def test_atomic_file_write_leaves_nothing_on_interrupt(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), _atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_dir_replace_keeps_old_until_done(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError), _atomic.atomic_dir(target, replace=True) as tmp:
        (tmp / "a").write_text("new")
        raise RuntimeError("boom")
    assert (target / "a").read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    with _atomic.atomic_dir(target, replace=True) as tmp:
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new" and len(list(tmp_path.iterdir())) == 1

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


def test_yolox_digest_comes_from_url():
    for name in ("yolox-tiny", "yolox-m", "yolox-x"):
        spec = get_spec(name)
        assert spec.url.endswith(f"-{spec.sha256_prefix}.zip") and spec.archive_member == "end2end.onnx"


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


def test_cli_user_error_is_one_line_exit_2(capsys):
    assert main(["models", "build", "nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model 'nonexistent' is unknown") and "Traceback" not in err


def test_cli_doctor_json_reports_ort_cpu(capsys):
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
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

"""doctor's setup checks on real package metadata and real library loading."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spinepose_deploy.backends import checks


def _fake_distribution(site: Path, name: str, version: str = "1.0") -> None:
    """An installed-looking distribution (dist-info with METADATA and RECORD) that provides 'onnxruntime'."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"onnxruntime/__init__.py,,\n{info.name}/METADATA,,\n")
    (info / "top_level.txt").write_text("onnxruntime\n")


def test_one_onnxruntime_here_is_ok():
    row = checks.check_onnxruntime_shadowing()
    assert row.ok is True and row.finding == "installed: onnxruntime"


def test_cpu_and_gpu_onnxruntime_installed_together_is_named_with_the_fix(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "onnxruntime-gpu")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert checks.onnxruntime_distributions() == ["onnxruntime", "onnxruntime-gpu"]
    row = checks.check_onnxruntime_shadowing()
    assert row.ok is False and "onnxruntime and onnxruntime-gpu are all installed" in row.finding
    assert row.fix == "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def test_doctor_cli_shows_the_problem_row(tmp_path):
    _fake_distribution(tmp_path, "onnxruntime-gpu")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(tmp_path)])}
    command = [sys.executable, "-c", "from spinepose_deploy.cli import run; run()", "doctor"]
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=120, check=True)
    rows = {row["name"]: row for row in json.loads(done.stdout)["checks"]}
    assert rows["one onnxruntime distribution"]["ok"] is False
    table = subprocess.run(command, env={**env, "COLUMNS": "160"}, capture_output=True, text=True, timeout=120,
                           check=True).stdout  # fmt: skip
    line = next(line for line in table.splitlines() if "one onnxruntime distribution" in line)
    assert "problem" in line and "fix: pip uninstall -y onnxruntime onnxruntime-gpu" in table


def test_library_loading_is_real():
    libc = ("C library", "libc.so.6", "msvcrt.dll")
    assert checks.missing_libraries([libc]) == [] or sys.platform == "darwin"
    absent = ("nothing", "libspinepose-absent.so.1", "spinepose-absent.dll")
    assert checks.missing_libraries([absent]) == ["nothing (" + (absent[2] if os.name == "nt" else absent[1]) + ")"]


def test_cuda_provider_without_cuda_libraries_is_a_problem_row():
    """As an onnxruntime-gpu build reports itself on this host: the libraries are really looked for."""
    missing = checks.missing_libraries()
    row = checks.check_cuda_libraries(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if missing:  # a CPU-only host (CI): cuDNN and friends are not there
        assert row.ok is False and all(name in row.finding for name in missing) and "nvidia-cudnn-cu12" in row.fix
    else:
        assert row.ok is True
    assert checks.check_cuda_libraries(providers=["CPUExecutionProvider"]).ok is None


def test_openvino_without_nncf_is_a_problem_row():
    real = importlib.util.find_spec
    row = checks.check_openvino_nncf(find=lambda name: None if name == "nncf" else real(name))
    if real("openvino") is None:
        assert row.ok is None
    else:
        assert row.ok is False and "without nncf" in row.finding and "spinepose-deploy[openvino]" in row.fix


def test_two_opencv_builds_in_one_cv2_folder_are_named(tmp_path, monkeypatch):
    here = checks.check_opencv_builds()
    assert here.ok in (True, False) and "installed" in here.finding or "share the 'cv2' package" in here.finding
    info = tmp_path / "opencv_python_headless-5.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: opencv-python-headless\nVersion: 5.0.0\n")
    (info / "RECORD").write_text(f"cv2/__init__.py,,\n{info.name}/METADATA,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    row = checks.check_opencv_builds()
    assert row.ok is False and "opencv-python-headless" in row.finding and row.fix.startswith("pip uninstall -y ")


def test_base_dependency_is_the_headless_opencv():
    """Deployments (servers, slim containers) have no libGL, which opencv-python needs at import."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    names = [dep.split(">")[0].split("=")[0].strip() for dep in project["dependencies"]]
    assert "opencv-python-headless" in names and "opencv-python" not in names

"""Setup problems deployment users hit most, each one small check with the fix (``spinepose-deploy doctor``).

Taken from the ONNX Runtime and rtmlib issue trackers: two ONNX Runtime distributions installed over each
other (the CPU one shadows the GPU one: CUDA silently missing), a CUDA-enabled ONNX Runtime whose CUDA
runtime or cuDNN libraries cannot be loaded (ORT then falls back to CPU with a log line nobody reads),
OpenVINO without NNCF (no NNCF INT8 export), and two OpenCV builds in one ``cv2`` folder. Each check reads
package metadata or tries to load a library; none imports a heavy runtime unless it is installed, none raises.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One row of doctor's setup table: ``ok`` None when it does not apply here."""

    name: str
    ok: bool | None
    finding: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def onnxruntime_distributions(mapping: dict[str, list[str]] | None = None) -> list[str]:
    """The installed distributions that provide the ``onnxruntime`` import package (onnxruntime, -gpu, ...)."""
    mapping = importlib.metadata.packages_distributions() if mapping is None else mapping
    return sorted(set(mapping.get("onnxruntime", [])), key=str.lower)


def check_onnxruntime_shadowing(distributions: list[str] | None = None) -> Check:
    """``onnxruntime`` and ``onnxruntime-gpu`` (or -openvino, -directml) both installed write one folder:
    whichever was installed last wins, usually the CPU one, and CUDA is then simply not there."""
    found = onnxruntime_distributions() if distributions is None else distributions
    name = "one onnxruntime distribution"
    if len(found) <= 1:
        return Check(name, True if found else None, f"installed: {found[0]}" if found else "onnxruntime missing")
    keep = next((d for d in found if d.lower() != "onnxruntime"), found[-1])
    return Check(
        name,
        False,
        f"{' and '.join(found)} are all installed and share the 'onnxruntime' package: one shadows the other",
        f"pip uninstall -y {' '.join(found)} && pip install {keep}",
    )


# (what, Linux name, Windows name) of the libraries the CUDA execution provider loads; CUDA 12 / cuDNN 9 builds
CUDA_LIBRARIES = (
    ("CUDA runtime", "libcudart.so.12", "cudart64_12.dll"),
    ("cuBLAS", "libcublas.so.12", "cublas64_12.dll"),
    ("cuDNN", "libcudnn.so.9", "cudnn64_9.dll"),
)


def _nvidia_wheel_dirs() -> list[Path]:
    """The lib folders of NVIDIA's pip wheels (nvidia-cudnn-cu12 ...), which ORT also searches."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = [Path(p) for p in spec.submodule_search_locations]
    return [lib for root in roots for lib in root.glob("*/lib")] + [b for root in roots for b in root.glob("*/bin")]


def missing_libraries(
    libraries: Iterable[tuple[str, str, str]] = CUDA_LIBRARIES, loader: Callable[[str], object] = ctypes.CDLL
) -> list[str]:
    """Which of ``libraries`` cannot be loaded from the system path or NVIDIA's pip wheels (``what`` names)."""
    missing = []
    folders = _nvidia_wheel_dirs()
    for what, linux, windows in libraries:
        name = windows if os.name == "nt" else linux
        candidates = [name, *(str(folder / name) for folder in folders if (folder / name).exists())]
        for candidate in candidates:
            try:
                loader(candidate)
                break
            except OSError:
                continue
        else:
            missing.append(f"{what} ({name})")
    return missing


def check_cuda_libraries(providers: list[str] | None = None, missing: list[str] | None = None) -> Check:
    """A CUDA build of ONNX Runtime lists CUDAExecutionProvider even when it cannot load CUDA or cuDNN; a session
    asking for it then runs on the CPU."""
    name = "CUDA libraries for onnxruntime"
    if providers is None:
        if importlib.util.find_spec("onnxruntime") is None:
            return Check(name, None, "onnxruntime not installed")
        import onnxruntime as ort

        providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return Check(name, None, "this onnxruntime build has no CUDA execution provider")
    if sys.platform == "darwin":
        return Check(name, None, "no CUDA on macOS")
    missing = missing_libraries() if missing is None else missing
    if not missing:
        return Check(name, True, "CUDA runtime, cuBLAS and cuDNN load")
    return Check(
        name,
        False,
        f"CUDAExecutionProvider is listed but {', '.join(missing)} cannot be loaded: sessions fall back to CPU",
        "pip install 'nvidia-cudnn-cu12' 'nvidia-cuda-runtime-cu12' 'nvidia-cublas-cu12' (or install CUDA 12 "
        "and cuDNN 9 and put their lib folder on LD_LIBRARY_PATH / PATH)",
    )


def check_openvino_nncf(find: Callable[[str], object] = importlib.util.find_spec) -> Check:
    """OpenVINO INT8 can come from NNCF or from the QDQ ONNX; without NNCF only the latter is tried."""
    name = "NNCF for OpenVINO INT8"
    if find("openvino") is None:
        return Check(name, None, "openvino not installed")
    if find("nncf") is not None:
        return Check(name, True, "openvino and nncf installed")
    return Check(
        name,
        False,
        "openvino is installed without nncf: INT8 export tries the QDQ graph only (no NNCF quantization)",
        "pip install 'spinepose-deploy[openvino]' (adds nncf)",
    )


def check_opencv_builds(mapping: dict[str, list[str]] | None = None) -> Check:
    """opencv-python, -headless and -contrib all install the one ``cv2`` folder: the last one installed wins
    (a window for --show or not), and uninstalling either leaves no cv2 at all while pip thinks one is there."""
    mapping = importlib.metadata.packages_distributions() if mapping is None else mapping
    found = sorted(set(mapping.get("cv2", [])), key=str.lower)
    name = "one OpenCV build"
    if len(found) <= 1:
        return Check(name, True if found else None, f"installed: {found[0]}" if found else "opencv missing")
    keep = "opencv-python" if "opencv-python" in found else found[0]
    return Check(
        name,
        False,
        f"{' and '.join(found)} share the 'cv2' package: whichever was installed last is the one that runs",
        f"pip uninstall -y {' '.join(found)} && pip install {keep} (opencv-python: windows for --show; "
        "opencv-python-headless: servers without libGL)",
    )


CHECKS: tuple[Callable[[], Check], ...] = (
    check_onnxruntime_shadowing, check_cuda_libraries, check_openvino_nncf, check_opencv_builds,
)


def setup_checks() -> list[Check]:
    """Every check in ``CHECKS``; a check that fails unexpectedly becomes a row saying so."""
    rows = []
    for check in CHECKS:
        try:
            rows.append(check())
        except Exception as exc:  # doctor must not break on a broken install
            failed = f"check failed: {type(exc).__name__}: {exc}"
            rows.append(Check(check.__name__.removeprefix("check_"), None, failed))
    return rows

"""Camera calibration files in the TOML format Pose2Sim and Sports2D write (one table per camera).

    [cam_01]
    name = "cam_01"
    size = [1920.0, 1080.0]                      # width, height in pixels
    matrix = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
    distortions = [k1, k2, p1, p2]
    rotation = [rx, ry, rz]                      # Rodrigues vector, world -> camera (OpenCV)
    translation = [tx, ty, tz]                   # metres, world -> camera
    fisheye = false

Pose2Sim's world is z-up (the calibration board on the floor; its TRC writer turns z-up into y-up), so the
vertical in the camera is the rotation's third column. The ``[metadata]`` table and tables without a
``matrix`` are skipped. Distortion is read and recorded but not undone (the pipeline works on the image as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .world import SOURCE_CALIBRATION, Vertical

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Calibration:
    """One camera of a calibration file: intrinsics for its image ``size`` (width, height) and extrinsics."""

    name: str
    size: tuple[int, int]
    intrinsics: np.ndarray  # (3, 3)
    rotation: np.ndarray  # (3, 3) world -> camera
    translation: np.ndarray  # (3,)
    distortions: tuple[float, ...] = ()

    @property
    def vertical(self) -> Vertical:
        """World up (z in Pose2Sim's world) in this camera."""
        return Vertical(tuple(float(v) for v in self.rotation[:, 2]), SOURCE_CALIBRATION, 0.0)

    def intrinsics_for(self, width: int, height: int) -> np.ndarray:
        """The camera matrix scaled to a frame of ``width`` x ``height`` (a resized video of the same camera)."""
        k = self.intrinsics.copy()
        k[0] *= width / self.size[0]
        k[1] *= height / self.size[1]
        return k


def rodrigues(vector: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of a Rodrigues vector (axis x angle in radians), as ``cv2.Rodrigues``."""
    v = np.asarray(vector, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def _array(path: Path, table: str, key: str, data: dict, shape: tuple[int, ...]) -> np.ndarray:
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except KeyError:
        raise InputFileError(f"{path}: [{table}] has no '{key}'") from None
    except (TypeError, ValueError):
        raise InputFileError(f"{path}: [{table}] {key} is not numbers") from None
    if value.shape != shape or not np.isfinite(value).all():
        raise InputFileError(f"{path}: [{table}] {key} has shape {value.shape}, expected {shape} finite numbers")
    return value


def read_calibration(path: str | Path, camera: str | None = None) -> Calibration:
    """The camera ``camera`` (a table name or its ``name``; default: the first) of a Pose2Sim/Sports2D TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"--calibration: cannot read {path} ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"--calibration: {path} is not TOML ({exc})") from exc
    tables = {name: t for name, t in data.items() if isinstance(t, dict) and "matrix" in t}
    if not tables:
        raise InputFileError(f"--calibration: {path} has no camera table with a 'matrix' (Pose2Sim/Sports2D format)")
    if camera is None:
        table = next(iter(tables))
    else:
        named = [n for n, t in tables.items() if n == camera or t.get("name") == camera]
        if not named:
            raise InputFileError(f"--calibration: {path} has no camera '{camera}'; it has {', '.join(tables)}")
        table = named[0]
    t = tables[table]
    k = _array(path, table, "matrix", t, (3, 3))
    size = _array(path, table, "size", t, (2,))
    rotation = rodrigues(_array(path, table, "rotation", t, (3,)))
    translation = _array(path, table, "translation", t, (3,))
    if k[0, 0] <= 0 or k[1, 1] <= 0 or (size <= 0).any():
        raise InputFileError(f"{path}: [{table}] fx, fy and size must be > 0, got {k[0, 0]}, {k[1, 1]}, {size}")
    distortions = tuple(float(v) for v in np.ravel(t.get("distortions", ())))
    return Calibration(str(t.get("name", table)), (int(size[0]), int(size[1])), k, rotation, translation, distortions)

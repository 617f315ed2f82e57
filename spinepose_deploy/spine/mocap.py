"""World-space keypoints as motion-capture files: OpenSim TRC (text) and C3D (through ezc3d).

Both take points ``(T, M, 3)`` in metres (world space, y up, as OpenSim expects), NaN for a marker that is
missing in a frame (not detected, or below the confidence threshold), ``M`` marker names (upstream's OpenSim
names by default: :mod:`.markers`), a frame rate and the video frame index of the first row: times are on
the video's clock (``time = frame / fps``), so a track that starts at frame 50 starts at 50 / fps seconds and
lines up with the video, force plates or EMG. Files are written to a temporary name and renamed, so a failed
run never leaves half of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_path, write_text
from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_NAMES
from .table import VERTICAL_COLUMNS


def _check(points: np.ndarray, names: Sequence[str], rate: float) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (len(names), 3):
        raise ValueError(f"points {points.shape}; expected (frames, {len(names)}, 3)")
    if not rate > 0:
        raise ValueError(f"rate {rate}; expected frames per second > 0")
    return points


def _vertical_cell(vertical: dict | None) -> list[str]:
    """``Vertical.to_dict()`` as one ``key=value ...`` cell; an unknown uncertainty is ``NaN``."""
    if vertical is None:
        return []
    return [" ".join(f"{key}={'NaN' if vertical.get(key) is None else vertical[key]}" for key in VERTICAL_COLUMNS)]


def trc_text(points: np.ndarray, rate: float, names: Sequence[str] = KEYPOINT_NAMES, file_name: str = "",
             first_frame: int = 0, vertical: dict | None = None) -> str:
    """The OpenSim TRC (PathFileType 4, X/Y/Z, metres) for ``points (T, M, 3)``; missing values are ``NaN``.

    ``first_frame`` is the 0-based video frame of the first row: ``Frame#`` counts video frames from 1 (the
    TRC convention) and ``Time`` is ``frame / rate``. Not empty cells for missing values: OpenSim 4.6's
    reader drops empty cells at the end of a line and then refuses the row.

    ``vertical`` (``ops.world.Vertical.to_dict()``: source, camera pitch / roll, uncertainty) goes on the first
    line as a fifth cell, ``vertical_source=floor camera_pitch_deg=... ...``: OpenSim 4.6 refuses any key beyond
    the standard eight on the key line, but keeps the first line as the ``header`` metadata.
    """
    points = _check(points, names, rate)
    frames, markers = points.shape[:2]
    lines = [
        "\t".join(["PathFileType\t4\t(X/Y/Z)", file_name, *_vertical_cell(vertical)]),
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{frames}\t{markers}\tm\t{rate:.6g}\t{first_frame + 1}\t{frames}",
        "\t".join(["Frame#", "Time", *(f"{name}\t\t" for name in names)]).rstrip("\t"),
        "\t".join(["", "", *(f"X{i}\tY{i}\tZ{i}" for i in range(1, markers + 1))]),
        "",
    ]
    cells = np.where(np.isnan(points), "NaN", np.char.mod("%.6f", np.nan_to_num(points))).reshape(frames, -1)
    for t in range(frames):
        frame = first_frame + t
        lines.append("\t".join([str(frame + 1), f"{frame / rate:.6f}", *cells[t]]))
    return "\n".join(lines) + "\n"


def write_trc(path: str | Path, points: np.ndarray, rate: float, names: Sequence[str] = KEYPOINT_NAMES,
              first_frame: int = 0, vertical: dict | None = None) -> Path:
    """Write :func:`trc_text` to ``path`` atomically."""
    path = Path(path)
    return write_text(path, trc_text(points, rate, names, path.name, first_frame, vertical))


def c3d_available() -> bool:
    try:
        import ezc3d  # noqa: F401
    except ImportError:
        return False
    return True


def check_c3d(option: str = "--c3d") -> None:
    if not c3d_available():
        raise InvalidOptionError(
            f"{option}: ezc3d is required to write C3D. Install: pip install 'spinepose-deploy[biomech]'"
        )


def write_c3d(path: str | Path, points: np.ndarray, rate: float, names: Sequence[str] = KEYPOINT_NAMES,
              first_frame: int = 0, vertical: dict | None = None) -> Path:
    """C3D with one point per marker (metres, ``POINT:UNITS`` m, ``POINT:RATE``).

    ``first_frame`` (0-based video frame of the first row) goes into the header (C3D counts from 1) and
    ``TRIAL:ACTUAL_START_FIELD``/``ACTUAL_END_FIELD``, so readers put the track at ``frame / rate`` seconds.
    Missing markers are NaN with residual -1: the C3D convention (a negative residual marks an invalid point)
    that Vicon, Visual3D, Mokka and btk read; present ones have residual 0. ``vertical``
    (``ops.world.Vertical.to_dict()``) becomes the ``WORLD`` parameter group: ``VERTICAL_SOURCE`` (text),
    ``CAMERA_PITCH_DEG``, ``CAMERA_ROLL_DEG`` and, where known, ``VERTICAL_UNCERTAINTY_DEG``.
    """
    check_c3d()
    import ezc3d

    points = _check(points, names, rate)
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [float(rate)]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = tuple(names)
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["m"]
    data = np.ones((4, points.shape[1], points.shape[0]))
    data[:3] = points.transpose(2, 1, 0)
    c3d["data"]["points"] = data
    missing = np.isnan(points).any(axis=-1).T  # (M, T)
    c3d["data"]["meta_points"]["residuals"] = np.where(missing, -1.0, 0.0)[None]
    c3d["data"]["meta_points"]["camera_masks"] = np.zeros((7,) + missing.shape, dtype=bool)
    c3d["header"]["points"]["first_frame"] = int(first_frame)  # ezc3d's header is 0-based; the file stores +1
    start, end = first_frame + 1, first_frame + points.shape[0]
    # two 16-bit words each (low, high), as Vicon writes them for trials longer than 65535 frames
    c3d.add_parameter("TRIAL", "ACTUAL_START_FIELD", [start & 0xFFFF, start >> 16])
    c3d.add_parameter("TRIAL", "ACTUAL_END_FIELD", [end & 0xFFFF, end >> 16])
    if vertical is not None:
        for key in VERTICAL_COLUMNS:
            value = vertical.get(key)
            if value is not None:
                c3d.add_parameter("WORLD", key.upper(), [value if isinstance(value, str) else float(value)])
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:  # ezc3d appends .c3d to any other name
        c3d.write(str(tmp))
    return path

"""Angles per track as OpenSim Storage files (``.mot``): what Sports2D writes and OpenSim, Pose2Sim and
OpenSim's GUI plot read.

Layout (OpenSim's ``STOFileAdapter``): a name line, ``version=1``, ``nRows``, ``nColumns`` (time included),
``inDegrees=yes``, free text, ``endheader``, then a tab-separated table whose first column is ``time``
(seconds on the video's clock: ``frame / fps``). Angles that could not be measured are ``NaN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import write_text
from ..errors import InvalidOptionError
from .table import VERTICAL_COLUMNS


def mot_text(times: np.ndarray, names: Sequence[str], values: np.ndarray, title: str = "angles",
             notes: Sequence[str] = ()) -> str:
    """The ``.mot`` text for ``values (T, C)`` (degrees) at ``times (T,)`` seconds, columns ``names``.

    ``notes`` are free header lines (e.g. the neutral reference); they must not contain ``=``-free keywords
    OpenSim reads (``endheader``).
    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape != (len(times), len(names)):
        raise ValueError(f".mot: values {values.shape}; expected ({len(times)}, {len(names)})")
    if not names:
        raise InvalidOptionError(f"--mot: no angles to write for '{title}' (nothing measured); drop --mot")
    lines = [title, "version=1", f"nRows={len(times)}", f"nColumns={len(names) + 1}", "inDegrees=yes", "",
             "Angles in degrees, time in seconds on the video's clock (frame / fps); NaN: not measured.",
             *(n.replace("endheader", "end header") for n in notes), "endheader",
             "\t".join(["time", *names])]  # fmt: skip
    cells = np.where(np.isnan(values), "NaN", np.char.mod("%.4f", np.nan_to_num(values)))
    for t, row in zip(times, cells, strict=True):
        lines.append("\t".join([f"{t:.6f}", *row]))
    return "\n".join(lines) + "\n"


def vertical_notes(vertical: dict | None) -> list[str]:
    """``ops.world.Vertical.to_dict()`` as ``key=value`` header lines: OpenSim reads them as table metadata
    (``getTableMetaDataAsString('camera_pitch_deg')``); an unknown uncertainty is ``NaN``."""
    if vertical is None:
        return []
    return [f"{key}={'NaN' if vertical.get(key) is None else vertical[key]}" for key in VERTICAL_COLUMNS]


def write_mot(path: str | Path, times: np.ndarray, names: Sequence[str], values: np.ndarray,
              notes: Sequence[str] = ()) -> Path:
    """Write :func:`mot_text` to ``path`` atomically; refuses (one line) a table with no angle column."""
    path = Path(path)
    return write_text(path, mot_text(times, names, values, path.stem, notes))

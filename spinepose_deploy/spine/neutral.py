"""Neutral posture: a reference stretch per track whose angles are subtracted, as clinicians and ergonomists
read motion from a static standing trial.

``--neutral START:END`` takes frames (``0:30``, end excluded) or seconds (``0s:1.5s``) on the video's clock;
``--neutral auto`` finds, per track, the quietest upright stretch by rule: windows of
:data:`AUTO_WINDOW_S` seconds (the whole track when shorter) whose trunk inclination is measured in every
frame, whose median trunk inclination is within :data:`AUTO_MAX_INCL_DEG` of vertical and whose trunk
inclination varies by less than :data:`AUTO_MAX_STD_DEG` (standard deviation); of those, the one with the
smallest sum of |median trunk inclination| and the standard deviations of the trunk and neck inclinations
(the most upright, quietest stretch). The reference is the per-angle median over the stretch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidOptionError
from .filtering import wrap_deg
from .summary import ZONES, first_measured

AUTO_WINDOW_S = 0.5
AUTO_MAX_INCL_DEG = 20.0  # ISO 11226's first trunk zone: upright
AUTO_MAX_STD_DEG = 5.0
# the trunk / neck inclination the rule reads: 3D when lifted, else the image-plane one (as the zones)
TRUNK, NECK = ZONES["trunk"][0], ZONES["neck"][0]
_BOUND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s?)\s*$")


@dataclass(frozen=True)
class NeutralSpec:
    """``auto`` or a range; ``seconds`` says whether ``start``/``end`` are seconds or frames (end excluded)."""

    auto: bool = False
    start: float = 0.0
    end: float = 0.0
    seconds: bool = False
    text: str = "auto"

    @classmethod
    def parse(cls, text: str, option: str = "--neutral") -> NeutralSpec:
        """``auto``, ``START:END`` frames or ``STARTs:ENDs`` seconds; anything else is refused in one line."""
        if text.strip().lower() == "auto":
            return cls(auto=True, text="auto")
        parts = text.split(":")
        bounds = [_BOUND.match(p) for p in parts] if len(parts) == 2 else []
        if not bounds or not all(bounds):
            raise InvalidOptionError(
                f"{option}: '{text}'; expected auto, START:END frames (0:30) or seconds (0s:1.5s)"
            )
        units = {b.group(2) for b in bounds}  # type: ignore[union-attr]
        if len(units) != 1:
            raise InvalidOptionError(f"{option}: '{text}' mixes frames and seconds; give both with or without 's'")
        seconds = units == {"s"}
        start, end = (float(b.group(1)) for b in bounds)  # type: ignore[union-attr]
        if not seconds and (start != int(start) or end != int(end)):
            raise InvalidOptionError(f"{option}: '{text}': frames are whole numbers; add 's' for seconds")
        if end <= start:
            raise InvalidOptionError(f"{option}: '{text}' is empty; END must be after START")
        return cls(start=start, end=end, seconds=seconds, text=text.strip())

    def frames(self, fps: float) -> tuple[int, int]:
        """``[start, end)`` video frames of a range (seconds converted with ``fps``)."""
        if not self.seconds:
            return int(self.start), int(self.end)
        return int(np.ceil(self.start * fps - 1e-9)), int(np.ceil(self.end * fps - 1e-9))

    def check_video(self, name: str, frame_count: int | None, fps: float) -> None:
        """Refuse a range that starts at or after the video's end (``frame_count`` unknown: not checked)."""
        if self.auto or not frame_count:
            return
        start, end = self.frames(fps)
        if start >= frame_count or end > frame_count:
            raise InvalidOptionError(
                f"--neutral {self.text}: frames {start}-{end - 1} are outside '{name}' "
                f"({frame_count} frames, {frame_count / fps:.2f} s at {fps:g} fps)"
            )


@dataclass(frozen=True)
class NeutralReference:
    """The stretch ``[start_frame, end_frame)`` a track's reference came from and the angles there."""

    start_frame: int
    end_frame: int
    frames_used: int
    values: np.ndarray  # (A,) degrees, NaN where never measured in the stretch
    rule: str  # "range" or "auto"

    def to_json(self, names: tuple[str, ...], fps: float) -> dict:
        return {
            "rule": self.rule, "start_frame": self.start_frame, "end_frame": self.end_frame,
            "start_s": round(self.start_frame / fps, 4), "end_s": round(self.end_frame / fps, 4),
            "frames_used": self.frames_used,
            "angles_deg": {n: round(float(v), 3) for n, v in zip(names, self.values, strict=True) if np.isfinite(v)},
        }  # fmt: skip

    def note(self, fps: float) -> str:
        return (f"neutral ({self.rule}): frames {self.start_frame}-{self.end_frame - 1} "
                f"({self.start_frame / fps:.3f}-{self.end_frame / fps:.3f} s), {self.frames_used} frames used")


def _median(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[1], np.nan)
    for column in range(values.shape[1]):
        finite = values[:, column][np.isfinite(values[:, column])]
        if finite.size:
            out[column] = np.median(finite)
    return out


def reference(values: np.ndarray, names: tuple[str, ...], first_frame: int, fps: float,
              spec: NeutralSpec) -> NeutralReference | None:
    """The neutral reference of one track (``values (T, A)`` from video frame ``first_frame``), or None when
    the range holds none of its frames, or ``auto`` finds no quiet upright stretch."""
    frames = first_frame + np.arange(len(values))
    if not spec.auto:
        start, end = spec.frames(fps)
        inside = (frames >= start) & (frames < end) & np.isfinite(values).any(axis=1)
        if not inside.any():
            return None
        return NeutralReference(start, end, int(inside.sum()), _median(values[inside]), "range")
    picked = first_measured(values, names, TRUNK)
    if picked is None:
        return None
    trunk = picked[1]
    neck = (first_measured(values, names, NECK) or (None, None))[1]
    window = min(len(values), max(3, int(round(AUTO_WINDOW_S * fps))))
    best: tuple[float, int] | None = None
    for start in range(len(values) - window + 1):
        part = trunk[start:start + window]
        if not np.isfinite(part).all() or abs(np.median(part)) > AUTO_MAX_INCL_DEG or part.std() > AUTO_MAX_STD_DEG:
            continue
        neck_part = neck[start:start + window] if neck is not None else np.zeros(0)
        neck_part = neck_part[np.isfinite(neck_part)]
        # most upright and quietest: distance from vertical plus how much trunk and neck move
        cost = abs(np.median(part)) + part.std() + (neck_part.std() if neck_part.size > 1 else 0.0)
        if best is None or cost < best[0]:
            best = (float(cost), start)
    if best is None:
        return None
    start = best[1]
    part = values[start:start + window]
    return NeutralReference(first_frame + start, first_frame + start + window, window, _median(part), "auto")


def relative(values: np.ndarray, ref: NeutralReference) -> np.ndarray:
    """``values (T, A)`` minus the reference, wrapped to (-180, 180]."""
    return wrap_deg(values - ref.values)

"""Offline filtering of per-track time series for files and plots (the live path keeps One-Euro).

What Pose2Sim and Sports2D do before anything else, through ``scipy.signal`` (the ``biomech`` extra):

1. **gap interpolation**: runs of missing samples (NaN) up to ``max_gap`` frames long are filled by linear
   interpolation (Pose2Sim: ``interp_if_gap_smaller_than`` = 10); longer gaps stay NaN;
2. **Hampel outlier rejection**: a sample more than ``hampel_sigmas`` scaled MADs from the median of its
   ``2 * hampel_half + 1``-sample window is replaced by that median;
3. **zero-lag Butterworth low-pass**: ``order`` 4 at ``cutoff`` 6 Hz by default (Pose2Sim's defaults). Like
   Pose2Sim, a design of half the order runs forwards and backwards (``sosfiltfilt``), so the zero-lag
   result has the requested order. Each finite run is filtered on its own; runs too short for the
   filter's padding are left as they are.

Series are ``(T, ...)``: time first, any trailing shape (angles ``(T, A)``, markers ``(T, M, 3)``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import InvalidOptionError


class FilterKind(str, Enum):
    """``butterworth`` (gaps, Hampel, Butterworth) or ``none`` (raw values)."""

    BUTTERWORTH = "butterworth"
    NONE = "none"


@dataclass(frozen=True)
class FilterSpec:
    """Options of the offline filter; :meth:`check` refuses impossible ones in one line."""

    kind: FilterKind = FilterKind.BUTTERWORTH
    order: int = 4
    cutoff_hz: float = 6.0
    max_gap: int = 10  # frames
    hampel_half: int = 3  # window 7 samples
    hampel_sigmas: float = 3.0

    @property
    def active(self) -> bool:
        return self.kind is not FilterKind.NONE

    def check(self, fps: float | None = None) -> None:
        """Refuse options no filter can honour; with ``fps``, a cut-off at or above half the frame rate."""
        if not self.active:
            return
        if self.order < 2 or self.order % 2:
            raise InvalidOptionError(f"--filter-order: {self.order}; expected an even order >= 2 (zero-lag doubles it)")
        if not self.cutoff_hz > 0:
            raise InvalidOptionError(f"--filter-cutoff: {self.cutoff_hz} Hz; expected > 0")
        if self.max_gap < 0:
            raise InvalidOptionError(f"--max-gap: {self.max_gap}; expected frames >= 0")
        if fps is not None and self.cutoff_hz >= fps / 2:
            raise InvalidOptionError(
                f"--filter-cutoff: {self.cutoff_hz:g} Hz is at or above half the frame rate ({fps:g} fps / 2 = "
                f"{fps / 2:g} Hz); pick a lower cut-off"
            )


def check_scipy(option: str = "--filter") -> None:
    """scipy (the ``biomech`` extra) does the filtering: fail up front, naming ``option``, when it is missing."""
    try:
        import scipy.signal  # noqa: F401
    except ImportError:
        raise InvalidOptionError(
            f"{option}: scipy is required for offline filtering. Install: pip install 'spinepose-deploy[biomech]' "
            "(or --filter none)"
        ) from None


def _runs(finite: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def interpolate_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """``(T,)``: NaN runs of at most ``max_gap`` samples between two finite samples, linearly filled."""
    x = np.array(x, dtype=np.float64)
    finite = np.isfinite(x)
    if finite.sum() < 2 or max_gap <= 0:
        return x
    idx = np.flatnonzero(finite)
    filled = np.interp(np.arange(len(x)), idx, x[idx])
    for start, end in _runs(~finite):
        inner = start > 0 and end < len(x)  # leading and trailing gaps are never extrapolated
        if inner and end - start <= max_gap:
            x[start:end] = filled[start:end]
    return x


def hampel(x: np.ndarray, half: int = 3, sigmas: float = 3.0) -> np.ndarray:
    """``(T,)`` with outliers (beyond ``sigmas`` x 1.4826 x MAD of their window) replaced by the window median."""
    x = np.array(x, dtype=np.float64)
    if half <= 0 or len(x) < 3:
        return x
    padded = np.pad(x, half, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with warnings.catch_warnings():  # all-NaN windows (gaps) are expected here
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(windows, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(windows - median[:, None]), axis=-1)
    outlier = np.isfinite(x) & (np.abs(x - median) > sigmas * mad) & (mad > 0)
    return np.where(outlier, median, x)


def butterworth(x: np.ndarray, fps: float, order: int = 4, cutoff_hz: float = 6.0) -> np.ndarray:
    """``(T,)`` zero-lag low-passed, each finite run on its own (NaN stay NaN; short runs untouched)."""
    from scipy import signal

    x = np.array(x, dtype=np.float64)
    sos = signal.butter(order // 2, cutoff_hz, btype="low", fs=fps, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    for start, end in _runs(np.isfinite(x)):
        if end - start > padlen:
            x[start:end] = signal.sosfiltfilt(sos, x[start:end], padlen=padlen)
    return x


def filter_series(x: np.ndarray, fps: float, spec: FilterSpec = FilterSpec()) -> np.ndarray:
    """``(T, ...)`` filtered along time per column: gaps, Hampel, Butterworth (a copy; ``none`` returns it raw)."""
    x = np.asarray(x, dtype=np.float64)
    if not spec.active or len(x) == 0:
        return x.copy()
    spec.check(fps)
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    for column in range(flat.shape[1]):
        y = interpolate_gaps(flat[:, column], spec.max_gap)
        y = hampel(y, spec.hampel_half, spec.hampel_sigmas)
        out[:, column] = butterworth(y, fps, spec.order, spec.cutoff_hz)
    return out.reshape(x.shape)


def filter_angles(values: np.ndarray, fps: float, spec: FilterSpec = FilterSpec()) -> np.ndarray:
    """Like :func:`filter_series` for angles in degrees: unwrapped first, so a run crossing +-180 stays smooth."""
    values = np.asarray(values, dtype=np.float64)
    if not spec.active:
        return values.copy()
    unwrapped = values.copy()
    flat = unwrapped.reshape(len(values), -1)
    for column in range(flat.shape[1]):
        for start, end in _runs(np.isfinite(flat[:, column])):
            flat[start:end, column] = np.unwrap(flat[start:end, column], period=360.0)
    return wrap_deg(filter_series(unwrapped, fps, spec))


def wrap_deg(deg: np.ndarray) -> np.ndarray:
    """Degrees to (-180, 180]."""
    return 180.0 - np.mod(180.0 - deg, 360.0)


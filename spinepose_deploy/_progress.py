"""Progress as structured events: what long operations (export, bench) report and what displays read.

A display gets ``ProgressEvent``s (message, step of total, kind) and never parses the message text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long operation. ``kind`` "data" says which data is used (worth showing whatever the
    display), "note" is said without counting a step."""

    message: str
    step: int = 0  # 1-based index of the last counted step
    total: int | None = None  # steps in all; None: not known ahead
    kind: str = "step"  # step | data | note


Progress = Callable[[ProgressEvent], None]


class Steps:
    """Counts steps and hands each to the caller's ``Progress`` as a ``ProgressEvent`` (else logs it)."""

    def __init__(self, progress: Progress | None, total: int | None = None, logger: logging.Logger | None = None):
        self.progress, self.step, self.total = progress, 0, total
        self._log = logger or logging.getLogger(__name__)

    def __call__(self, message: str, kind: str = "step") -> None:
        self.step += kind == "step"
        if self.progress is None:
            self._log.info(message)
        else:
            self.progress(ProgressEvent(message, self.step, self.total, kind))

"""The progress line of a Ray run: files finished of all, frames processed, frames/s, failures (stderr)."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._console import err_console
from .worker import FileOutcome


class Display:
    """One rich bar: files finished of all, frames processed, frames/s since the workers were ready."""

    def __init__(self, total: int, enabled: bool) -> None:


        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[frames]} frames  {task.fields[fps]:.1f} fps  {task.fields[failed]} failed"),
            TimeElapsedColumn(), console=err_console, disable=not enabled, transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task("ray", total=total, frames=0, fps=0.0, failed=0)
        self._failed = 0
        self._since: float | None = None

    def __enter__(self) -> Display:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def started(self, actors: int) -> None:
        self._since = time.perf_counter()
        self._progress.update(self._task, description=f"ray x{actors}")

    def file_done(self, outcome: FileOutcome) -> None:
        self._failed += outcome.status == "failed"
        self._progress.update(self._task, advance=1, failed=self._failed)

    def frames(self, count: int) -> None:
        elapsed = time.perf_counter() - self._since if self._since else 0.0
        self._progress.update(self._task, frames=count, fps=count / elapsed if elapsed > 0 else 0.0)

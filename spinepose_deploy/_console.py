"""Shared rich console and progress bars (stderr, so stdout stays clean for --json)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True, emoji=False)  # ":abc:" in a user value is text, not an emoji code
out_console = Console(emoji=False)

STANDIN_BANNER = (
    "[bold yellow]STAND-IN[/] graphs (architecture-faithful; seeded weights, or trained on synthetic figures): "
    "speed figures are real, keypoints are not SpinePose's."
)


@contextlib.contextmanager
def steps(enabled: bool = True) -> Iterator[Progress]:
    """A progress display for multi-step work; disabled when not interactive or not wanted."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield progress

"""Shared rich console and progress bars (stderr, so stdout stays clean for --json)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

err_console = Console(stderr=True, emoji=False)  # ":abc:" in a user value is text, not an emoji code
out_console = Console(emoji=False)

STANDIN_BANNER = (
    "[bold yellow]STAND-IN[/] graphs (architecture-faithful; seeded weights, or trained on synthetic figures): "
    "speed figures are real, keypoints are not SpinePose's."
)

WIDE_COLUMNS = 120  # below this, tables use their compact layout (short headings, one phrase per cell)
_layout = {"wide": False}  # --verbose: the full tables, folded if they must be


def show_wide_tables(wide: bool) -> None:
    """``--verbose`` asks for every column whatever the width (the compact layout keeps the deciding numbers)."""
    _layout["wide"] = wide


def compact_layout(console: Console = out_console) -> bool:
    """True on narrow terminals, pipes and CI logs (rich assumes 80 columns when stdout is not a terminal)."""
    return not _layout["wide"] and console.width < WIDE_COLUMNS


def new_table(title: str, console: Console = out_console) -> Table:
    """A rich Table; in the compact layout without vertical rules, so 80 columns hold more text unfolded."""
    if compact_layout(console):
        return Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    return Table(title=title)


class _Count(ProgressColumn):
    """'3/12' when the total is known; nothing (not '0/None') while it is not."""

    def render(self, task: Task) -> Text:
        return Text("" if task.total is None else f"{task.completed:g}/{task.total:g}")


@contextlib.contextmanager
def steps(enabled: bool = True) -> Iterator[Progress]:
    """A progress display for multi-step work; disabled when not interactive or not wanted."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),  # pulses while the total is unknown
        _Count(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield progress


class FrameBars:
    """``infer``'s bars: one per video or webcam, one shared by the images of a folder; frames done and fps.

    ``start(name, total)`` and ``step()`` are the callbacks ``pipeline.infer.run_infer`` calls; use as a context.
    """

    def __init__(self, images: int) -> None:
        self._images = images
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"), TimeElapsedColumn(), console=err_console, transient=False,
        )  # fmt: skip
        self._bars: dict[str, list] = {}  # bar name -> [task id, start time, frames done]
        self._current = ""

    def __enter__(self) -> FrameBars:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def start(self, name: str, total: int | None) -> None:
        key = "images" if self._images > 1 and total == 1 else name  # the images of a folder share one bar
        if key not in self._bars:
            label = f"{self._images} images" if key == "images" else escape(name)
            count = self._images if key == "images" else total
            self._bars[key] = [self._progress.add_task(label, total=count, fps=0.0), time.perf_counter(), 0]
        self._current = key

    def step(self) -> None:
        bar = self._bars[self._current]
        bar[2] += 1
        self._progress.update(bar[0], advance=1, fps=bar[2] / max(time.perf_counter() - bar[1], 1e-9))

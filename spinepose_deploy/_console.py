"""Shared rich console and progress bars (stderr, so stdout stays clean for --json)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
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

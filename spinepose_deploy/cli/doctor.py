"""``spinepose-deploy doctor``: what this host can run, and the setup checks."""

from __future__ import annotations

from rich.markup import escape

from .._console import new_table, out_console
from .app import app
from .options import JsonFlag, print_json
from .tables import checks_table


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Show which backend x device x precision this host can run, with versions and the reason for each 'no'."""
    from ..backends import capabilities  # lazy: the CLI starts without loading what this command needs
    from ..backends.checks import setup_checks

    rows, checks = capabilities(), setup_checks()
    if as_json:
        print_json({"capabilities": [row.__dict__ for row in rows], "checks": [c.to_dict() for c in checks]})
        return
    table = new_table("What this host can run")
    for column in ("backend", "device", "runs", "version", "why not"):
        table.add_column(column, overflow="fold")
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        grouped.setdefault((row.backend, row.device), []).append(row)
    for (backend, device), cells in grouped.items():
        runs = " ".join(c.precision for c in cells if c.ok) or "[red]no[/]"
        reasons = "; ".join(
            dict.fromkeys(
                f"{c.precision}: {c.reason}" if any(x.ok for x in cells) else c.reason for c in cells if not c.ok
            )
        )
        table.add_row(
            backend, device, f"[green]{runs}[/]" if "no" not in runs else runs, cells[0].version or "-", escape(reasons)
        )
    out_console.print(table)
    out_console.print(checks_table(checks))

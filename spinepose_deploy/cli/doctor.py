"""``spinepose-deploy doctor``: what this host can run, and the setup checks."""

from __future__ import annotations

from .._console import out_console
from .app import app
from .options import JsonFlag, print_json
from .tables import capabilities_table, checks_table


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Show which backend x device x precision this host can run, with versions and the reason for each 'no'."""
    from ..backends import capabilities  # lazy: the CLI starts without loading what this command needs
    from ..backends.checks import setup_checks

    rows, checks = capabilities(), setup_checks()
    if as_json:
        print_json({"capabilities": [row.__dict__ for row in rows], "checks": [c.to_dict() for c in checks]})
        return
    out_console.print(capabilities_table(rows))
    out_console.print(checks_table(checks))

"""The ``spinepose-deploy`` typer app, its root options and the entry point; each command is its own module."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from .._console import err_console, out_console, show_wide_tables
from .._version import __version__
from ..errors import SpinePoseDeployError

app = typer.Typer(
    help="Run SpinePose (spine-aware 2D/3D pose) fast on ONNX Runtime, OpenVINO, Core ML and TensorRT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List, fetch and build the model graphs (detector, pose, lifter).")
app.add_typer(models_app, name="models")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    show_wide_tables(verbose)  # the full tables, however narrow the terminal
    if version:
        out_console.print(f"spinepose-deploy {__version__}")
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: our errors become one line on stderr (exit 2 for user errors)."""
    try:
        app(args=argv, prog_name="spinepose-deploy")
    except SystemExit as exc:  # typer/click standalone mode always exits
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SpinePoseDeployError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, markup=True)
        return exc.exit_code
    return 0


def run() -> None:
    """setuptools console-script shim."""
    raise SystemExit(main())

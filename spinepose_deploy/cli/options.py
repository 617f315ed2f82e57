"""Options shared by several commands, declared once (``Annotated`` aliases).

Help and choices come from the tables that define them: modes, detectors and versions from ``zoo.specs``,
weights from ``zoo.source``, backends and precisions from ``backends.formats``. Zoo options default to
None and are left out of a request when not given (``given``), so their defaults live only in ``zoo.specs``
(through the request dataclasses) and ``infer`` can tell "not given" from the default (a bundle fixes them).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ..backends.formats import FORMATS
from ..zoo.source import DEFAULT_WEIGHTS
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, DETECTORS, MODES, VERSIONS


def _choices(choices: Any, default: str | None = None) -> str:
    return " | ".join(choices) + (f" (default {default})" if default else "")


ALL_PRECISIONS = tuple(dict.fromkeys(p for row in FORMATS.values() for p in row.precisions))

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")]
Mode = Annotated[str | None, typer.Option(help=_choices(MODES, DEFAULT_MODE))]
Detector = Annotated[str | None, typer.Option(help=_choices(DETECTORS, DEFAULT_DETECTOR))]
ModelVersion = Annotated[
    str | None, typer.Option("--model-version", help=_choices(VERSIONS, f"{DEFAULT_VERSION}, the latest"))
]
Weights = Annotated[
    str | None,
    typer.Option(
        help="auto (real weights: cached, else downloaded unless offline/CI; else the packaged trained stand-ins; "
        "else random ones) | real | standin | trained (the packaged stand-ins trained on the synthetic world, random "
        f"stand-ins for the others) (default {DEFAULT_WEIGHTS})"
    ),
]
Precision = Annotated[
    str | None,
    typer.Option(
        help=_choices(ALL_PRECISIONS) + " (default fp32; infer --backend auto: the measured choice) (bf16: openvino "
        "on CPUs with BF16; int8: see 'export --calib')"
    ),
]
BACKEND_CHOICES = _choices(FORMATS)


def given(**fields: Any) -> dict[str, Any]:
    """The options the user gave (None: not given, so the request's default applies)."""
    return {name: value for name, value in fields.items() if value is not None}


def print_json(data: object) -> None:
    """``--json`` output: indented JSON on stdout (progress and banners go to stderr)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

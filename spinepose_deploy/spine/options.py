"""The offline spine options as typed values, parsed once from their CLI text (one-line refusals)."""

from __future__ import annotations

from ..errors import InvalidOptionError
from .filtering import FilterKind, FilterSpec
from .markers import MarkerNames
from .neutral import NeutralSpec


def spine_options(filter: str, order: int, cutoff_hz: float, max_gap: int, neutral: str | None,
                  marker_names: str) -> dict:
    """``SpineRequest`` keyword arguments ``filtering``, ``neutral`` and ``marker_names`` from the CLI's text."""
    try:
        kind = FilterKind(filter.strip().lower())
    except ValueError:
        raise InvalidOptionError(
            f"--filter: '{filter}' is not one of {', '.join(k.value for k in FilterKind)}"
        ) from None
    spec = FilterSpec(kind=kind, order=order, cutoff_hz=cutoff_hz, max_gap=max_gap)
    spec.check()
    return {"filtering": spec, "neutral": None if neutral is None else NeutralSpec.parse(neutral),
            "marker_names": MarkerNames.parse(marker_names)}  # fmt: skip

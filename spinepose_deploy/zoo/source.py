"""Pick the ONNX graph to use for a spec: a local file, cached or downloaded real weights, or a stand-in.

``weights``:
- ``auto`` (default): a local file or models dir if given, else real weights already in the cache, else a
  stand-in — never a network request, so nothing hangs on an offline machine; ``models fetch`` downloads.
- ``real``: local/cached/downloaded real weights, or an error saying why.
- ``standin``: always the architecture-faithful stand-in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import OfflineError, check_choice
from .specs import ModelSpec

log = logging.getLogger(__name__)
WEIGHTS = ("auto", "real", "standin")


@dataclass(frozen=True)
class SourceGraph:
    spec: ModelSpec
    path: Path
    standin: bool
    sha256: str


def resolve_graph(
    spec: ModelSpec, *, weights: str = "auto", local: Path | None = None, models_dir: Path | None = None
) -> SourceGraph:
    """Return the graph to export for ``spec`` and whether it is a stand-in."""
    from . import fetch
    from .standins import build_standin

    check_choice("--weights", weights, WEIGHTS)
    if weights != "standin":
        try:
            offline = weights == "auto"
            path = fetch.fetch_model(spec, local=local, models_dir=models_dir, offline=offline)
            return SourceGraph(spec, path, False, fetch.sha256_file(path))
        except OfflineError:
            if weights == "real":
                raise
            log.info("no real weights for %s in the cache; using the stand-in", spec.name)
    path = build_standin(spec)
    return SourceGraph(spec, path, True, fetch.sha256_file(path))

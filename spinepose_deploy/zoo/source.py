"""Pick the ONNX graph to use for a spec: a local file, cached or downloaded real weights, or a stand-in.

``weights``:
- ``auto`` (default): a local file or models dir if given, else real weights already in the cache, else a
  stand-in — never a network request, so nothing hangs on an offline machine; ``models fetch`` downloads.
- ``real``: local/cached/downloaded real weights, or an error saying why.
- ``standin``: always the architecture-faithful stand-in (random weights).
- ``trained``: the stand-ins trained on the synthetic world that ship with the package (``data/trained/``,
  see its MODEL_CARD.md; restored from their packed form into the cache by ``standins.trained``) where one
  exists for the spec, else the random stand-in. Always labelled stand-in.

Whatever the source, a graph whose metadata says ``standin=true`` is reported as a stand-in (a trained
stand-in in a models dir is not the released weights). Packaged trained graphs are not hash-pinned in the
user cache: pins catch a download or a models-dir file that changed behind the user's back, whereas these
change only with the package itself (whose installer verifies its RECORD hashes; the restored file is named
after the packed file's sha256), and a pin would refuse them after every upgrade. They are contract-checked,
and the sha256 of the restored graph is recorded in the bundle manifest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import OfflineError, check_choice
from . import fetch
from .contract import check_model_contract, load_graph
from .specs import ModelSpec

log = logging.getLogger(__name__)
WEIGHTS = ("auto", "real", "standin", "trained")
DEFAULT_WEIGHTS = WEIGHTS[0]


@dataclass(frozen=True)
class SourceGraph:
    spec: ModelSpec
    path: Path
    standin: bool
    sha256: str


def _is_standin(path: Path) -> bool:
    stat = Path(path).stat()
    return _standin_metadata(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _standin_metadata(path: str, size: int, mtime_ns: int) -> bool:
    """``is_standin`` once per file version (it parses the whole graph; resolve_graph runs often)."""
    from .standins import is_standin  # stand-ins pull in onnx and the torch definitions: only when asked

    return is_standin(path)


def resolve_graph(
    spec: ModelSpec, *, weights: str = "auto", local: Path | None = None, models_dir: Path | None = None
) -> SourceGraph:
    """Return the graph to export for ``spec`` and whether it is a stand-in."""
    from .standins import build_standin  # onnx + torch definitions, heavy: loaded on first resolve only

    check_choice("--weights", weights, WEIGHTS)
    if weights == "trained":
        from .standins import trained  # same reason as build_standin

        path = trained.trained_graph(spec)
        if path is not None:
            check_model_contract(load_graph(path), spec, label=str(path))
            return SourceGraph(spec, path, True, fetch.file_sha256(path))
        log.info("no trained stand-in for %s in %s; using the random stand-in", spec.name, trained.trained_dir())
    elif weights != "standin":
        try:
            # auto never downloads; real downloads unless $SPINEPOSE_DEPLOY_OFFLINE says not to (None: ask it)
            offline = True if weights == "auto" else None
            path = fetch.fetch_model(spec, local=local, models_dir=models_dir, offline=offline)
            return SourceGraph(spec, path, _is_standin(path), fetch.file_sha256(path))
        except OfflineError:
            if weights == "real":
                raise
            log.info("no real weights for %s in the cache; using the stand-in", spec.name)
    path = build_standin(spec)
    return SourceGraph(spec, path, True, fetch.file_sha256(path))

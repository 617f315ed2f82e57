"""Pick the ONNX graph to use for a spec: a local file, cached or downloaded real weights, or a stand-in.

``weights``:
- ``auto`` (default): what a user would want, best first: a local file or models dir if given, or real
  weights already in the cache; else the real weights downloaded when the network may be used (not with
  ``$SPINEPOSE_DEPLOY_OFFLINE=1`` or ``$CI``; the connect timeout is bounded, so an offline machine fails fast,
  and one failed host is not asked again in this process); else the packaged trained stand-in where the
  package has one (``trained``); else the random stand-in. Which one was taken is said in one log line.
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
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from .. import paths
from ..errors import FetchError, OfflineError, check_choice, first_line
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


_FAILED_HOSTS: set[str] = set()  # download hosts that failed in this process: not asked again
_SAID: set[str] = set()  # specs whose auto choice was already said


def download_allowed() -> bool:
    """``weights="auto"`` may download real weights: not offline (``$SPINEPOSE_DEPLOY_OFFLINE``), not on CI."""
    return not paths.offline_requested() and not os.environ.get("CI")


def _say(spec: ModelSpec, text: str) -> None:
    if spec.name not in _SAID:
        _SAID.add(spec.name)
        log.warning("weights auto: %s: %s", spec.name, text)


def _trained(spec: ModelSpec) -> SourceGraph | None:
    """The packaged trained stand-in of ``spec``, contract-checked, or None when the package has none."""
    from .standins import trained  # onnx + torch definitions, heavy: loaded on first use only

    path = trained.trained_graph(spec)
    if path is None:
        return None
    check_model_contract(load_graph(path), spec, label=str(path))
    return SourceGraph(spec, path, True, fetch.file_sha256(path))


def _auto(spec: ModelSpec, local: Path | None, models_dir: Path | None) -> SourceGraph | None:
    """``weights="auto"`` (see the module docstring); None: the random stand-in."""
    try:
        path = fetch.fetch_model(spec, local=local, models_dir=models_dir, offline=True)
        return SourceGraph(spec, path, _is_standin(path), fetch.file_sha256(path))
    except OfflineError:
        pass
    why = "no real weights in the cache"
    host = urlsplit(fetch.download_url(spec)).netloc
    if not download_allowed():
        why += f" (downloads off: ${paths.OFFLINE_ENV} or $CI)"
    elif host in _FAILED_HOSTS:
        why += f" and {host} failed earlier"
    else:
        try:
            path = fetch.fetch_model(spec, models_dir=models_dir, offline=False, progress=True)
            _say(spec, f"downloaded the real weights ({path})")
            return SourceGraph(spec, path, _is_standin(path), fetch.file_sha256(path))
        except FetchError as exc:
            _FAILED_HOSTS.add(host)
            why += f" and the download failed ({first_line(exc, 160)})"
    found = _trained(spec)
    if found is not None:
        _say(spec, f"{why}; using the packaged trained stand-in (speed real, keypoints not SpinePose's)")
        return found
    _say(spec, f"{why}; no trained stand-in in the package: using the random stand-in")
    return None


def resolve_graph(
    spec: ModelSpec, *, weights: str = "auto", local: Path | None = None, models_dir: Path | None = None
) -> SourceGraph:
    """Return the graph to export for ``spec`` and whether it is a stand-in."""
    from .standins import build_standin  # onnx + torch definitions, heavy: loaded on first resolve only

    check_choice("--weights", weights, WEIGHTS)
    if weights == "trained":
        found = _trained(spec)
        if found is not None:
            return found
        log.info("no trained stand-in for %s in the package; using the random stand-in", spec.name)
    elif weights == "real":  # downloads unless $SPINEPOSE_DEPLOY_OFFLINE says not to (None: ask it)
        path = fetch.fetch_model(spec, local=local, models_dir=models_dir, offline=None)
        return SourceGraph(spec, path, _is_standin(path), fetch.file_sha256(path))
    elif weights == "auto":
        found = _auto(spec, local, models_dir)
        if found is not None:
            return found
    path = build_standin(spec)
    return SourceGraph(spec, path, True, fetch.file_sha256(path))

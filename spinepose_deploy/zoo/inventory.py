"""What this machine already has of each graph: real weights cached and pinned, stand-ins built, their size.

Reads the cache only: it downloads, builds and verifies nothing (``models fetch`` / ``models build`` do), so
``spinepose-deploy models`` answers "what do I have" instantly, even offline.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import paths
from . import fetch
from .specs import ModelSpec
from .standins import trained


@dataclass(frozen=True)
class LocalCopy:
    """One graph's files in the cache (paths as text for JSON)."""

    name: str
    cached: str | None  # real weights in the models cache (not verified here)
    pinned: str | None  # the pinned sha256 (set on first use, checked on every later one)
    standins: tuple[str, ...]  # stand-in builds in the cache (one per builder/torch version seen)
    trained: bool  # a trained stand-in ships with the package (--weights trained)
    size_bytes: int  # what this graph's cached files take on disk

    def to_dict(self) -> dict:
        return asdict(self)


def _standin_builds(spec: ModelSpec) -> list[Path]:
    # build.py names them '<name>-<key12>.onnx'; the exact pattern keeps 'yolox-m' from matching 'yolox-m-...'
    pattern = re.compile(rf"{re.escape(spec.name)}-[0-9a-f]{{12}}\.onnx")
    folder = paths.cache_dir() / "standins"
    return sorted(p for p in folder.glob(f"{spec.name}-*.onnx") if pattern.fullmatch(p.name)) if folder.is_dir() else []


def _restored_trained(spec: ModelSpec) -> list[Path]:
    folder = paths.cache_dir() / "trained"
    pattern = re.compile(rf"{re.escape(spec.name)}-[0-9a-f]{{16}}\.onnx")
    return [p for p in folder.glob(f"{spec.name}-*.onnx") if pattern.fullmatch(p.name)] if folder.is_dir() else []


def local_copy(spec: ModelSpec, pins: dict) -> LocalCopy:
    """What the cache holds for ``spec`` (``pins``: :func:`fetch.read_pins`, read once for all specs)."""
    cached = fetch.cached_path(spec)
    builds = _standin_builds(spec)
    files = [*([cached] if cached else []), *builds, *_restored_trained(spec)]
    return LocalCopy(
        name=spec.name,
        cached=str(cached) if cached else None,
        pinned=(pins.get(spec.name) or {}).get("sha256"),
        standins=tuple(str(p) for p in builds),
        trained=trained.packed_path(spec).is_file(),
        size_bytes=sum(p.stat().st_size for p in files),
    )


def inventory(specs: list[ModelSpec]) -> list[LocalCopy]:
    pins = fetch.read_pins()
    return [local_copy(spec, pins) for spec in specs]


def cache_size(root: Path | None = None) -> int:
    """Bytes under the cache root (models, stand-ins, bundles, everything)."""
    root = root or paths.cache_dir()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())

"""What a scaled-out run works on: a folder, a glob, a list file or a list of paths -> ``InputSpec``.

A folder resolves exactly as ``spinepose-deploy infer`` resolves it (``pipeline.io.resolve_input``), so
output names are the same. Globs, list files and Python lists give a "folder" spec too: one JSON per
image (``<name>.json``) and a ``<name>/`` folder of per-frame JSONs per video, where ``name`` is the file's
stem, or its file name when two files share a stem, or its path below the files' common folder (``/``
-> ``_``) when two share a file name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputFileError
from ..pipeline.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputSource, InputSpec, resolve_input
from .objstore import Store, as_url, scrub

MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Sources:
    """The resolved inputs and the entries refused before any work (path, one-line reason)."""

    spec: InputSpec
    rejected: tuple[tuple[str, str], ...] = ()
    store: Store | None = None  # inputs in an object store: each source's path is its key there
    objects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # key -> the store's info (size, ETag)


def resolve_sources(source: str | os.PathLike | Sequence[str | os.PathLike]) -> Sources:
    """Resolve SOURCE: a folder, an image or video file, a glob (``clips/**/*.mp4``), a list file (one path
    per line, ``#`` comments, relative to the list's folder) or a sequence of paths.

    Raises ``InputFileError`` when nothing to run on is found; single bad entries of a list are
    returned in ``rejected`` (a bad file never stops the run).
    """
    if not isinstance(source, (str, os.PathLike)):
        return _from_paths([Path(p) for p in source], f"{len(source)} paths")
    url = as_url(source)
    if url is not None:
        return _from_store(Store.parse(url, "INPUT"))
    text = str(source)
    path = Path(text)
    if path.is_dir() or (path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES):
        return Sources(_absolute(resolve_input(path)))
    if path.is_file():
        return _from_paths(_read_list(path), str(path))
    if any(char in text for char in _GLOB_CHARS):
        matches = sorted(glob.glob(text, recursive=True))
        media = [Path(m) for m in matches if Path(m).is_file() and Path(m).suffix.lower() in MEDIA_SUFFIXES]
        if not media:
            raise InputFileError(
                f"{text}: the pattern matches no images or videos ({len(matches)} paths, none ending in "
                f"{', '.join(MEDIA_SUFFIXES)})"
            )
        return _from_paths(media, text)
    if text.strip().isdigit():
        raise InputFileError(f"{text}: a webcam cannot run on Ray (expected a folder, a glob, a list file or files)")
    raise InputFileError(f"{text}: no such file, folder or matching pattern (expected a folder, a glob or a list file)")


def _from_store(store: Store) -> Sources:
    """Every image and video below an object-store prefix (or the one object it names), named as a folder's."""
    store.check("INPUT")
    objects = store.listing("INPUT")
    media = {key: info for key, info in objects.items() if PurePosixPath(key).suffix.lower() in MEDIA_SUFFIXES}
    if not media:
        raise InputFileError(f"INPUT: no images or videos under '{scrub(store.url)}/' ({len(objects)} objects, "
                             f"none ending in {', '.join(MEDIA_SUFFIXES)})")  # fmt: skip
    keys = sorted(media)
    paths = [Path(key) for key in keys]
    names = _unique_names(paths)
    kinds = ["image" if p.suffix.lower() in IMAGE_SUFFIXES else "video" for p in paths]
    sources = tuple(InputSource(k, n, p) for k, n, p in zip(kinds, names, paths, strict=True))
    return Sources(InputSpec("folder", sources, Path(store.key())), store=store, objects=media)


def _absolute(spec: InputSpec) -> InputSpec:
    """Absolute paths: Ray workers do not share the driver's working directory."""
    sources = tuple(replace(s, path=s.path.absolute()) for s in spec.sources)
    return replace(spec, sources=sources, root=spec.root.absolute() if spec.root else None)


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as a list of paths ({exc})") from exc
    entries = [line.strip() for line in lines]
    return [(path.parent / entry) for entry in entries if entry and not entry.startswith("#")]


def _from_paths(paths: list[Path], what: str) -> Sources:
    unique: dict[Path, Path] = {}
    for p in paths:
        unique.setdefault(p.absolute(), p)
    files = list(unique)
    rejected = []
    media = []
    for file in files:
        if file.suffix.lower() in MEDIA_SUFFIXES:
            media.append(file)
        else:
            reason = f"'{file.suffix or file.name}' is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video"
            rejected.append((str(file), f"{file}: {reason}"))
    if not media:
        raise InputFileError(f"{what}: no images or videos to run on ({len(rejected)} entries refused)")
    names = _unique_names(media)
    kinds = ["image" if f.suffix.lower() in IMAGE_SUFFIXES else "video" for f in media]
    sources = tuple(InputSource(k, n, f) for k, n, f in zip(kinds, names, media, strict=True))
    root = Path(os.path.commonpath([str(f.parent) for f in media]))
    return Sources(InputSpec("folder", sources, root), tuple(rejected))


def _unique_names(files: list[Path]) -> list[str]:
    """Output names: stem, else file name, else the path below the common folder, else an index suffix."""
    stems = [f.stem for f in files]
    full = [f.name for f in files]
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    names = []
    for file, stem, name in zip(files, stems, full, strict=True):
        if stems.count(stem) == 1:
            names.append(stem)
        elif full.count(name) == 1:
            names.append(name)
        else:
            names.append(file.relative_to(root).as_posix().replace("/", "_"))
    seen: dict[str, int] = {}
    result = []
    for name in names:  # the rules above can still collide ("a_b.jpg" next to "a/b.jpg"): number them
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}~{count}")
    return result

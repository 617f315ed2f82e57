"""Resume bookkeeping: one completion marker per input, written last, and the run summary.

Everything lives in a hidden ``.spinepose-ray/`` folder inside the output folder (``--json`` else
``--vis``), so tools that glob ``*.json`` in the output see only OpenPose files:

    out/.spinepose-ray/markers/<name>.done.json     one per finished input, written after its outputs
    out/.spinepose-ray/markers/<name>.failed.json   one per input that failed with an error
    out/.spinepose-ray/summary.json                 the last run's done / skipped / failed lists

An input counts as complete when its marker exists, was made from the same input file (size, mtime)
and the same settings (pipeline, options, output folders: the ``fingerprint``), and every output it
lists is still there with its recorded size. A failed marker with the current fingerprint means the same
file failed the same way before: it is not tried again unless asked (``retry_failed``) or the file changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._atomic import write_text
from ..pipeline.infer import OutputPlan
from ..pipeline.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputSource

STATE_DIR = ".spinepose-ray"
MARKER_VERSION = 1


def state_dir(plan: OutputPlan) -> Path:
    """The bookkeeping folder for ``plan``'s outputs (next to a single output file)."""
    out = plan.json_out if plan.json_out is not None else plan.vis_out
    if out is None:
        raise ValueError("state_dir: the plan writes nothing")
    is_file = out.suffix.lower() in (".json", *IMAGE_SUFFIXES, *VIDEO_SUFFIXES)
    return (out.parent if is_file else out) / STATE_DIR


def marker_path(state: Path, source: InputSource) -> Path:
    return state / "markers" / f"{source.name}.done.json"


def failed_path(marker: Path) -> Path:
    return marker.with_name(marker.name.removesuffix(".done.json") + ".failed.json")


def fingerprint(source: InputSource, settings: Mapping[str, Any], identity: list | None = None, where: str = "") -> str:
    """Digest of the input file's identity (path, size, mtime; or ``where`` and the store's ``identity``,
    size and ETag, for an object) and the run's settings."""
    if identity is None:
        try:
            stat = os.stat(source.path)
            identity = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            identity = None  # a missing file never matches a marker
    blob = json.dumps({"source": where or str(source.path), "file": identity, "settings": settings}, sort_keys=True,
                      default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def marker_text(record: Mapping[str, Any], outputs: Iterable[Path]) -> str:
    """A done marker's JSON, with each output's size (call after all outputs exist)."""
    listed = [{"path": str(p), "bytes": os.path.getsize(p)} for p in outputs]
    return json.dumps({"version": MARKER_VERSION, **record, "outputs": listed, "finished": _now()}, indent=1)


def failure_text(record: Mapping[str, Any]) -> str:
    return json.dumps({"version": MARKER_VERSION, **record, "finished": _now()}, indent=1)


def write_marker(path: Path, record: Mapping[str, Any], outputs: Iterable[Path]) -> Path:
    """Write the marker atomically, with each output's size, after all outputs exist."""
    return write_text(path, marker_text(record, outputs))


def write_failure(marker: Path, record: Mapping[str, Any]) -> Path:
    return write_text(failed_path(marker), failure_text(record))


def completed(path: Path, expected: str) -> dict | None:
    """The marker's record when the input is complete for fingerprint ``expected``, else None."""
    return check_done(_text(path), expected, _local_size)


def check_done(text: str | None, expected: str, size_of: Callable[[str], int | None]) -> dict | None:
    """The record of marker ``text`` when it has fingerprint ``expected`` and every output it lists still has
    its recorded size (``size_of(path)``: None when missing), else None. Local files and store objects alike."""
    data = parse(text, expected)
    if data is None:
        return None
    for item in data.get("outputs") or []:
        try:
            if size_of(item["path"]) != item["bytes"]:
                return None
        except (KeyError, TypeError):
            return None
    return data


def failed_before(marker: Path, expected: str) -> dict | None:
    """The failure record when this input failed before with fingerprint ``expected``, else None."""
    return parse(_text(failed_path(marker)), expected)


def parse(text: str | None, expected: str) -> dict | None:
    """A marker's record when ``text`` is one of this version with fingerprint ``expected``, else None."""
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("version") != MARKER_VERSION or data.get("fingerprint") != expected:
        return None
    return data


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _local_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def write_summary(path: Path, summary: Mapping[str, Any]) -> Path:
    return write_text(path, json.dumps(summary, indent=1))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

"""A Ray run whose inputs and/or outputs live in an object store.

Each input is staged on the worker's local disk: downloaded when it is an object, run by ``worker.run_unit``
into a temporary folder exactly as on a filesystem (same writers, same names), then every output is uploaded
(atomic per object, ``objstore``) and the completion marker last, into ``<out>/.spinepose-ray/markers/`` in
the store. The driver decides what is done from one listing of the output prefixes plus the markers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from ..errors import InvalidOptionError, UserError, one_line
from ..paths import cache_subdir
from ..pipeline.infer import OutputPlan
from ..pipeline.io import InputSpec
from ..pipeline.pipeline import Pipeline
from . import resume
from .objstore import Store, as_url, identity, scrub
from .sources import Sources
from .worker import FileOutcome, Unit, run_unit, worker_label

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 64  # outputs per concurrent upload call (per-frame JSONs are small: a PUT's latency dominates)


@dataclass(frozen=True)
class Stores:
    """Where a run's inputs come from and its outputs go, when that is an object store (None: local)."""

    input: Store | None = None
    json: Store | None = None
    vis: Store | None = None

    @classmethod
    def for_run(cls, found: Sources, out_json: Any, out_vis: Any) -> Stores:
        """The stores of a run; outputs both local or both in a store; buckets checked before any work."""
        urls = {"--json": as_url(out_json), "--vis": as_url(out_vis)}
        given = {option: value for option, value in (("--json", out_json), ("--vis", out_vis)) if value is not None}
        remote = [option for option in given if urls[option] is not None]
        if remote and len(remote) != len(given):
            raise InvalidOptionError("--json / --vis: both in an object store or both local (one holds the resume "
                                     "markers of the other)")  # fmt: skip
        stores = {option: Store.parse(urls[option], option) for option in remote}
        for option, store in stores.items():
            store.check(option)
        return cls(found.store, stores.get("--json"), stores.get("--vis"))

    @property
    def outputs(self) -> bool:
        return self.json is not None or self.vis is not None

    @property
    def any(self) -> bool:
        return self.outputs or self.input is not None

    @property
    def state(self) -> Store | None:
        """The bookkeeping folder in the output store (``.spinepose-ray`` below --json, else --vis)."""
        out = self.json or self.vis
        return None if out is None else Store(f"{out.url}/{resume.STATE_DIR}")


def make_units(found: Sources, settings: dict, local_state: Path | None) -> list[Unit]:
    """One unit per source, fingerprinted from the file (local) or from the store's size and ETag (object)."""
    units = []
    for source in found.spec.sources:
        marker = resume.marker_path(local_state or Path(resume.STATE_DIR), source)
        if found.store is None:
            units.append(Unit(source, resume.fingerprint(source, settings), marker))
            continue
        key = str(source.path)
        info = found.objects[key]
        where = f"{found.store.scheme}://{key}"
        units.append(Unit(source, resume.fingerprint(source, settings, identity(dict(info)), where), marker, key=key,
                          size=info.get("size")))  # fmt: skip
    return units


def lookup(stores: Stores) -> Callable[[Unit], tuple[dict | None, dict | None]]:
    """``unit -> (done record, failure record)``: from the local markers, or from one listing of the store."""
    state = stores.state
    if state is None:
        return lambda u: (resume.completed(u.marker, u.fingerprint), resume.failed_before(u.marker, u.fingerprint))
    sizes: dict[str, int | None] = {}
    for store in {s.url: s for s in (stores.json, stores.vis, state) if s is not None}.values():
        sizes.update({f"{store.scheme}://{key}": info.get("size") for key, info in store.listing("--json").items()})

    def find(unit: Unit) -> tuple[dict | None, dict | None]:
        done, failed = (state.child(f"markers/{unit.source.name}{end}") for end in (".done.json", ".failed.json"))
        text = state.read_text(state.key(f"markers/{unit.source.name}.done.json")) if done in sizes else None
        record = resume.check_done(text, unit.fingerprint, sizes.get)
        failure = state.read_text(state.key(f"markers/{unit.source.name}.failed.json")) if failed in sizes else None
        return record, resume.parse(failure, unit.fingerprint)

    return find


def run_staged(
    pipeline: Pipeline,
    plan: OutputPlan,
    unit: Unit,
    stores: Stores,
    *,
    spine_only: bool = False,
    on_frame: Callable[[], None] | None = None,
    spine: bool = False,
) -> FileOutcome:
    """``run_unit`` for an input and/or outputs in a store: stage, run locally, upload outputs, marker last."""
    label = scrub(f"{stores.input.scheme}://{unit.key}") if stores.input and unit.key else str(unit.source.path)
    with tempfile.TemporaryDirectory(prefix="spinepose-ray-") as tmp:
        root = Path(tmp)
        source = unit.source
        state = stores.state
        marker = root / "state" / "markers" / f"{source.name}.done.json" if state is not None else unit.marker
        base = {"source": label, "name": source.name, "kind": source.kind, "fingerprint": unit.fingerprint,
                "worker": worker_label()}  # fmt: skip
        try:
            if stores.input is not None and unit.key is not None:
                cached = _cached(stores.input, unit)  # probed for splitting on this node: already here
                staged = root / "in" / PurePosixPath(unit.key).name
                path = cached if cached.is_file() else stores.input.download(unit.key, staged)
                source = replace(source, path=path)
        except UserError as exc:
            return _failed(unit, label, one_line(exc), base, state, marker)
        json_out = root / "json" if stores.json is not None else plan.json_out
        vis_out = root / "vis" if stores.vis is not None else plan.vis_out
        local = OutputPlan(InputSpec(plan.spec.kind, (source,), plan.spec.root), json_out, vis_out)
        outcome = run_unit(pipeline, local, replace(unit, source=source, marker=marker), spine_only=spine_only,
                           on_frame=on_frame, spine=spine)  # fmt: skip
        outcome.source = label
        if state is None:
            return outcome
        if outcome.status != "done":
            failed = resume.failed_path(marker)
            if failed.is_file():
                state.write_text(f"markers/{failed.name}", _relabel(failed.read_text(encoding="utf-8"), label))
            return outcome
        try:
            publish(root, marker, stores, state, label)
        except UserError as exc:
            outcome.status, outcome.error = "failed", one_line(exc)
        return outcome


def publish(root: Path, marker: Path, stores: Stores, state: Store, label: str) -> None:
    """Upload each output (atomic per object), then the marker naming them: a reader never sees half an input."""
    record = json.loads(marker.read_text(encoding="utf-8"))
    groups: dict[str, tuple[Store, list[tuple[Path, str]], list[int]]] = {}
    for item in record.get("outputs") or []:
        path = Path(item["path"])
        json_file = path.is_relative_to(root / "json")
        store, folder = (stores.json, root / "json") if json_file else (stores.vis, root / "vis")
        group = groups.setdefault(store.url, (store, [], []))
        group[1].append((path, path.relative_to(folder).as_posix()))
        group[2].append(item["bytes"])
    listed = []
    for store, files, sizes in groups.values():
        keys = [key for i in range(0, len(files), UPLOAD_CHUNK) for key in upload(store, files[i : i + UPLOAD_CHUNK])]
        listed += [{"path": f"{store.scheme}://{key}", "bytes": size} for key, size in zip(keys, sizes, strict=True)]
    record.update(outputs=listed, source=label)
    state.write_text(f"markers/{marker.name}", json.dumps(record, indent=1))
    with contextlib.suppress(OSError, UserError):
        state.fs.rm_file(state.key(f"markers/{resume.failed_path(marker).name}"))


def fetch(store: Store, unit: Unit) -> Path:
    """The unit's object on this node's disk, downloaded once per node and version: the segments of one video
    that land on one node share it (``forget`` removes it at the end of the run)."""
    local = _cached(store, unit)
    with FileLock(str(local.parent) + ".lock"):
        if not local.is_file():
            partial = local.with_name(f".{local.name}.partial")
            store.download(unit.key, partial)
            os.replace(partial, local)  # a worker killed mid-download leaves no file that looks complete
    return local


def forget(store: Store, units: list[Unit]) -> None:
    """Delete this node's copies of ``units``' objects (best effort)."""
    for unit in units:
        folder = _cached(store, unit).parent
        with FileLock(str(folder) + ".lock"):
            shutil.rmtree(folder, ignore_errors=True)


def _cached(store: Store, unit: Unit) -> Path:
    digest = hashlib.sha256(f"{store.scheme}://{unit.key}|{unit.fingerprint}".encode()).hexdigest()[:20]
    return cache_subdir("ray-inputs") / digest / PurePosixPath(str(unit.key)).name


def upload(store: Store, files: list[tuple[Path, str]]) -> list[str]:
    """Some outputs to the store, concurrently (a module-level hook: tests kill a worker between two calls)."""
    return store.upload_many(files)


def _relabel(text: str, label: str) -> str:
    data = json.loads(text)
    data["source"] = label
    return json.dumps(data, indent=1)


def _failed(unit: Unit, label: str, error: str, base: dict, state: Store | None, marker: Path) -> FileOutcome:
    source = unit.source
    log.warning("%s", error)
    if state is not None:
        with contextlib.suppress(UserError):
            text = resume.failure_text({**base, "error": error})
            state.write_text(f"markers/{resume.failed_path(marker).name}", text)
    else:
        resume.write_failure(marker, {**base, "error": error})
    return FileOutcome(label, source.name, source.kind, "failed", error=error, attempts=unit.attempts + 1,
                       worker=base["worker"])  # fmt: skip

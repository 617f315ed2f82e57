"""The driver's side of the spine outputs of a Ray run: each input's rows kept in the bookkeeping folder, and
all of them replayed in source order through the single-machine ``SpineRecorder`` (``spine_rows``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

from .._atomic import write_bytes
from ..pipeline.infer import OutputPlan, spine_title
from ..pipeline.spine_outputs import SpineRecorder, SpineRequest
from . import spine_rows
from .remote import Stores
from .worker import FileOutcome, Unit

Find = Callable[[Unit], tuple[dict | None, dict | None]]


class RowStore:
    """The spine rows of each input, kept in ``.spinepose-ray/spine/<name>.npz`` (local or in the store)."""

    def __init__(self, stores: Stores, state: Path | None) -> None:
        self.stores, self.state = stores, state
        self.fresh: dict[str, bytes] = {}

    def _relative(self, name: str) -> str:
        return f"spine/{name}.npz"

    def load(self, name: str) -> bytes | None:
        if name in self.fresh:
            return self.fresh[name]
        if self.stores.state is not None:
            return self.stores.state.read_bytes(self.stores.state.key(self._relative(name)))
        with contextlib.suppress(OSError):
            return (self.state / self._relative(name)).read_bytes()
        return None

    def save(self, name: str, data: bytes) -> None:
        self.fresh[name] = data
        if self.stores.state is not None:
            self.stores.state.write_bytes(self._relative(name), data)
        else:
            write_bytes(self.state / self._relative(name), data)

    def wrap(self, find: Find) -> Find:
        """A finished input without stored rows is not done for a run that writes spine files."""

        def check(unit: Unit) -> tuple[dict | None, dict | None]:
            record, failure = find(unit)
            if record is not None and self.load(unit.source.name) is None:
                record = None
            return record, failure

        return check

    def write(
        self, request: SpineRequest, plan: OutputPlan, done: list[FileOutcome], finished: Iterable[str], standin: bool
    ) -> list[Path]:
        """Keep this run's rows (``done``), then write every finished input's, in source order, through the
        single-machine spine writers."""
        for outcome in done:
            if outcome.spine is not None:
                self.save(outcome.name, outcome.spine)
        names = set(finished)
        inputs = []
        for source in plan.spec.sources:
            data = self.load(source.name) if source.name in names else None
            if data is not None:
                inputs.append((source.name, *spine_rows.from_bytes(data)))
        standin = standin or any(row[2].standin for _, rows, _ in inputs for row in rows)
        recorder = SpineRecorder(request, standin=standin)
        written: list[Path] = []
        for name, rows, fps in inputs:
            written += spine_rows.replay(recorder, name, rows, fps)
        return written + recorder.finish(spine_title(standin))

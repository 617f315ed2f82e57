"""``GraphInfo``: how one graph is fed and decoded, and ``Stage``: a graph's runner plus that knowledge.

``GraphInfo`` comes from a ``ModelSpec`` (export, calibration, bench probes) or a bundle's manifest entry
(``Pipeline.from_bundle``); it also names the graph's input (released graphs do not all call it "input").
A ``Stage`` runs any ``run(feed) -> outputs`` callable (a Session's ``run``, an ONNX Runtime reference
in calibration, a batching wrapper in the bench): the feed protocol is ``dict[str, np.ndarray]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..backends.base import Session
from ..bundle.manifest import GraphEntry, Preprocess
from ..errors import InvalidOptionError, UserError
from ..zoo.specs import Family, ModelSpec, get_spec

Feed = dict[str, np.ndarray]
Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class GraphInfo:
    """How to feed and decode one graph: from a ModelSpec or a bundle manifest entry."""

    model: str
    family: Family
    input_hw: tuple[int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color: str = "rgb"
    version: str | None = None
    standin: bool = False
    nms: Mapping[str, Any] | None = None  # host NMS settings when the graph's NMS was stripped (Core ML)
    input_name: str = "input"

    @classmethod
    def from_spec(cls, spec: ModelSpec, standin: bool = False, input_name: str = "input") -> GraphInfo:
        return cls(
            spec.name,
            spec.family,
            (int(spec.input_size[0]), int(spec.input_size[1])),
            spec.mean,
            spec.std,
            spec.color,
            spec.version,
            standin,
            input_name=input_name,
        )

    @classmethod
    def from_manifest(cls, entry: GraphEntry) -> GraphInfo:
        """How a bundle's graph is fed: its recorded preprocessing (the spec's where none is recorded)."""
        spec = get_spec(entry.model)
        pre = entry.preprocess or Preprocess.from_spec(spec)
        extra = entry.extra
        return cls(
            spec.name,
            spec.family,
            pre.input_size,
            pre.mean or spec.mean,
            pre.std or spec.std,
            pre.color or spec.color,
            spec.version,
            entry.standin,
            dict(extra.get("nms") or {}) if extra.get("host_nms") else None,
        )

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.model)

    def named(self, input_name: str) -> GraphInfo:
        """The same graph with its real input name (a Session's ``inputs[0].name``)."""
        return self if input_name == self.input_name else replace(self, input_name=input_name)


class Stage:
    """One graph: its ``GraphInfo`` and a runner. Without a runner it only preprocesses (calibration)."""

    def __init__(self, info: GraphInfo, run: Runner | None = None) -> None:
        self.info = info
        self._run = run

    @classmethod
    def on(cls, session: Session, info: GraphInfo, **options: Any) -> Stage:
        """The stage for a loaded Session (the feed uses the Session's own input name).

        ``session.run`` is looked up on every call, not bound here: a wrapper set on the Session later
        (a counter, a recorder) sees the stage's runs."""
        return cls(info.named(session.inputs[0].name), lambda feed: session.run(feed), **options)

    def run(self, feed: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        if self._run is None:
            raise InvalidOptionError(f"{self.info.model}: this stage has no Session to run; it only preprocesses")
        return self._run(feed)

    def feed(self, batch: np.ndarray) -> Feed:
        return {self.info.input_name: batch}


def pick(outputs: Mapping[str, np.ndarray], name: str | None, index: int) -> np.ndarray:
    """An output by name, else by position (artifacts may rename outputs)."""
    if name is not None and name in outputs:
        return outputs[name]
    values = list(outputs.values())
    if index >= len(values):
        raise UserError(f"graph outputs: got {list(outputs)}, expected '{name}' (output {index})")
    return values[index]

"""Accuracy against ground truth for ``bench --accuracy N``: each loaded graph on the first N held-out scenes.

The scenes are the synthetic world's fixed held-out set (``synth.dataset.heldout_scenes``: seeds never used
for training), rendered once per run. Metrics (``synth.evaluate``, through the Session's ``run``, so any
backend): detector box AP50 (all boxes, scored), pose PCK@0.05 of box size on ground-truth boxes, lifter
root-relative MPJPE in mm fed ground-truth 2D. Accuracy does not depend on the batch: one measurement per
graph and config, copied onto each of its batch rows.

Only graphs whose weights mean something are scored (``weights_kind``): real weights, and the stand-ins
trained on the synthetic world. A random stand-in has no skill, so its "accuracy" (PCK ~0, AP50 ~0) would
say nothing about the backend or precision; it is left unmeasured and the bench says so in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import onnx

from ..backends.base import Session
from ..stages import Detector, GraphInfo
from ..synth import dataset
from ..synth.evaluate import evaluate_detector, evaluate_lifter, evaluate_pose
from ..zoo import source as zoo_source
from ..zoo.fetch import sha256_file
from ..zoo.specs import get_spec
from ..zoo.standins.trained import trained_graph

log = logging.getLogger(__name__)

DEFAULT_SCENES = 20
REAL, TRAINED, RANDOM = "real", "trained", "random"
METRIC = {"detector": "ap50", "pose": "pck@0.05", "lifter": "mpjpe_mm"}
Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class GroundTruth:
    """The held-out scenes and their usable people (``synth.dataset.PersonSet``)."""

    scenes: list[Any]
    persons: Any

    @classmethod
    def heldout(cls, count: int) -> GroundTruth:
        scenes = dataset.heldout_scenes(count)
        return cls(scenes, dataset.people(scenes))


# ------------------------------------------------------------------ whose weights mean something


@lru_cache(maxsize=16)
def trained_hashes(model: str) -> frozenset[str]:
    """sha256 of the trained stand-in of ``model`` (empty when the package has none).

    Both the graph ``trained_graph`` restores and the one ``zoo_source.resolve_graph(weights="trained")`` picks (when
    its metadata says trained: it falls back to the random stand-in), so a bundle exported either way is
    recognised."""
    spec = get_spec(model)
    path = trained_graph(spec)
    if path is None:
        return frozenset()
    hashes = {sha256_file(path)}
    source = zoo_source.resolve_graph(spec, weights=TRAINED)
    if any(p.key == "trained" for p in onnx.load(str(source.path), load_external_data=False).metadata_props):
        hashes.add(source.sha256)
    return frozenset(hashes)


def weights_kind(model: str, standin: bool, sha256: str | None) -> str:
    """``real`` (released weights), ``trained`` (stand-in trained on the synthetic world) or ``random``."""
    if not standin:
        return REAL
    return TRAINED if sha256 and sha256 in trained_hashes(model) else RANDOM


def meaningful(kind: str) -> bool:
    return kind != RANDOM


def weakest(*kinds: str) -> str:
    """The least meaningful of several kinds (a role benched from several bundles)."""
    return min(kinds, key=(RANDOM, TRAINED, REAL).index)


# ------------------------------------------------------------------ measuring one graph


def batched(run: Run, low: int = 1, high: int | None = None) -> Run:
    """``run`` for artifacts with a batch range: feeds split into chunks of at most ``high`` items, each
    padded (last item repeated) to at least ``low``; outputs trimmed and joined along axis 0."""

    def call(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        total = int(next(iter(feeds.values())).shape[0])
        step = high or max(total, 1)
        parts: list[Mapping[str, np.ndarray]] = []
        for start in range(0, total, step):
            chunk = {k: v[start : start + step] for k, v in feeds.items()}
            size = int(next(iter(chunk.values())).shape[0])
            if size < low:
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], low - size, axis=0)]) for k, v in chunk.items()}
            out = run(chunk)
            parts.append({k: np.asarray(v)[:size] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else dict(run(feeds))

    return call


def measure(
    role: str, session: Session, info: GraphInfo, truth: GroundTruth, batch: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Accuracy of one loaded graph vs ground truth: ``{metric, value, scenes, people, ...}``.

    ``info`` is the graph's ``stages.GraphInfo``; ``batch`` the artifact's (min, max) batch (pose, lifter).
    """
    name = session.inputs[0].name
    run: Run = session.run if batch is None else batched(session.run, *batch)
    base = {"metric": METRIC[role], "scenes": len(truth.scenes), "people": len(truth.persons)}
    if role == "detector":
        # the pipeline's own detection (feed, decode, host NMS where stripped) with every box kept: AP needs
        # the low-score ones too
        detector = Detector.on(session, info)
        result = evaluate_detector(lambda image: detector(image, score_thr=0.0), truth.scenes)
        recall = next(v for k, v in result.items() if k.startswith("recall_at_"))
        return {**base, "value": round(result["ap50"], 4), "recall_at_0.3": round(recall, 4)}
    if role == "pose":
        result = evaluate_pose(run, truth.scenes, info.input_hw, truth.persons, input_name=name, graph=info)
        return {**base, "value": round(result["pck"], 4), "mean_error": round(result["mean_error"], 5)}
    result = evaluate_lifter(run, truth.persons, input_name=name, graph=info)
    return {**base, "value": round(result["mpjpe_mm"], 2), "mean_pose_mm": round(result["mean_pose_mpjpe_mm"], 2)}

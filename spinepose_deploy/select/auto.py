"""Auto-select: per graph, the fastest configuration here that passes the fidelity gate.

Ranking (``rank``): rows of one graph that ran and passed their gate, by latency at the batch that
matters (detector: 1 per frame; pose and lifter: the number of people). Among candidates within
``NEAR_TIE`` (5 %) of the fastest (10 % when that is under ``NEAR_TIE_MS``), the higher-fidelity
precision comes first (fp32 > fp16 > int8): so small a gain is within run-to-run noise on a busy machine
and does not pay for coarser numbers. The window also spans ``MIN_FRAME_SHARE`` (3 %) of the whole frame's
time when that is known (``choose``: the measured pipeline, else the sum of the graphs' fastest): a lower
precision that saves less of the frame than that (e.g. 0.03 ms of a 25 ms frame on the lifter) is not worth
the spine angles it may move. The rest follow by latency: they are the fallbacks when a backend
fails to load (``load_with_fallback``).

Storage: one JSON file per host and graph in ``cache_subdir("selection")``, named by the host key
(``host.host_key``) and the graph's source sha256, written atomically. A graph's choice therefore
survives a change of the other graphs and is re-measured when the host's runtimes or the weights change.

``ranked_configurations(selection)`` is what ``Pipeline.from_zoo(backend="auto")`` walks (best first,
with ``load_with_fallback``; ``auto_configuration`` gives just the best pair per role): stored choices,
else a probe within ``budget_s``: the source ONNX on each available backend that reads ONNX (FP32, so it
passes by construction), the same ONNX with a bf16/fp16 hint where the CPU computes that natively (its bundle's
gate is checked when the Pipeline loads it) and bundles already in the cache whose gate passed; the result is
cached.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .. import backends
from .._atomic import write_text
from ..backends.formats import FORMATS, onnx_readers
from ..backends.host import fingerprint
from ..bundle.bundle import Bundle
from ..errors import ModelLoadError, SpinePoseDeployError
from ..paths import cache_subdir
from ..stages import GraphInfo
from ..zoo import source as zoo_source
from ..zoo.specs import ModeSelection
from . import measure

log = logging.getLogger(__name__)

NEAR_TIE = 0.05
# up to 10 % when the difference is this small (ms): noise for a sub-millisecond graph such as the lifter
NEAR_TIE_MS, NEAR_TIE_MAX = 0.2, 0.10
MIN_FRAME_SHARE = 0.03  # a lower precision must save at least this share of the frame's time
PRECISION_ORDER = ("fp32", "bf16", "fp16", "int8")  # most faithful first
PROBE_PEOPLE = 6  # batch the probe times pose and lifter at (the bench default)
PROBE_BACKENDS = onnx_readers()  # read the source ONNX directly: no export needed
DEFAULT = ("onnxruntime", "fp32")
SCHEMA = "spinepose-deploy-selection/1"
T = TypeVar("T")


@dataclass(frozen=True)
class Choice:
    """One candidate configuration for one graph, with its latency at ``batch``."""

    role: str
    model: str
    sha256: str
    backend: str
    precision: str
    device: str
    latency_ms: float
    batch: int
    estimated: bool = False  # latency scaled from another batch size
    end_to_end: bool = False  # first because its whole pipeline measured fastest (``prefer_end_to_end``)

    @property
    def pair(self) -> tuple[str, str]:
        return self.backend, self.precision

    @property
    def label(self) -> str:
        device = "" if self.device == "cpu" else f"/{self.device}"
        return f"{self.backend}{device} {self.precision}"


def target_batch(role: str, people: int) -> int:
    """The batch whose latency decides a graph's choice: the detector runs once per frame."""
    return 1 if role == "detector" else people


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def _latency_at(rows: Sequence[Any], batch: int) -> tuple[float, bool]:
    """p50 at ``batch``; else the nearest measured batch's per-item latency times ``batch`` (estimated)."""
    exact = [r for r in rows if _field(r, "batch") == batch]
    if exact:
        return float(_field(exact[0], "p50_ms")), False
    nearest = min(rows, key=lambda r: abs(_field(r, "batch") - batch))
    return float(_field(nearest, "p50_ms")) / _field(nearest, "batch") * batch, True


def rank(rows: Iterable[Any], role: str, people: int, sha256: str = "", frame_ms: float | None = None) -> list[Choice]:
    """Passing configurations of ``role``, best first (see the module docstring). Rows: BenchRow or dicts.
    ``frame_ms``: the whole frame's time, which widens the near-tie window (``MIN_FRAME_SHARE``)."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        if _field(row, "graph") == role and _field(row, "status") == "ran" and _field(row, "p50_ms") is not None:
            groups.setdefault((_field(row, "backend"), _field(row, "precision"), _field(row, "device")), []).append(row)
    batch = target_batch(role, people)
    choices = []
    for (backend, precision, device), group in groups.items():
        latency, estimated = _latency_at(group, batch)
        model = _field(group[0], "model")
        choices.append(Choice(role, model, sha256, backend, precision, device, latency, batch, estimated))
    return _order(choices, frame_ms) if choices else []


def frame_time_ms(rows: Sequence[Any], people: int) -> float | None:
    """The frame's time: the fastest measured pipeline, else the sum of each graph's fastest latency."""
    pipelines = [_field(r, "p50_ms") for r in rows if _field(r, "graph") == "pipeline" and _field(r, "status") == "ran"]
    pipelines = [p for p in pipelines if p is not None]
    if pipelines:
        return float(min(pipelines))
    roles = ("detector", "pose", "lifter")
    best = [min((c.latency_ms for c in rank(rows, role, people)), default=0.0) for role in roles]
    return float(sum(best)) or None


def _precision_rank(precision: str) -> int:
    return PRECISION_ORDER.index(precision) if precision in PRECISION_ORDER else len(PRECISION_ORDER)


def choose(rows: Sequence[Any], people: int, shas: Mapping[str, str] | None = None) -> dict[str, list[Choice]]:
    """role -> ranked choices for every graph with at least one passing row. ``shas``: role -> source sha256
    (default: read from each row's bundle manifest)."""
    shas = dict(shas or {})
    ranked = {}
    frame_ms = frame_time_ms(rows, people)
    for role in ("detector", "pose", "lifter"):
        sha = shas.get(role) or _sha_from_rows(rows, role)
        choices = rank(rows, role, people, sha, frame_ms)
        if choices:
            ranked[role] = choices
    return ranked


def prefer_end_to_end(ranked: dict[str, list[Choice]], rows: Sequence[Any]) -> tuple[dict[str, list[Choice]], str]:
    """Check the per-graph choice against the measured pipelines (the ground truth): when one config's
    whole pipeline beats the per-graph mix (backend ``auto``) by more than ``NEAR_TIE``, that config goes
    first for every graph. Graph timings alone miss interactions, e.g. a runtime whose idle threads spin
    while the host does pre-processing. Returns (ranking, a sentence saying what was decided, or "")."""
    timed = [r for r in rows if _field(r, "graph") == "pipeline" and _field(r, "status") == "ran"]
    mix = [r for r in timed if _field(r, "backend") == "auto"]
    singles = [r for r in timed if _field(r, "backend") != "auto"]
    if not mix or not singles:
        return ranked, ""
    best = min(singles, key=lambda r: _field(r, "p50_ms"))
    mixed_ms, best_ms = _field(mix[0], "p50_ms"), _field(best, "p50_ms")
    if mixed_ms <= best_ms * (1 + NEAR_TIE):
        return ranked, ""
    key = (_field(best, "backend"), _field(best, "precision"), _field(best, "device"))
    if not all(any(_key(c) == key for c in choices) for choices in ranked.values()):
        return ranked, ""  # the faster config failed a graph's gate: it cannot be chosen for every graph
    reordered = {
        role: _order([replace(c, end_to_end=_key(c) == key) for c in choices]) for role, choices in ranked.items()
    }
    label = reordered[next(iter(reordered))][0].label
    return reordered, (
        f"the {label} pipeline ({best_ms:.1f} ms) beat the per-graph mix ({mixed_ms:.1f} ms) by more than "
        f"{NEAR_TIE:.0%}: {label} is selected for every graph"
    )


def _sha_from_rows(rows: Sequence[Any], role: str) -> str:

    for row in rows:
        bundle = _field(row, "bundle")
        if _field(row, "graph") == role and bundle:
            try:
                return Bundle.load(bundle, verify=False).entry(role).source_sha256
            except SpinePoseDeployError:
                continue
    return ""


# ------------------------------------------------------------------ storage


def selection_path(host_key: str, role: str, sha256: str) -> Path:

    return cache_subdir("selection") / f"{host_key}-{role}-{sha256[:16]}.json"


def store(
    ranked: Mapping[str, Sequence[Choice]],
    host: Mapping[str, Any],
    source: str = "bench",
    measured: Mapping[str, set[tuple[str, str, str]]] | None = None,
) -> dict[str, Any]:
    """Write each graph's ranking for this host (atomically); returns role -> stored document.

    With ``measured`` (role -> the (backend, precision, device) this run measured, passing or not), the
    stored entries of configurations this run did not measure are kept: a partial bench (``--precisions
    int8``) adds to the ranking instead of replacing it, and a configuration that now fails drops out."""
    stored = {}
    for role, choices in ranked.items():
        if not choices or not choices[0].sha256:
            continue
        sha = choices[0].sha256
        if measured is not None:
            done = measured.get(role, set())
            kept = [c for c in load_stored(host["key"], role, sha) or [] if _key(c) not in done]
            choices = _order([*choices, *kept])
        document = {
            "schema": SCHEMA,
            "host_key": host["key"],
            "host": dict(host),
            "role": role,
            "model": choices[0].model,
            "sha256": sha,
            "source": source,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "choices": [asdict(c) for c in choices],
        }
        write_text(selection_path(host["key"], role, sha), json.dumps(document, indent=2))
        stored[role] = document
    return stored


def _key(choice: Choice) -> tuple[str, str, str]:
    return choice.backend, choice.precision, choice.device


def load_stored(host_key: str, role: str, sha256: str) -> list[Choice] | None:
    """The stored ranking for this host and graph, or None (missing or unreadable: re-measure)."""
    path = selection_path(host_key, role, sha256)
    try:
        document = json.loads(path.read_text())
        if document.get("schema") != SCHEMA:
            return None
        return [Choice(**c) for c in document["choices"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("selection %s unreadable (%s); measuring again", path, exc)
        return None


# ------------------------------------------------------------------ auto


def ranked_configurations(
    selection: ModeSelection, *, budget_s: float = 5.0, weights: str = "auto"
) -> dict[str, list[Choice]]:
    """role -> ranked choices: stored for this host and these weights, else probed (and stored)."""
    host = fingerprint()
    sources = {role: zoo_source.resolve_graph(spec, weights=weights) for role, spec in selection.graphs().items()}
    ranked: dict[str, list[Choice]] = {}
    for role, source in sources.items():
        stored = load_stored(host["key"], role, source.sha256)
        if stored:
            ranked[role] = stored
    missing = [role for role in ("pose", "detector", "lifter") if role not in ranked]
    if missing:
        probed = probe({role: sources[role] for role in missing}, budget_s=budget_s)
        store(probed, host, source="probe")
        ranked.update(probed)
    return ranked


def auto_configuration(
    selection: ModeSelection, *, budget_s: float = 5.0, weights: str = "auto"
) -> dict[str, tuple[str, str]]:
    """role -> (backend, precision) for ``backend="auto"``: the best stored or probed choice whose backend is
    available here (an unavailable one falls back to the next with a warning)."""
    result = {}
    for role, choices in ranked_configurations(selection, budget_s=budget_s, weights=weights).items():
        pair = DEFAULT
        for choice in choices:
            status = backends.get_backend(choice.backend).availability()
            if status.ok:
                pair = choice.pair
                break
            log.warning("%s: %s is not available (%s); trying the next-best", role, choice.label, status.reason)
        result[role] = pair
    return result


def load_with_fallback(candidates: Sequence[T], load: Callable[[T], Any], *, role: str) -> tuple[Any, T]:
    """Load the first candidate that loads; each failure is a warning naming it and the reason."""
    errors = []
    for candidate in candidates:
        try:
            return load(candidate), candidate
        except SpinePoseDeployError as exc:
            label = getattr(candidate, "label", candidate)
            errors.append(f"{label}: {exc}")
            log.warning("%s: %s failed to load (%s); falling back to the next-best", role, label, exc)
    tried = "; ".join(errors) or "no candidates"
    raise ModelLoadError(f"{role}: no configuration could be loaded ({tried})")


# ------------------------------------------------------------------ probe


@dataclass(frozen=True)
class _Candidate:
    backend: str
    precision: str
    artifact: Path


def _probe_candidates(role: str, source: Any) -> list[_Candidate]:
    """FP32 source ONNX on each backend that reads it, then cached bundles of this graph that passed."""
    found = [_Candidate(b, "fp32", source.path) for b in PROBE_BACKENDS if backends.get_backend(b).availability().ok]
    found += [_Candidate(backend, precision, source.path) for backend, precision in native_low_precisions()]
    seen = {(c.backend, c.precision) for c in found}
    for manifest in sorted(cache_subdir("bundles").glob("*/manifest.json")):
        try:
            bundle = Bundle.load(manifest.parent, verify=False)
            entry = bundle.entry(role)
        except SpinePoseDeployError:
            continue
        passed = entry.fidelity is None or entry.fidelity.gate is None or entry.fidelity.gate.passed
        pair = (bundle.backend, bundle.precision)
        if entry.source_sha256 != source.sha256 or not passed or pair in seen:
            continue
        if backends.get_backend(bundle.backend).availability().ok:
            found.append(_Candidate(bundle.backend, bundle.precision, bundle.artifact(role)))
            seen.add(pair)
    return found


def native_low_precisions() -> list[tuple[str, str]]:
    """(backend, precision) pairs that compute the FP32 source ONNX at a hinted precision (``BackendFormat.hinted``)
    natively on a CPU here (OpenVINO's ``OPTIMIZATION_CAPABILITIES``: BF16 on AVX512_BF16/AMX, FP16 on
    AVX512_FP16/ARM). They need no export to probe; loading one for real exports its bundle, whose fidelity gate
    then decides."""
    return [
        (c.backend, c.precision)
        for c in backends.capabilities()
        if c.ok and c.device == "cpu" and c.backend in FORMATS and c.precision in FORMATS[c.backend].hinted
    ]


def probe(sources: Mapping[str, Any], *, budget_s: float = 5.0) -> dict[str, list[Choice]]:
    """Time each role's candidates briefly (3 runs at the relevant batch), stopping when ``budget_s`` is spent.

    A role with nothing measured gets ONNX Runtime FP32, unmeasured (latency inf)."""
    deadline = time.perf_counter() + budget_s
    image = measure.bench_image()
    ranked: dict[str, list[Choice]] = {}
    for role, source in sources.items():
        info = GraphInfo.from_spec(source.spec, source.standin)
        batch = target_batch(role, PROBE_PEOPLE)
        choices = []
        for candidate in _probe_candidates(role, source):
            if time.perf_counter() > deadline:
                log.info("auto: probe budget of %.1f s spent; %s %s not probed", budget_s, role, candidate.backend)
                break
            latency, device = _probe_one(candidate, role, info, batch, image)
            if latency is not None:
                choices.append(Choice(role, source.spec.name, source.sha256, candidate.backend, candidate.precision,
                                      device, latency, batch))  # fmt: skip
        if not choices:
            choices = [Choice(role, source.spec.name, source.sha256, *DEFAULT, "cpu", float("inf"), batch)]
        ranked[role] = choices
    # the frame's time (the graphs' fastest summed) decides whether a lower precision saves enough of it
    fastest = [min(c.latency_ms for c in choices) for choices in ranked.values()]
    frame_ms = sum(f for f in fastest if np.isfinite(f)) or None
    return {role: _order(choices, frame_ms) for role, choices in ranked.items()}


def _probe_one(candidate: _Candidate, role: str, info: Any, batch: int, image: Any) -> tuple[float | None, str]:
    """(p50 ms of 3 runs at ``batch``, device), or (None, "") when the candidate fails to load or run."""

    def feeds(session: Any) -> list:
        return [measure.graph_feed(role, info, session.inputs[0].name, batch, image)]

    try:
        result = measure.measure_session(
            lambda: backends.load(candidate.artifact, backend=candidate.backend, precision=candidate.precision),
            feeds,
            warmup=1,
            runs=3,
        )
    except SpinePoseDeployError as exc:
        log.warning("auto: %s on %s failed in the probe (%s)", role, candidate.backend, exc)
        return None, ""
    return result.timings[0].p50_ms, result.device.lower()


def _order(choices: list[Choice], frame_ms: float | None = None) -> list[Choice]:
    """The end-to-end winner first, then near-ties of the fastest by fidelity (precision), then the rest by
    latency. ``frame_ms`` widens the near-tie window to ``MIN_FRAME_SHARE`` of the frame."""
    pinned = [c for c in choices if c.end_to_end]
    choices = [c for c in choices if not c.end_to_end]
    if not choices:
        return pinned
    best = min(c.latency_ms for c in choices)
    limit = max(best * (1 + NEAR_TIE), min(best + NEAR_TIE_MS, best * (1 + NEAR_TIE_MAX)))
    if frame_ms:
        limit = max(limit, best + MIN_FRAME_SHARE * frame_ms)
    near = sorted((c for c in choices if c.latency_ms <= limit),
                  key=lambda c: (_precision_rank(c.precision), c.latency_ms))  # fmt: skip
    return pinned + near + sorted((c for c in choices if c not in near), key=lambda c: c.latency_ms)


def with_precision(choices: Sequence[Choice], precision: str) -> list[Choice]:
    """The ranking when the user fixes the precision (``backend="auto", precision="fp32"``): the backends
    measured at that precision, fastest first (``_order``), then each other ranked backend at that precision,
    unmeasured, in the ranking's order."""
    measured = _order([c for c in choices if c.precision == precision])
    seen = {c.backend for c in measured}
    rest: list[Choice] = []
    for choice in choices:
        if choice.backend not in seen:
            seen.add(choice.backend)
            rest.append(replace(choice, precision=precision, latency_ms=float("nan"), end_to_end=False))
    return measured + rest

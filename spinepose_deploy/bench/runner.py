"""``spinepose-deploy bench``: every backend x precision this host runs, per graph and batch, then end to end.

Plan (``plan``): with bundle paths, those bundles; otherwise every (backend, precision, device) that
``backends.capabilities()`` says runs here, crossed with the exporter's precisions (``backends.formats.FORMATS``).
FP16 on a device without FP16 still runs (the runtime computes in f32) and the row says so. Bundles are
exported into the cache on first use (``pipeline.load``, the same keys ``Pipeline.from_zoo``
uses), except INT8 in the default run: its calibration takes minutes, so an uncached INT8 bundle is
listed as skipped with the command that makes it (``--precisions int8`` exports it; later runs reuse it).
INT8 is exported one bundle per graph, so a graph failing its INT8 gate (a failed export) leaves the
other graphs' INT8 rows.

Measuring: each config's graphs are loaded (timed) and run once per batch (first inference, memory rise),
one config after the other. Then every (graph, batch) is timed on all configs taking turns (round robin),
so the load of a busy machine falls on each config alike and the ranking is fair; the detector only at
batch 1 (the pipeline runs it once per frame). Last, the pipelines — each config's three Sessions, and
the auto-selected mix over the same open Sessions — take turns on the astronaut with ``people`` tiled
boxes: detector + one batched pose run + lifter per frame. A row's status is ``ran``, ``failed
fidelity`` (measured, but the bundle's gate vs FP32 failed: never auto-selected) or ``failed`` (export,
load or first run failed; the reason is kept). The selection (``select.py``: per graph, then checked
against the measured pipelines, ``prefer_end_to_end``) is stored for this host.

With ``accuracy`` (``bench --accuracy N``), once every config is loaded, each graph whose weights mean
something (real, or trained on the synthetic world) is scored against ground truth on the first N held-out
synthetic scenes through its own Session (``accuracy.py``); the number goes on each of its rows, next to
the bundle's FP32-relative fidelity.

``run_bench`` hands each finished row to ``on_row`` at once, so an interrupted run (Ctrl-C propagates)
still has every finished row; nothing is written until the end.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import backends
from .._progress import Progress, Steps
from ..backends import capabilities, get_backend
from ..backends.formats import FORMATS
from ..backends.host import fingerprint
from ..bundle.bundle import Bundle
from ..bundle.manifest import Fidelity
from ..errors import InvalidOptionError, ModelLoadError, SpinePoseDeployError, check_choice, one_line
from ..export.base import BatchRange
from ..pipeline.load import BundleRecipe, bundle_roles
from ..pipeline.pipeline import Pipeline
from ..select import auto as select
from ..select import measure
from ..select.auto import load_with_fallback
from ..stages import GraphInfo
from ..zoo import source as zoo_source
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, ROLES, resolve_mode
from . import accuracy as acc

log = logging.getLogger(__name__)

PIPELINE = "pipeline"
EXPORT = "bundle"  # the graph of a row that says a whole bundle failed to export
RAN, FAILED_FIDELITY, FAILED = "ran", "failed fidelity", "failed"
DEFAULT_PEOPLE = 6
# 0.25 s per (graph, batch) keeps the cold-cache default run (stand-ins + 4 exports + ~30 timed windows)
# under 3 minutes on a 2-core machine; p99 over so few runs is close to the maximum, and says so in --help
DEFAULT_DURATION = 0.25
PIPELINE_MIN_RUNS = 5
SLOW_PRECISIONS = ("int8",)  # calibration takes minutes: exported in the default run only when cached



@dataclass(frozen=True)
class BenchRequest:
    """What to bench. None for backends/precisions/batches means "everything this host runs" / (1, people)."""

    bundles: tuple[Path, ...] = ()
    mode: str = DEFAULT_MODE
    detector: str = DEFAULT_DETECTOR
    model_version: str = DEFAULT_VERSION
    backends: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    batches: tuple[int, ...] | None = None
    people: int = DEFAULT_PEOPLE
    duration_s: float = DEFAULT_DURATION
    warmup: int = measure.DEFAULT_WARMUP
    weights: str = "auto"
    end_to_end: bool = True
    roles: tuple[str, ...] = ROLES
    accuracy: int = 0  # held-out synthetic scenes to score each graph on (0: no accuracy)

    @property
    def batch_list(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.batches or (1, self.people))))

    def validate(self) -> None:

        for backend in self.backends or ():
            check_choice("--backends", backend, FORMATS)
        known = sorted({p for f in FORMATS.values() for p in f.precisions})
        for precision in self.precisions or ():
            check_choice("--precisions", precision, known)
        for role in self.roles:
            check_choice("--roles", role, ROLES)
        if self.people < 1:
            raise InvalidOptionError(f"--people: {self.people}, expected a positive number of people")
        if any(b < 1 for b in self.batch_list):
            raise InvalidOptionError(f"--batch: {list(self.batch_list)}, expected positive batch sizes")
        if not self.duration_s > 0:
            raise InvalidOptionError(f"--duration: {self.duration_s} s, expected > 0")
        if self.warmup < 1:
            raise InvalidOptionError(f"--warmup: {self.warmup}, expected >= 1")
        if self.accuracy < 0:
            raise InvalidOptionError(f"--accuracy: {self.accuracy}, expected a number of scenes >= 0 (0: off)")
        if self.bundles and (self.backends or self.precisions):
            raise InvalidOptionError("--backends/--precisions: not used with BUNDLE paths (a bundle has one of each)")
        seen: dict[tuple[str, str], Path] = {}
        for path in self.bundles:
            manifest = Path(path) / "manifest.json"
            if not manifest.is_file():
                raise InvalidOptionError(f"BUNDLE: {path} is not a bundle directory (no manifest.json)")
            data = json.loads(manifest.read_text())
            pair = (data.get("backend"), data.get("precision"))
            if pair in seen:
                raise InvalidOptionError(
                    f"BUNDLE: {seen[pair]} and {path} are both {pair[0]} {pair[1]}; bench them one at a time"
                )
            seen[pair] = Path(path)


@dataclass(frozen=True)
class Config:
    """One way to run the graphs: a bundle's backend and precision, on one device."""

    backend: str
    precision: str
    device: str = "cpu"

    @property
    def label(self) -> str:
        device = "" if self.device == "cpu" else f"/{self.device}"
        precision = "" if self.precision == "-" else f" {self.precision}"
        return f"{self.backend}{device}{precision}"


@dataclass
class BenchRow:
    """One graph (or the whole pipeline) x config x batch. Times in ms, throughput in items (frames) / s."""

    graph: str
    model: str
    backend: str
    device: str
    precision: str
    batch: int
    status: str
    reason: str = ""
    load_s: float | None = None
    first_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    runs: int | None = None
    items_per_s: float | None = None
    rss_mb: float | None = None
    executed: str = ""  # the precision the runtime reports it computed in
    fidelity: dict | None = None
    accuracy: dict | None = None  # vs ground truth on synthetic scenes (``accuracy.measure``), with --accuracy
    notes: list[str] = field(default_factory=list)
    bundle: str | None = None
    standin: bool = False

    @property
    def config(self) -> Config:
        return Config(self.backend, self.precision, self.device)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


@dataclass
class PlanItem:
    """One config to run: a bundle path per group of roles (None: export on use), or why it is skipped."""

    config: Config
    groups: dict[tuple[str, ...], Path | None] = field(default_factory=dict)
    skip: str = ""  # non-empty: not run, and why


@dataclass
class BenchResult:
    rows: list[BenchRow]
    skipped: list[tuple[str, str]]  # (config label, reason)
    selection: dict[str, Any]
    host: dict[str, Any]
    standin: bool
    wall_s: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent exporting and measuring
    notes: list[str] = field(default_factory=list)  # decisions the reader should see (end-to-end override)
    accuracy: dict | None = None  # with --accuracy: {scenes, people, weights: {role: kind}, note}


# ------------------------------------------------------------------ plan


def uses_standins(request: BenchRequest) -> bool:
    """Whether the graphs benched are stand-ins (builds missing stand-ins: the bench needs them anyway)."""
    if request.bundles:
        return any(Bundle.load(path, verify=False).standin for path in request.bundles)
    selection = resolve_mode(request.mode, request.detector, request.model_version)
    graphs = selection.graphs()
    return any(zoo_source.resolve_graph(graphs[role], weights=request.weights).standin for role in request.roles)


def weights_kinds(request: BenchRequest) -> dict[str, str]:
    """Per role, whose weights the bench runs: ``real``, ``trained`` (synthetic world) or ``random``
    (``accuracy.weights_kind``); with several bundles, the least meaningful kind of a role wins."""
    kinds: dict[str, str] = {}
    if request.bundles:
        for path in request.bundles:
            bundle = Bundle.load(path, verify=False)
            for role in [r for r in request.roles if r in bundle.roles]:
                g = bundle.graph(role)
                kind = acc.weights_kind(g["model"], bool(g.get("standin")), g.get("source_sha256"))
                kinds[role] = acc.weakest(kinds.get(role, acc.REAL), kind)
        return kinds
    graphs = resolve_mode(request.mode, request.detector, request.model_version).graphs()
    for role in request.roles:
        source = zoo_source.resolve_graph(graphs[role], weights=request.weights)
        kinds[role] = acc.weights_kind(source.spec.name, source.standin, source.sha256)
    return kinds


def plan(request: BenchRequest) -> list[PlanItem]:
    """Which configs to run, in order (cheap exports first), with the ones skipped and why."""
    if request.bundles:
        items = []
        for path in request.bundles:
            bundle = Bundle.load(path, verify=False)
            items.append(PlanItem(Config(bundle.backend, bundle.precision), {tuple(bundle.roles): Path(path)}))
        return items
    caps = capabilities()
    items: list[PlanItem] = []
    for backend in request.backends or FORMATS:
        status = get_backend(backend).availability()
        if not status.ok:  # listed, so the reader knows why it has no rows
            items.append(PlanItem(Config(backend, "-"), skip=f"backend not available: {status.reason}"))
            continue
        for precision in request.precisions or FORMATS[backend].precisions:
            if precision not in FORMATS[backend].precisions:
                items.append(PlanItem(Config(backend, precision), skip="the exporter has no such precision here"))
                continue
            devices = _devices(caps, backend, precision)
            if not devices:  # e.g. bf16 on a CPU without AVX512_BF16/AMX: say so instead of dropping the row
                items.append(PlanItem(Config(backend, precision), skip=_no_device_reason(caps, backend, precision)))
            for device in devices:
                items.append(PlanItem(Config(backend, precision, device), _groups(request, precision)))
    skipped: list[PlanItem] = []
    _mark_slow(items, request, skipped)
    order = {"fp32": 0, "bf16": 1, "fp16": 2}
    items.sort(key=lambda item: (bool(item.skip), order.get(item.config.precision, 2)))
    return items + skipped


def _devices(caps: Sequence[Any], backend: str, precision: str) -> list[str]:
    """Devices where this backend runs this precision; FP16 falls back to the FP32 devices (runs in f32)."""
    rows = [c for c in caps if c.backend == backend and c.ok]
    devices = [c.device for c in rows if c.precision == precision]
    if not devices and precision == "fp16":
        devices = [c.device for c in rows if c.precision == "fp32"]
    return list(dict.fromkeys(devices))


def _no_device_reason(caps: Sequence[Any], backend: str, precision: str) -> str:
    reasons = sorted({c.reason for c in caps if c.backend == backend and c.precision == precision and c.reason})
    return "; ".join(reasons) or f"no {backend} device here computes {precision}"


def _groups(request: BenchRequest, precision: str) -> dict[tuple[str, ...], Path | None]:
    """How a config's graphs are exported: one bundle of all roles, or (INT8) one bundle per role, so a
    graph failing its INT8 gate does not take the others with it."""
    return {bundle_roles(precision, role): None for role in request.roles}


def _mark_slow(items: list[PlanItem], request: BenchRequest, skipped: list[PlanItem]) -> None:
    """Default run: keep only the slow-to-export bundles already in the cache; list the rest as skipped."""
    if request.precisions is not None:
        return
    for item in items:
        if item.config.precision not in SLOW_PRECISIONS or item.skip:
            continue
        missing = []
        for roles in list(item.groups):
            path = _cached_path(request, item.config, roles)
            if path.is_dir():
                item.groups[roles] = path
            else:
                del item.groups[roles]
                missing.extend(roles)
        if missing:
            why = (
                f"no cached bundle (not exported yet, or its export failed its gate): {item.config.precision} "
                f"calibration takes minutes; run 'spinepose-deploy bench "
                f"--precisions {item.config.precision}' once to export it"
            )
            if item.groups:
                skipped.append(PlanItem(item.config, skip=f"{', '.join(missing)}: {why}"))
            else:
                item.skip = why


def _recipe(request: BenchRequest, config: Config, roles: tuple[str, ...]) -> BundleRecipe:
    """The cache entry ``Pipeline.from_zoo`` uses for these graphs."""
    return BundleRecipe(config.backend, config.precision, request.weights, roles, request.mode, request.detector,
                        request.model_version)  # fmt: skip


def _cached_path(request: BenchRequest, config: Config, roles: tuple[str, ...]) -> Path:
    return _recipe(request, config, roles).path()


def _bundle_for(request: BenchRequest, config: Config, roles: tuple[str, ...], path: Path | None) -> Path:
    """The given or cached bundle, else exported into the cache."""
    return path if path is not None else _recipe(request, config, roles).cached()


# ------------------------------------------------------------------ loading


def _fidelity_status(fidelity: Fidelity | None) -> tuple[str, str]:
    gate = fidelity.gate if fidelity is not None else None
    if gate is not None and not gate.passed:
        return FAILED_FIDELITY, "; ".join(gate.failures)
    return RAN, ""


def _load_options(config: Config, precision: str) -> dict[str, Any]:
    options: dict[str, Any] = {"precision": precision}
    if config.device != "cpu":
        options["device"] = config.device
    return options


@dataclass
class _Graph:
    """One graph of one config, loaded and run once per batch; ``row`` is the template of its rows."""

    opened: measure.Opened
    info: Any  # pipeline.GraphInfo
    row: BenchRow
    entry: dict = field(default_factory=dict)  # the bundle manifest's entry for this graph
    batch_range: tuple[int, int] | None = None  # the artifact's (min, max) batch, pose and lifter


def open_bundle(
    path: Path,
    config: Config,
    request: BenchRequest,
    image: np.ndarray,
    on_row: Callable[[BenchRow], None],
) -> dict[str, _Graph]:
    """Load each graph of a bundle (timed) and run it once per batch (first inference, memory rise).

    A graph that fails to load or run becomes ``failed`` rows (with the reason) and is left out."""
    bundle = Bundle.load(path)
    graphs: dict[str, _Graph] = {}
    for role in [r for r in request.roles if r in bundle.roles]:
        graph = bundle.graph(role)
        info = GraphInfo.from_manifest(bundle.entry(role))
        row = BenchRow(role, graph["model"], config.backend, config.device, bundle.precision, 1, FAILED,
                       fidelity=graph.get("fidelity"), bundle=str(bundle.path), standin=bool(graph.get("standin")),
                       notes=list(graph.get("notes") or []))  # fmt: skip
        batches = (1,) if role == "detector" else request.batch_list

        def make(role: str = role) -> Any:
            return backends.load(bundle.artifact(role), backend=bundle.backend,
                                 **_load_options(config, bundle.precision))  # fmt: skip

        def feeds(session: Any, role: str = role, info: Any = info, batches: tuple = batches) -> list:
            return [measure.graph_feed(role, info, session.inputs[0].name, b, image) for b in batches]

        try:
            opened = measure.open_session(make, feeds)
        except Exception as exc:  # a graph that fails must not end the bench: record why and go on
            for batch in batches:
                on_row(replace(row, batch=batch, reason=one_line(exc)))
            continue
        session = opened.session
        status, reason = _fidelity_status(bundle.entry(role).fidelity)
        notes = row.notes + [n for n in session.notes if n not in row.notes]
        row = replace(row, status=status, reason=reason, load_s=opened.load_s, executed=session.precision, notes=notes)
        graphs[role] = _Graph(opened, info, row, graph, _batch_range(bundle.manifest, role))
    return graphs


def _batch_range(manifest: dict, role: str) -> tuple[int, int] | None:
    """(min, max) batch the bundle's pose/lifter artifacts accept (the detector always runs one frame)."""
    if role == "detector" or not manifest.get("batch"):
        return None
    try:
        batch = BatchRange.parse(str(manifest["batch"]))
    except SpinePoseDeployError:  # an unreadable range: run unbatched, the Session will say if that fails
        return None
    return batch.min, batch.max


# ------------------------------------------------------------------ accuracy vs ground truth


def score_accuracy(loaded: dict[Config, dict[str, _Graph]], request: BenchRequest, say: Steps) -> dict[str, Any]:
    """Score every loaded graph with meaningful weights on ``request.accuracy`` held-out scenes; the result
    goes into each graph's row template (so onto all its batch rows). Returns the run's accuracy summary."""
    truth = acc.GroundTruth.heldout(request.accuracy)
    kinds: dict[str, str] = {}
    for config, graphs in loaded.items():
        for role, graph in graphs.items():
            kind = acc.weights_kind(graph.row.model, graph.row.standin, graph.entry.get("source_sha256"))
            kinds[role] = acc.weakest(kinds.get(role, acc.REAL), kind)
            if not acc.meaningful(kind):
                continue
            say(f"{config.label}: {role} accuracy on {request.accuracy} synthetic scenes")
            try:
                result = acc.measure(role, graph.opened.session, graph.info, truth, graph.batch_range)
            except Exception as exc:  # accuracy is extra: a graph that cannot be scored keeps its timing rows
                log.warning("%s %s: accuracy not measured: %s", config.label, role, one_line(exc))
                result = {"metric": acc.METRIC[role], "value": None, "error": one_line(exc)}
            graph.row = replace(graph.row, accuracy={**result, "weights": kind})
    random = [role for role in ROLES if kinds.get(role) == acc.RANDOM]
    note = ""
    if random:
        note = (
            f"accuracy not measured for {', '.join(random)}: random stand-in weights have no skill, so the numbers "
            "would mean nothing (--weights trained uses the stand-ins trained on the synthetic world)"
        )
    return {"scenes": len(truth.scenes), "people": len(truth.persons), "weights": kinds, "note": note}


# ------------------------------------------------------------------ timing, all configs taking turns


def time_graph(role: str, batch: int, loaded: dict[Config, dict[str, _Graph]], request: BenchRequest) -> list[BenchRow]:
    """One graph at one batch on every config, round robin; a row per config."""
    graphs = {config: graphs[role] for config, graphs in loaded.items() if role in graphs}
    if not graphs:
        return []
    calls, firsts = {}, {}
    for config, graph in graphs.items():
        index = [measure.feed_batch(f) for f in graph.opened.feeds].index(batch)
        feed = graph.opened.feeds[index]
        calls[config] = lambda session=graph.opened.session, feed=feed: session.run(feed)
        firsts[config] = graph.opened.first_s[index]
    window = measure.run_window(calls, duration_s=request.duration_s)
    rows = []
    for config, graph in graphs.items():
        t = measure.timing(window[config], firsts[config], batch)
        rows.append(replace(graph.row, batch=batch, first_ms=t.first_ms, p50_ms=t.p50_ms, p90_ms=t.p90_ms,
                            p99_ms=t.p99_ms, mean_ms=t.mean_ms, runs=t.runs, items_per_s=t.items_per_s,
                            rss_mb=graph.opened.rss.rise_mb))  # fmt: skip
    return rows


def time_pipelines(
    pipelines: dict[Any, tuple[Any, BenchRow]], request: BenchRequest, image: np.ndarray
) -> list[BenchRow]:
    """Frames per second of detector + one batched pose run + lifter with ``people`` boxes, pipelines
    taking turns. The detector's boxes are ignored: the given boxes keep the person count exact. Each row
    keeps its template's status (ran / failed fidelity) unless its pipeline raises."""
    boxes = measure.tiled_boxes(image.shape[:2], request.people)

    def frame(pipe: Any) -> None:
        pipe.detect(image)
        pipe(image, boxes)

    calls, firsts, rows = {}, {}, []
    for key, (pipe, template) in pipelines.items():
        try:
            start = time.perf_counter()
            frame(pipe)
            firsts[key] = time.perf_counter() - start
            calls[key] = lambda pipe=pipe: frame(pipe)
        except Exception as exc:  # one failing pipeline is a row, not the end of the bench
            rows.append(replace(template, status=FAILED, reason=one_line(exc)))
    if not calls:
        return rows
    # the pipelines are the headline comparison (auto vs the best single config): a longer window and
    # more frames than a graph gets, as a frame's run-to-run noise on a busy machine is ~10 %
    window = measure.run_window(calls, duration_s=request.duration_s * 4, min_runs=PIPELINE_MIN_RUNS)
    for key in calls:
        t = measure.timing(window[key], firsts[key], 1)
        rows.append(replace(pipelines[key][1], first_ms=t.first_ms, p50_ms=t.p50_ms, p90_ms=t.p90_ms,
                            p99_ms=t.p99_ms, mean_ms=t.mean_ms, runs=t.runs, items_per_s=t.items_per_s))  # fmt: skip
    return rows


def _pipeline_row(config: Config, graphs: dict[str, _Graph], request: BenchRequest) -> BenchRow:
    """The row a config's pipeline gets when it runs: ``failed fidelity`` when one of its graphs failed."""
    failed = [role for role, g in graphs.items() if g.row.status == FAILED_FIDELITY]
    return BenchRow(
        PIPELINE, "+".join(g.row.model for g in graphs.values()), config.backend, config.device, config.precision,
        request.people, FAILED_FIDELITY if failed else RAN, standin=any(g.row.standin for g in graphs.values()),
        reason="; ".join(f"{role} failed its fidelity gate" for role in failed), bundle=graphs["pose"].row.bundle,
        executed="/".join(dict.fromkeys(g.row.executed for g in graphs.values())),
    )  # fmt: skip


def _auto_pipeline(
    ranked: dict[str, list[Any]], loaded: dict[Config, dict[str, _Graph]], request: BenchRequest
) -> tuple[Any, BenchRow]:
    """The auto-selected mix as a Pipeline over the Sessions already open (each role with fallback)."""
    chosen: dict[str, _Graph] = {}
    labels = []
    for role in ROLES:

        def load(choice: Any, role: str = role) -> _Graph:
            graph = loaded.get(Config(choice.backend, choice.precision, choice.device), {}).get(role)
            if graph is None:
                raise ModelLoadError(f"{choice.label}: {role} did not load in this run")
            return graph

        chosen[role], choice = load_with_fallback(ranked[role], load, role=role)
        labels.append(f"{role}: {choice.label}")
    sessions = {role: g.opened.session for role, g in chosen.items()}
    pipe = Pipeline(**sessions, graphs={role: g.info for role, g in chosen.items()}, lift=True)
    row = BenchRow(PIPELINE, "+".join(g.row.model for g in chosen.values()), "auto", "cpu", "auto", request.people,
                   RAN, standin=any(g.row.standin for g in chosen.values()), notes=labels)  # fmt: skip
    return pipe, row


# ------------------------------------------------------------------ the run


def run_bench(
    request: BenchRequest,
    *,
    on_row: Callable[[BenchRow], None] | None = None,
    progress: Progress | None = None,
) -> BenchResult:
    """Run the bench; ``on_row`` sees each row as soon as it is measured (keep them: Ctrl-C propagates)."""
    request.validate()
    start = time.perf_counter()
    say = Steps(progress, logger=log)
    rows: list[BenchRow] = []

    def emit(row: BenchRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    host = fingerprint()
    image = measure.bench_image()
    items = plan(request)
    skipped = [(item.config.label, item.skip) for item in items if item.skip]
    phases = {"export": 0.0, "load": 0.0, "measure": 0.0}
    loaded: dict[Config, dict[str, _Graph]] = {}
    ranked: dict[str, list[Any]] = {}
    notes: list[str] = []
    accuracy: dict[str, Any] | None = None
    try:
        for item in [i for i in items if not i.skip]:
            config = item.config
            for roles, given in item.groups.items():
                say(f"{config.label}: bundle ({', '.join(roles)})")
                began = time.perf_counter()
                try:
                    path = _bundle_for(request, config, roles, given)
                except Exception as exc:  # an export that fails is a row, not the end of the bench
                    graph = roles[0] if len(roles) == 1 else EXPORT
                    emit(BenchRow(graph, "-", config.backend, config.device, config.precision, 1, FAILED,
                                  reason=f"export: {one_line(exc)}"))  # fmt: skip
                    continue
                finally:
                    phases["export"] += time.perf_counter() - began
                say(f"{config.label}: loading")
                began = time.perf_counter()
                loaded.setdefault(config, {}).update(open_bundle(path, config, request, image, emit))
                phases["load"] += time.perf_counter() - began
        if request.accuracy:
            began = time.perf_counter()
            accuracy = score_accuracy(loaded, request, say)
            phases["accuracy"] = time.perf_counter() - began
        began = time.perf_counter()
        for role in request.roles:
            for batch in (1,) if role == "detector" else request.batch_list:
                say(f"timing {role} at batch {batch}")
                for row in time_graph(role, batch, loaded, request):
                    emit(row)
        ranked = select.choose(rows, request.people)
        if request.end_to_end and set(ROLES) <= set(request.roles):
            say(f"timing pipelines, {request.people} people")
            pipelines: dict[Any, tuple[Any, BenchRow]] = {}
            for config, graphs in loaded.items():
                if set(ROLES) <= set(graphs):
                    sessions = {role: g.opened.session for role, g in graphs.items()}
                    pipe = Pipeline(**sessions, graphs={r: g.info for r, g in graphs.items()}, lift=True)
                    pipelines[config] = (pipe, _pipeline_row(config, graphs, request))
            if set(ROLES) <= set(ranked) and pipelines:
                try:
                    pipelines["auto"] = _auto_pipeline(ranked, loaded, request)
                except SpinePoseDeployError as exc:
                    emit(BenchRow(PIPELINE, "-", "auto", "cpu", "auto", request.people, FAILED, reason=one_line(exc)))
            for row in time_pipelines(pipelines, request, image):
                emit(row)
            ranked, decision = select.prefer_end_to_end(ranked, rows)
            if decision:
                log.info("auto-select: %s", decision)
                notes.append(decision)
        phases["measure"] += time.perf_counter() - began
    finally:
        for graphs in loaded.values():
            for graph in graphs.values():
                graph.opened.close()
    measured: dict[str, set[tuple[str, str, str]]] = {}
    for row in rows:
        measured.setdefault(row.graph, set()).add((row.backend, row.precision, row.device))
    selection = select.store(ranked, host, measured=measured) if ranked else {}
    wall = time.perf_counter() - start
    return BenchResult(rows, skipped, selection, host, any(r.standin for r in rows), wall, phases, notes, accuracy)

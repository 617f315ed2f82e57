"""``infer_on_ray``: run ``infer`` over a large collection on a Ray cluster, resumable.

Why actors and not Ray Data: a video's frames depend on each other (track ids, One-Euro smoothing and the
world frame are state carried across frames), so a video runs through one ``Pipeline.track``, or, when
long, in segments whose boundaries are checked and stitched exactly (``segments``). Ray Data's unit is a
block of rows whose outputs flow back into a dataset; here every output is a side effect (files written
next to each other, locally or in an object store), failures must be reported per file, a dead worker's
work must be re-run and progress must be visible inside a long video. A small pool of actors does that:

- each actor builds one Pipeline once (from a bundle, or a mode with ``backend="auto"`` so every
  node uses what its own bench measured fastest) and keeps it for every file it is given;
- the driver hands out work: segments of long videos first, then each other video alone (largest first,
  so the long ones do not finish last), then images in batches; an actor busy with images gets a second
  batch queued so it never idles between tasks, while videos go only to idle actors;
- per-file errors come back as failed outcomes (the run goes on); a worker that dies (crash, OOM,
  node lost, ``ray.kill``) is replaced and its unfinished files or segments are re-submitted, each at most
  ``max_retries`` times;
- inputs and outputs in an object store are staged on the worker's disk (``remote``); the spine files
  are written by the driver from the workers' per-frame results (``spine_rows``);
- completion markers (``resume``) make a rerun skip finished inputs, so Ctrl-C or a crash loses at
  most the files in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import (
    BackendUnavailableError,
    InvalidOptionError,
    ModelLoadError,
    SpinePoseDeployError,
    UserError,
    one_line,
)
from ..pipeline.infer import OutputPlan
from ..pipeline.io import InputSource, InputSpec, VideoReader
from ..pipeline.pipeline import Pipeline, PipelineOptions
from ..pipeline.spec import PipelineSpec
from ..pipeline.spine_outputs import SpineRequest
from . import remote, resume
from .joining import Joiner, SegmentTask, local_probe, may_be_long, segment_tasks, split
from .progress import Display
from .remote import Stores, lookup, make_units, run_staged
from .segments import DEFAULT_SEGMENT_SECONDS, Segment, SegmentResult, check_segment_seconds, run_segment
from .ship import ShippedBundle, pack_bundle
from .sources import resolve_sources
from .spine_files import RowStore
from .worker import FileOutcome, Unit, run_unit, skipped, worker_label

log = logging.getLogger(__name__)

RAY_MISSING = "ray is required for --ray. Install: pip install 'spinepose-deploy[ray]'"
IN_FLIGHT_PER_ACTOR = 2
TALLY_EVERY_S = 0.5

PipelineFactory = Callable[[], Pipeline]


def require_ray() -> Any:
    """The ``ray`` module, or ``BackendUnavailableError`` saying how to install it."""
    try:
        import ray  # optional extra, loaded only when this feature runs
    except ImportError as exc:
        raise BackendUnavailableError(RAY_MISSING) from exc
    return ray


@dataclass
class RunSummary:
    """What a run did. ``frames``/``fps`` count this run's work only (skipped inputs excluded);
    ``setup_seconds`` is the part of ``seconds`` spent connecting to Ray and building the workers'
    pipelines (``fps`` leaves it out)."""

    done: list[FileOutcome] = field(default_factory=list)
    skipped: list[FileOutcome] = field(default_factory=list)
    failed: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    actors: int = 0
    retries: int = 0
    worker_restarts: int = 0
    pipelines: list[str] = field(default_factory=list)
    standin: bool = False
    interrupted: bool = False
    pending: int = 0
    path: Path | str | None = None  # summary.json: a file, or its URL in the output store
    busy_seconds: float = 0.0  # worker time spent on inputs and segments (idle share = 1 - busy / actors x time)
    segment_overhead_seconds: float = 0.0  # of busy_seconds: segments' scale probes, seeks and warm-ups
    segments: int = 0  # segment tasks run for videos split across workers
    rejoined: int = 0  # split videos run again whole because a boundary did not join exactly
    spine_files: list[Path] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(o.frames for o in self.done)

    @property
    def idle_share(self) -> float:
        """Share of the workers' time (from ready to the last file) spent waiting for work."""
        span = (self.seconds - self.setup_seconds) * self.actors
        return max(0.0, 1.0 - self.busy_seconds / span) if span > 0 else 0.0

    @property
    def fps(self) -> float:
        """Frames per second of processing: from the workers being ready to the last file done."""
        busy = self.seconds - self.setup_seconds
        return self.frames / busy if busy > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "frames": self.frames, "fps": round(self.fps, 3), "seconds": round(self.seconds, 3),
            "setup_seconds": round(self.setup_seconds, 3), "actors": self.actors, "retries": self.retries,
            "worker_restarts": self.worker_restarts, "pipelines": self.pipelines, "standin": self.standin,
            "interrupted": self.interrupted, "pending": self.pending, "segments": self.segments,
            "busy_seconds": round(self.busy_seconds, 3), "idle_share": round(self.idle_share, 4),
            "segment_overhead_seconds": round(self.segment_overhead_seconds, 3),
            "rejoined": self.rejoined, "spine_files": [str(p) for p in self.spine_files],
            "counts": {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)},
            "done": [o.to_dict() for o in self.done],
            "skipped": [o.to_dict() for o in self.skipped],
            "failed": [o.to_dict() for o in self.failed],
        }  # fmt: skip


def infer_on_ray(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    pipeline: PipelineSpec | PipelineFactory | None = None,
    out_json: str | os.PathLike | None = None,
    out_vis: str | os.PathLike | None = None,
    spine_only: bool = False,
    address: str | None = None,
    num_actors: int | None = None,
    batch_size: int = 8,
    max_retries: int = 3,
    retry_failed: bool = False,
    ship_bundle: bool = False,
    actor_options: dict[str, Any] | None = None,
    progress: bool = True,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    spine: SpineRequest | None = None,
) -> RunSummary:
    """Run the pipeline over every image and video of ``source`` on Ray; write what ``infer`` writes.

    Args:
        source: a folder, a glob, a list file (one path per line), a sequence of paths, or an object-store
            prefix (``s3://bucket/videos/``, also ``gs://``, ``az://``: docs/ray.md).
        pipeline: a ``PipelineSpec`` (default: mode small, backend auto) or any picklable callable that
            returns a ``Pipeline``; each actor calls it once.
        out_json / out_vis: output folders, as ``infer --json`` / ``--vis`` (at least one); or object-store
            prefixes (both, when both are given), resume markers included.
        address: Ray address (None: ``ray.init()``'s own search, else a new local instance); ignored
            when Ray is already initialised in this process.
        num_actors: workers (default: the cluster's CPUs / the actor's ``num_cpus``).
        batch_size: images per task (videos are always one per task).
        max_retries: how often an input is re-submitted after its worker died.
        retry_failed: also re-run inputs that failed in an earlier run (unchanged files are skipped).
        ship_bundle: send ``pipeline.bundle`` through the object store to nodes that cannot see its path.
        actor_options: Ray actor options (num_cpus (default 1), num_gpus, resources, runtime_env, ...).
        progress: show files, frames and frames/s on stderr.
        segment_seconds: a video longer than this is split into segments run by different workers and
            stitched into exactly the single-machine outputs (``scale.segments``); None or 0: never split.
            Needs a ``PipelineSpec`` (its detection interval), a local video and no ``out_vis``.
        spine: the spine CSV / plot / TRC / C3D files to write (local paths), as ``infer --spine ...``: the
            driver writes them from the workers' per-frame results with the single-machine writers.

    Returns the ``RunSummary`` (also written to ``<out>/.spinepose-ray/summary.json``, in the store for a URL).
    """
    ray = require_ray()
    if out_json is None and out_vis is None:
        raise InvalidOptionError("--ray: give --json DIR and/or --vis DIR (a run on Ray only writes files)")
    if batch_size < 1 or max_retries < 0 or (num_actors is not None and num_actors < 1):
        raise InvalidOptionError(
            f"infer_on_ray: batch_size {batch_size}, max_retries {max_retries}, num_actors {num_actors}; "
            "expected batch_size >= 1, max_retries >= 0, num_actors >= 1"
        )
    segment_seconds = check_segment_seconds(segment_seconds)
    spine = spine if spine is not None and spine.wanted else None
    if spine is not None:
        if spine.vis_angles:
            raise InvalidOptionError("--vis-angles: not available with --ray (overlays are drawn on the workers)")
        if spine.lift_filtered:
            raise InvalidOptionError("--lift-filtered: not available with --ray (the driver, which writes the spine "
                                     "files, holds no lifter)")  # fmt: skip
        options = _options(pipeline if pipeline is not None else PipelineSpec())
        spine.check(lift=options.lift if options is not None else True, vis=out_vis is not None)
    found = resolve_sources(source)
    if spine is not None and found.store is None:
        spine.check_inputs(found.spec)  # a --neutral range inside each video, a cut-off below its fps / 2
    stores = Stores.for_run(found, out_json, out_vis)
    local = not stores.outputs
    plan = OutputPlan(found.spec, _absolute(out_json) if local else None, _absolute(out_vis) if local else None)
    factory: PipelineSpec | PipelineFactory = pipeline if pipeline is not None else PipelineSpec()
    settings = {"pipeline": _settings(factory), "spine_only": spine_only,
                "json": stores.json.url if stores.json else str(plan.json_out),
                "vis": stores.vis.url if stores.vis else str(plan.vis_out)}  # fmt: skip
    state = resume.state_dir(plan) if local else None
    summary = RunSummary(path=state / "summary.json" if state else stores.state.child("summary.json"))
    summary.failed += [FileOutcome(path, Path(path).name, "unknown", "failed", error=err, attempts=0)
                       for path, err in found.rejected]  # fmt: skip
    order = {s.name: i for i, s in enumerate(plan.spec.sources)}
    rows = RowStore(stores, state) if spine is not None else None
    find = lookup(stores) if rows is None else rows.wrap(lookup(stores))
    todo = _plan_units(make_units(found, settings, state), summary, retry_failed, find)
    split_seconds = segment_seconds if out_vis is None else None  # an overlay video is one sequential encode
    segments = split(todo, _options(factory), split_seconds, local_probe)
    began = time.perf_counter()
    display = Display(len(plan.spec.sources), enabled=progress)
    with display:
        for outcome in summary.skipped + summary.failed:
            display.file_done(outcome)
        if todo:
            _run(ray, todo, factory, plan, summary, display,
                 address=address, num_actors=num_actors, batch_size=batch_size, max_retries=max_retries,
                 ship_bundle=ship_bundle, spine_only=spine_only, actor_options=actor_options or {},
                 stores=stores, segments=segments, spine=spine is not None, split_seconds=split_seconds)  # fmt: skip
    summary.seconds = time.perf_counter() - began
    for group in (summary.done, summary.skipped, summary.failed):
        group.sort(key=lambda o: order.get(o.name, -1))
    if rows is not None and not summary.interrupted:
        finished = [o.name for o in summary.done + summary.skipped]
        summary.spine_files = rows.write(spine, plan, summary.done, finished, summary.standin)
    if stores.state is not None:
        stores.state.write_text("summary.json", json.dumps(summary.to_dict(), indent=1))
    else:
        resume.write_summary(summary.path, summary.to_dict())
    return summary


# ---------------------------------------------------------------- planning


def _options(factory: Any) -> PipelineOptions | None:
    """The pipeline options of a ``PipelineSpec`` (None for another factory: not known before it runs)."""
    return PipelineOptions.build(**factory.options) if isinstance(factory, PipelineSpec) else None


def _remote_probe(ray: Any, actors: list[Any], units: list[Unit]) -> dict[str, tuple]:
    """Frame count and fps of videos in the object store, each probed by a worker (which keeps the download
    for the segments it then runs); a video that cannot be probed runs whole (its error is reported then)."""
    remote_units = [u for u in units if u.key is not None]
    refs = {u.source.name: actors[i % len(actors)].probe.remote(u) for i, u in enumerate(remote_units)}
    found = {}
    for name, ref in refs.items():
        with contextlib.suppress(Exception):
            found[name] = ray.get(ref)
    return found


def _absolute(path: str | os.PathLike | None) -> Path | None:
    return None if path is None else Path(path).absolute()


def _settings(factory: PipelineSpec | PipelineFactory) -> Any:
    if hasattr(factory, "settings"):
        return factory.settings()
    return {"factory": f"{type(factory).__module__}.{getattr(factory, '__qualname__', type(factory).__qualname__)}"}


def _plan_units(
    units: list[Unit], summary: RunSummary, retry_failed: bool, find: Callable[[Unit], tuple[dict | None, dict | None]]
) -> list[Unit]:
    """Units still to do; complete inputs go to ``summary.skipped``, known failures to ``summary.failed``."""
    todo = []
    for unit in units:
        source = unit.source
        record, failure = find(unit)
        if record is not None:
            summary.skipped.append(skipped(unit, record))
            continue
        if failure is not None and not retry_failed:
            label = failure.get("source", str(source.path))
            summary.failed.append(FileOutcome(label, source.name, source.kind, "failed", error=failure.get("error"),
                                              attempts=0, previous=True))  # fmt: skip
            continue
        todo.append(unit)
    return todo


Task = list[Unit] | SegmentTask


def _tasks(units: list[Unit], batch_size: int, segments: dict[str, list[Segment]]) -> list[Task]:
    """Segments of split videos first (the long work, spread over every worker), then ``_batches``."""
    split: list[Task] = []
    for unit in units:
        if segments.get(unit.source.name):
            split += segment_tasks(unit, segments[unit.source.name])
    return split + _batches([u for u in units if u.source.name not in segments], batch_size)


def _batches(units: list[Unit], batch_size: int) -> list[list[Unit]]:
    """Videos one per task, largest first; then images ``batch_size`` per task."""

    def size(unit: Unit) -> int:
        if unit.size is not None:
            return unit.size
        with contextlib.suppress(OSError):
            return os.path.getsize(unit.source.path)
        return 0

    videos = sorted((u for u in units if u.source.kind != "image"), key=size, reverse=True)
    images = [u for u in units if u.source.kind == "image"]
    return [[v] for v in videos] + [images[i : i + batch_size] for i in range(0, len(images), batch_size)]


# ---------------------------------------------------------------- the workers


class _Tally:
    """Frames processed so far, summed over workers (for the progress display only)."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, frames: int) -> None:
        self.frames += frames

    def get(self) -> int:
        return self.frames


class _Worker:
    """One Pipeline, built once, run over the inputs it is handed."""

    def __init__(
        self,
        factory: PipelineSpec | PipelineFactory,
        plan: OutputPlan,
        spine_only: bool,
        tally: Any,
        stores: Stores,
        spine: bool = False,
    ):
        self._factory, self._plan, self._spine_only, self._tally = factory, plan, spine_only, tally
        self._stores, self._spine = stores, spine
        self._pipeline: Pipeline | None = None

    def start(self) -> dict[str, Any]:
        if self._pipeline is None:
            self._pipeline = self._factory()
        described = ", ".join(self._pipeline.describe().values())
        return {"worker": worker_label(), "pipeline": described, "standin": bool(self._pipeline.standin)}

    def pid(self) -> int:
        return os.getpid()

    def segment(self, unit: Unit, segment: Segment, tail: int) -> SegmentResult:
        """Raw results of one segment of a video (``scale.segments``); the driver stitches them."""
        self.start()
        step, flush = self._counter()
        try:
            return run_segment(self._pipeline, self._local(unit), segment, tail, on_frame=step)
        finally:
            flush()

    def probe(self, unit: Unit) -> tuple[int | None, float]:
        """(frame count, fps) of a video in the object store (downloaded once to this node for its segments)."""
        with VideoReader(self._local(unit)) as reader:
            return reader.frame_count, reader.fps

    def forget(self, units: list[Unit]) -> None:
        if self._stores.input is not None:
            remote.forget(self._stores.input, units)

    def _local(self, unit: Unit) -> InputSource:
        if unit.key is None or self._stores.input is None:
            return unit.source
        return replace(unit.source, path=remote.fetch(self._stores.input, unit))

    def _counter(self) -> tuple[Callable[[], None], Callable[[], None]]:
        """(step once per frame, flush at the end): frame counts sent to the tally at most every TALLY_EVERY_S."""
        pending, last = [0], [time.monotonic()]

        def step() -> None:
            pending[0] += 1
            now = time.monotonic()
            if now - last[0] >= TALLY_EVERY_S:
                self._tally.add.remote(pending[0])
                pending[0], last[0] = 0, now

        def flush() -> None:
            if pending[0]:
                self._tally.add.remote(pending[0])

        return step, flush

    def run(self, units: list[Unit]) -> list[FileOutcome]:
        self.start()
        step, flush = self._counter()
        try:
            if self._stores.any:
                return [run_staged(self._pipeline, self._plan, u, self._stores, spine_only=self._spine_only,
                                   on_frame=step, spine=self._spine) for u in units]  # fmt: skip
            return [run_unit(self._pipeline, self._plan, u, spine_only=self._spine_only, on_frame=step,
                             spine=self._spine) for u in units]  # fmt: skip
        finally:
            flush()


# ---------------------------------------------------------------- the driver


def _run(
    ray: Any,
    units: list[Unit],
    factory: PipelineSpec | PipelineFactory,
    plan: OutputPlan,
    summary: RunSummary,
    display: Display,
    *,
    address: str | None,
    num_actors: int | None,
    batch_size: int,
    max_retries: int,
    ship_bundle: bool,
    spine_only: bool,
    actor_options: dict[str, Any],
    stores: Stores,
    segments: dict[str, list[Segment]],
    spine: bool,
    split_seconds: float | None,
) -> None:
    began = time.perf_counter()
    # videos in a store are probed by the workers, then split: size the pool for the segments to come
    in_store = [u for u in units if may_be_long(u, split_seconds)]
    started = _connect(ray, address)
    actors: list[Any] = []
    tally = None
    try:
        if ship_bundle:
            if not isinstance(factory, PipelineSpec) or factory.bundle is None:
                raise InvalidOptionError("ship_bundle: needs a PipelineSpec with a bundle")
            blob, digest = pack_bundle(factory.bundle)
            factory = ShippedBundle(factory, ray.put(blob), digest)
        tasks: deque[Task] = deque(_tasks(units, batch_size, segments))
        options = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0, **actor_options}
        count = num_actors or _default_actors(ray, options)
        count = count if in_store else min(count, len(tasks))
        tally = ray.remote(_Tally).options(num_cpus=0).remote()
        slim = _slim(plan)
        worker = ray.remote(_Worker).options(**options)

        def make() -> Any:
            return worker.remote(factory, slim, spine_only, tally, stores, spine)

        actors = [make() for _ in range(count)]
        infos = _start(ray, actors)
        summary.actors = count
        summary.pipelines = sorted({info["pipeline"] for info in infos})
        summary.standin = any(info["standin"] for info in infos)
        if in_store:
            probed = split(in_store, _options(factory), split_seconds, partial(_remote_probe, ray, actors))
            segments = {**segments, **probed}
            tasks = deque(_tasks(units, batch_size, segments))
        summary.setup_seconds = time.perf_counter() - began
        display.started(count)
        joiner = Joiner(segments, plan, stores, spine_only, spine)
        try:
            _drive(ray, tasks, actors, make, tally, summary, display, max_retries, joiner)
        finally:
            joiner.close()
            summary.rejoined = joiner.rejoined
    except KeyboardInterrupt:  # Ctrl-C: what finished has its markers; the summary says what is pending
        summary.interrupted = True
        summary.pending = len(units) - len(summary.done) - sum(o.attempts > 0 for o in summary.failed)
        log.warning("interrupted: %d inputs not finished; rerun the same command to resume", summary.pending)
    finally:
        if in_store and actors:  # the nodes' copies of the split videos
            with contextlib.suppress(Exception):
                ray.get([actor.forget.remote(in_store) for actor in actors], timeout=60)
        for handle in [*actors, tally]:
            if handle is not None:
                with contextlib.suppress(Exception):
                    ray.kill(handle)
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Connect (True when this call started/joined Ray and so must shut it down)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"--ray-address: cannot connect to Ray at '{address}' ({one_line(exc)})") from exc
    return True


def _default_actors(ray: Any, options: dict[str, Any]) -> int:
    resources = ray.cluster_resources()
    count = int(resources.get("CPU", 1) // max(float(options.get("num_cpus") or 1), 1e-3))
    gpus = float(options.get("num_gpus") or 0)
    if gpus > 0:
        count = min(count, int(resources.get("GPU", 0) // gpus))
    return max(count, 1)


def _slim(plan: OutputPlan) -> OutputPlan:
    """The plan without its source list (each task names its sources): small to ship to every actor."""
    if plan.spec.kind != "folder":
        return plan
    return OutputPlan(InputSpec("folder", (), plan.spec.root), plan.json_out, plan.vis_out)


def _start(ray: Any, actors: list[Any]) -> list[dict[str, Any]]:
    """Build every actor's pipeline in parallel; a build error stops the run before any work."""
    try:
        return ray.get([actor.start.remote() for actor in actors])
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SpinePoseDeployError):
            raise cause from None
        raise ModelLoadError(f"Ray workers could not build the pipeline: {one_line(cause or exc)}") from None
    except ray.exceptions.RayActorError as exc:
        raise ModelLoadError(
            f"Ray workers could not start ({one_line(exc)}); is spinepose-deploy installed on every node "
            "(or given in runtime_env)?"
        ) from None


def _drive(
    ray: Any,
    tasks: deque[list[Unit]],
    actors: list[Any],
    make: Callable[[], Any],
    tally: Any,
    summary: RunSummary,
    display: Display,
    max_retries: int,
    joiner: Joiner,
) -> None:
    """Keep every actor busy until no task is left; replace dead actors and re-submit their work."""
    crashes = _crash_errors(ray)
    inflight: dict[Any, tuple[int, Any, Task]] = {}
    load = [0] * len(actors)
    videos = [0] * len(actors)
    tally_ref = None
    while tasks or inflight or joiner.busy:
        for outcome in joiner.collect():
            (summary.done if outcome.status == "done" else summary.failed).append(outcome)
            display.file_done(outcome)
        for depth in range(1, IN_FLIGHT_PER_ACTOR + 1):  # one task per actor first, then top up
            for slot, actor in enumerate(actors):
                if not tasks or load[slot] >= depth:
                    continue
                if depth > 1 and (_has_video(tasks[0]) or videos[slot]):
                    continue  # nothing waits behind a video, nor a video behind anything: idle actors take them
                batch = tasks.popleft()
                inflight[_submit(actor, batch)] = (slot, actor, batch)
                load[slot] += 1
                videos[slot] += _has_video(batch)
        if not inflight:
            time.sleep(0.05)  # only stitching left
            continue
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.25)
        tally_ref = _poll_tally(ray, tally, tally_ref, display)
        for ref in ready:
            slot, actor, batch = inflight.pop(ref)
            load[slot] -= 1
            videos[slot] -= _has_video(batch)
            try:
                outcomes = ray.get(ref)
            except crashes as exc:
                if actors[slot] is actor:  # the first of its tasks to fail: replace the worker once
                    with contextlib.suppress(Exception):
                        ray.kill(actor)
                    actors[slot] = make()
                    summary.worker_restarts += 1
                    log.warning("worker died (%s); starting another", one_line(exc).split(".")[0])
                _resubmit(batch, exc, tasks, summary, display, max_retries, joiner)
                continue
            if isinstance(batch, SegmentTask):
                summary.segments += 1
                summary.busy_seconds += outcomes.seconds
                summary.segment_overhead_seconds += outcomes.overhead_seconds
                joiner.add(batch, outcomes, tasks)
                continue
            else:
                summary.busy_seconds += sum(o.seconds for o in outcomes)
            for outcome in outcomes:
                (summary.done if outcome.status == "done" else summary.failed).append(outcome)
                display.file_done(outcome)
    display.frames(summary.frames)


def _submit(actor: Any, task: Task) -> Any:
    if isinstance(task, SegmentTask):
        return actor.segment.remote(task.unit, task.segment, task.tail)
    return actor.run.remote(task)


def _has_video(batch: Task) -> bool:
    return isinstance(batch, SegmentTask) or any(unit.source.kind != "image" for unit in batch)


def _crash_errors(ray: Any) -> tuple[type[BaseException], ...]:
    names = ("RayActorError", "ActorUnavailableError", "RayTaskError", "WorkerCrashedError", "ObjectLostError")
    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


def _resubmit(
    batch: Task,
    exc: BaseException,
    tasks: deque,
    summary: RunSummary,
    display: Display,
    max_retries: int,
    joiner: Joiner,
) -> None:
    """Each input of a failed task goes back alone (a crashing file cannot take others down twice); a segment
    goes back as it was."""
    units = batch if isinstance(batch, list) else [batch.unit]
    if isinstance(batch, SegmentTask):
        unit = batch.unit
        if unit.source.name in joiner.dead:
            return  # another of its segments already failed it
        if unit.attempts < max_retries:
            unit.attempts += 1
            summary.retries += 1
            tasks.appendleft(batch)
            return
        joiner.failed(unit.source.name)
    for unit in reversed(units):
        unit.attempts += 1
        if unit.attempts > max_retries:
            source = unit.source
            error = f"{source.path}: its worker died {unit.attempts} times; last: {one_line(exc)}"
            outcome = FileOutcome(str(source.path), source.name, source.kind, "failed", error=error,
                                  attempts=unit.attempts)  # fmt: skip
            summary.failed.append(outcome)
            display.file_done(outcome)
        else:
            summary.retries += 1
            tasks.appendleft([unit])


def _poll_tally(ray: Any, tally: Any, ref: Any, display: Display) -> Any:
    """Ask the tally for the frame count without ever blocking the driver on it."""
    if ref is None:
        return tally.get.remote()
    done, _ = ray.wait([ref], timeout=0)
    if done:
        with contextlib.suppress(Exception):
            display.frames(ray.get(done[0]))
        return tally.get.remote()
    return ref

"""Time Sessions and whole frames: load time, first inference, steady-state percentiles, throughput, memory.

Only the Session interface is used (STYLE 11): the runtime behind it is never imported here. Every time
is ``time.perf_counter()``. A timed window is ``warmup`` untimed runs (the first of them timed alone as
``first_ms``), then runs until ``duration_s`` has passed (at least ``min_runs``), or exactly ``runs``
runs. Peak resident memory is sampled (psutil) after loading and after every run, outside the timed
calls, and reported as the rise over the level before loading: approximate (the allocator may keep freed
memory, and a runtime loaded before may already hold its arenas) but portable.

Feeds come from a real image (``bench_image``: the astronaut) with ``people`` boxes tiled over it so the
person count is exact (``tiled_boxes``), prepared by the pipeline's own pre-processing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
import psutil

from ..backends.base import Session
from ..ops.image import read_image
from ..ops.lifter import estimate_intrinsics
from ..paths import package_data_dir
from ..stages import Detector, GraphInfo, Lifter, PoseEstimator

Feed = Mapping[str, np.ndarray]
K = TypeVar("K")
DEFAULT_WARMUP = 1  # the first call (reported as first_ms) is the warm-up: runtimes specialise on it
MIN_RUNS = 3
BENCH_IMAGE = "astronaut.jpg"


@dataclass(frozen=True)
class Timing:
    """Latency of one feed (milliseconds) and its throughput (items per second: batch / latency)."""

    batch: int
    runs: int
    first_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    items_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class Measurement:
    """One Session: load time, peak memory rise, and a Timing per feed."""

    load_s: float
    rss_mb: float
    timings: list[Timing]
    backend: str = ""
    device: str = ""
    precision: str = ""
    notes: list[str] = field(default_factory=list)
    session: Session | None = None  # kept open only with ``keep=True``

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_s": round(self.load_s, 4),
            "rss_mb": round(self.rss_mb, 1),
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "notes": list(self.notes),
            "timings": [t.to_dict() for t in self.timings],
        }


class _Rss:
    """Resident-memory peak above a baseline, sampled on demand."""

    def __init__(self) -> None:

        self._process = psutil.Process()
        self.base = self.peak = self._process.memory_info().rss

    def sample(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def rise_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def timing(latencies_s: Sequence[float], first_s: float, batch: int = 1) -> Timing:
    """Percentiles of steady-state latencies (seconds in, milliseconds out) and throughput at ``batch``."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    return Timing(batch, len(ms), first_s * 1000.0, p50, p90, p99, float(ms.mean()),
                  batch * 1000.0 / p50 if p50 > 0 else float("inf"))  # fmt: skip


def run_window(
    calls: Mapping[K, Callable[[], object]],
    *,
    duration_s: float | None = 0.5,
    runs: int | None = None,
    min_runs: int = MIN_RUNS,
    on_run: Callable[[], None] | None = None,
) -> dict[K, list[float]]:
    """Steady-state latencies (s) of each call, taking turns (round robin, in a new seeded random order
    each turn) so that a busy machine's load, and whatever one call leaves behind for the next (a runtime's
    threads still spinning), fall on every call alike. Stops after ``runs`` turns, or once every call ran
    ``min_runs`` times and ``duration_s`` per call has passed."""
    if runs is None and duration_s is None:
        raise ValueError("run_window: give duration_s or runs")
    latencies: dict[K, list[float]] = {key: [] for key in calls}
    if not calls:
        return latencies
    budget = (duration_s or 0.0) * len(calls)
    keys = list(calls)
    order = np.random.default_rng(0)
    window_start = time.perf_counter()
    turns = 0
    while True:
        for index in order.permutation(len(keys)):
            key, call = keys[index], calls[keys[index]]
            start = time.perf_counter()
            call()
            latencies[key].append(time.perf_counter() - start)
            if on_run is not None:
                on_run()
        turns += 1
        if runs is not None:
            if turns >= runs:
                break
        elif turns >= min_runs and time.perf_counter() - window_start >= budget:
            break
    return latencies


def time_calls(
    call: Callable[[], object],
    *,
    batch: int = 1,
    warmup: int = DEFAULT_WARMUP,
    duration_s: float | None = 0.5,
    runs: int | None = None,
    min_runs: int = MIN_RUNS,
    on_run: Callable[[], None] | None = None,
) -> Timing:
    """Time ``call``: the first call alone, ``warmup - 1`` more untimed, then the steady-state window."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        call()
    window = run_window({0: call}, duration_s=duration_s, runs=runs, min_runs=min_runs, on_run=on_run)
    return timing(window[0], first, batch)


def feed_batch(feed: Feed) -> int:
    """The batch size of a feed (first axis of its first input)."""
    first = next(iter(feed.values()))
    return int(first.shape[0]) if first.ndim else 1


@dataclass
class Opened:
    """A Session just loaded (timed) and run once per feed (first-inference latency, memory rise)."""

    session: Session
    load_s: float
    feeds: list[Feed]
    first_s: list[float]
    rss: _Rss

    def close(self) -> None:
        self.session.close()


def open_session(
    make_session: Callable[[], Session], feeds: Sequence[Feed] | Callable[[Session], Sequence[Feed]]
) -> Opened:
    """Load a Session (timed; ``make_session`` is a lazy loader, STYLE 2) and run each feed once (timed).

    ``feeds`` may be a function of the loaded Session (feeds need its input names)."""
    rss = _Rss()
    start = time.perf_counter()
    session = make_session()
    load_s = time.perf_counter() - start
    rss.sample()
    try:
        made = list(feeds(session) if callable(feeds) else feeds)
        first = []
        for feed in made:
            start = time.perf_counter()
            session.run(feed)
            first.append(time.perf_counter() - start)
            rss.sample()
    except BaseException:
        session.close()
        raise
    return Opened(session, load_s, made, first, rss)


def measure_session(
    make_session: Callable[[], Session],
    feeds: Sequence[Feed] | Callable[[Session], Sequence[Feed]],
    *,
    warmup: int = DEFAULT_WARMUP,
    duration_s: float | None = 0.5,
    runs: int | None = None,
    keep: bool = False,
) -> Measurement:
    """Load a Session (timed), then time each feed through ``Session.run``: first call, steady state.

    ``feeds`` may be a function of the loaded Session. With ``keep`` the Session stays open in
    ``Measurement.session`` for the caller to reuse and close.
    """
    opened = open_session(make_session, feeds)
    session = opened.session
    try:
        timings = []
        for feed, first in zip(opened.feeds, opened.first_s, strict=True):
            for _ in range(max(warmup - 1, 0)):
                session.run(feed)
            window = run_window({0: lambda feed=feed: session.run(feed)}, duration_s=duration_s, runs=runs,
                                on_run=opened.rss.sample)  # fmt: skip
            timings.append(timing(window[0], first, feed_batch(feed)))
    except BaseException:
        session.close()
        raise
    result = Measurement(opened.load_s, opened.rss.rise_mb, timings, session.backend, session.device,
                         session.precision, list(session.notes))  # fmt: skip
    if keep:
        result.session = session
    else:
        session.close()
    return result


# ------------------------------------------------------------------ inputs


def bench_image() -> np.ndarray:
    """The benchmark frame: the astronaut photo shipped with the package (BGR uint8)."""
    return read_image(package_data_dir() / BENCH_IMAGE)


def tiled_boxes(image_hw: tuple[int, int], people: int) -> np.ndarray:
    """Exactly ``people`` person-shaped boxes ``(N, 4)`` xyxy tiled in a grid over an ``(H, W)`` image."""
    if people < 1:
        raise ValueError(f"people: {people}, expected >= 1")
    height, width = image_hw
    cols = int(np.ceil(np.sqrt(people)))
    rows = int(np.ceil(people / cols))
    cell_w, cell_h = width / cols, height / rows
    boxes = []
    for index in range(people):
        row, col = divmod(index, cols)
        # a 3:4 (w:h) person box centred in its cell, 90 % of the cell's limiting side
        box_h = min(cell_h, cell_w * 4 / 3) * 0.9
        box_w = box_h * 3 / 4
        cx, cy = (col + 0.5) * cell_w, (row + 0.5) * cell_h
        boxes.append([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2])
    return np.asarray(boxes, dtype=np.float32)


def graph_feed(role: str, graph: GraphInfo, input_name: str, batch: int, image: np.ndarray) -> dict[str, np.ndarray]:
    """A real feed of ``batch`` items for one graph, made by the pipeline's pre-processing.

    ``graph`` is a ``stages.GraphInfo``. Detector: the letterboxed (YOLOX) or resized (RF-DETR) frame,
    repeated to ``batch``. Pose: ``batch`` crops of tiled boxes. Lifter: normalised camera coordinates of
    keypoints spread over those boxes (an MLP's speed does not depend on the values). Each made by the
    graph's stage object, as the pipeline makes it.
    """
    graph = graph.named(input_name)
    boxes = tiled_boxes(image.shape[:2], batch)
    if role == "detector":
        feed, _ = Detector(graph).preprocess(image)
        return {input_name: np.repeat(feed[input_name], batch, axis=0)}
    if role == "pose":
        return PoseEstimator(graph).preprocess(image, boxes)[0]
    rng = np.random.default_rng(0)
    keypoints = boxes[:, None, :2] + rng.random((batch, 37, 2)) * (boxes[:, None, 2:] - boxes[:, None, :2])
    k = estimate_intrinsics(image.shape[1], image.shape[0])
    return Lifter(graph).preprocess(keypoints, np.ones(keypoints.shape[:2]), k)[0]

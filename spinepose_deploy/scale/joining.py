"""The driver's side of split videos: which videos to split, their segment tasks, and joining the results.

A local video is probed on the driver (frame count and fps); a video in an object store by a worker, and
only when its size says it may be long enough. ``Joiner`` collects each video's segment results, checks the
boundaries (``segments.mismatch``) and stitches them on a driver thread (``segments.write_video``), so work
keeps being handed out meanwhile; a video whose boundaries do not join goes back as one segment.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import SpinePoseDeployError
from ..pipeline.infer import OutputPlan
from ..pipeline.io import VideoReader
from ..pipeline.pipeline import PipelineOptions
from .remote import Stores
from .segments import Segment, SegmentResult, mismatch, plan_segments, write_video
from .worker import FileOutcome, Unit

log = logging.getLogger(__name__)

# Objects smaller than this many bytes per second of --segment-seconds are not probed for splitting: below
# ~160 kbit/s no useful video is that long (a probe downloads the whole object to count its frames)
MIN_BYTES_PER_SECOND = 20_000

Probe = Callable[[list[Unit]], dict[str, tuple]]  # videos -> name -> (frame count or None, fps)


@dataclass
class SegmentTask:
    """One segment of a split video; ``tail``: how many of its last frames the next segment's warm-up checks."""

    unit: Unit
    segment: Segment
    tail: int = 0


def segment_tasks(unit: Unit, parts: list[Segment]) -> list[SegmentTask]:
    tails = [p.warmup for p in parts[1:]] + [0]
    return [SegmentTask(unit, part, tail) for part, tail in zip(parts, tails, strict=True)]


def split(units: list[Unit], options: PipelineOptions | None, seconds: float | None, probe: Probe) -> dict:
    """Input name -> its segments, for the videos longer than ``seconds``; ``options`` None (a custom pipeline
    factory, its detection interval unknown) or ``seconds`` None: nothing is split."""
    videos = [u for u in units if u.source.kind == "video"]
    if seconds is None or options is None or not videos:
        return {}
    every = options.detection_policy().every
    found = {}
    for name, (count, fps) in probe(videos).items():
        parts = plan_segments(count, fps, seconds, every)
        if len(parts) > 1:
            found[name] = parts
    return found


def local_probe(units: list[Unit]) -> dict[str, tuple]:
    """Frame count and fps of the local videos (objects in a store are probed by the workers)."""
    found = {}
    for unit in units:
        if unit.key is not None:
            continue
        # unreadable: the worker reports it, as for any input
        with contextlib.suppress(SpinePoseDeployError), VideoReader(unit.source) as reader:
            found[unit.source.name] = (reader.frame_count, reader.fps)
    return found


def may_be_long(unit: Unit, seconds: float | None) -> bool:
    """A video in the object store that may be longer than ``seconds`` (judged by its size)."""
    if seconds is None or unit.key is None or unit.source.kind != "video":
        return False
    return unit.size is None or unit.size >= seconds * MIN_BYTES_PER_SECOND


class Joiner:
    """Collects the segments of each split video; when all are in, checks them and stitches them
    (``write_video``) on a driver thread, so handing out work goes on meanwhile; or sends the video back as
    one segment when a boundary does not join exactly (``rejoined`` counts those)."""

    def __init__(self, segments: dict[str, list[Segment]], plan: OutputPlan, stores: Stores, spine_only: bool,
                 spine: bool) -> None:  # fmt: skip
        self.expected = {name: len(parts) for name, parts in segments.items()}
        self.plan, self.stores, self.spine_only, self.spine = plan, stores, spine_only, spine
        self.parts: dict[str, dict[int, SegmentResult]] = {}
        self.dead: set[str] = set()  # videos already failed (a worker died too often on one of their segments)
        self.rejoined = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stitch")
        self._stitching: list[Future] = []

    def add(self, task: SegmentTask, result: SegmentResult, tasks: deque) -> None:
        """One segment's result; when it completes its video, the stitch starts (``collect`` gives its outcome)."""
        name = task.unit.source.name
        if name in self.dead:
            return
        parts = self.parts.setdefault(name, {})
        parts[task.segment.index] = result
        if len(parts) < self.expected[name]:
            return
        ordered = [parts[i] for i in range(len(parts))]
        del self.parts[name]
        why = mismatch(ordered)
        if why is not None:
            log.warning("%s: %s; running it again as one segment", task.unit.source.path, why)
            self.rejoined += 1
            self.expected[name] = 1
            tasks.appendleft(SegmentTask(task.unit, Segment(0, 0, None)))
            return
        self._stitching.append(self._pool.submit(write_video, ordered, task.unit, self.plan, self.stores,
                                                 spine_only=self.spine_only, spine=self.spine))  # fmt: skip

    @property
    def busy(self) -> bool:
        return bool(self._stitching)

    def collect(self) -> list[FileOutcome]:
        """The outcomes of the stitches finished since the last call (a bug inside one raises here)."""
        finished = [f for f in self._stitching if f.done()]
        self._stitching = [f for f in self._stitching if not f.done()]
        return [f.result() for f in finished]

    def close(self) -> None:
        """Stop: a stitch under way finishes (its marker is written last), queued ones are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def failed(self, name: str) -> None:
        self.dead.add(name)
        self.parts.pop(name, None)

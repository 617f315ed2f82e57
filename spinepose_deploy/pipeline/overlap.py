"""Run one stage ahead of the caller on a worker thread: ``ahead(fn, items)`` yields ``fn(item)`` in order.

The worker pulls ``items`` itself (decoding a video frame is part of the stage) and keeps at most ``depth``
results waiting in a bounded queue, so memory stays bounded however long the stream is. ONNX Runtime and
OpenVINO release the GIL while they run a graph, so the detector of frame t+1 runs while the caller runs
the pose graph of frame t, and decoding and pre/post-processing fill the gaps. An exception in the worker
is raised in the caller at the item that failed; closing the iterator (``break``, Ctrl-C in the caller)
stops the worker and waits for it, so nothing touches ``items`` (an open video) after the ``with`` ends.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_DEPTH = 2  # results waiting: enough to hide a slow frame, small enough for 4K frames
_POLL_S = 0.05
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Ahead(Generic[R]):
    """Iterator over ``fn(item)`` computed on one worker thread, in input order; use as a context manager."""

    def __init__(self, fn: Callable[[T], R], items: Iterable[T], depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"depth: {depth}, expected >= 1")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(fn, items), name="spinepose-ahead", daemon=True)
        self._thread.start()

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, fn: Callable[[T], R], items: Iterable[T]) -> None:
        try:
            for item in items:
                if self._stop.is_set() or not self._put(fn(item)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            self._put(_Failure(exc))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[R]:
        return self

    def __next__(self) -> R:
        value = self._queue.get()
        if value is _END:
            self._queue.put(_END)  # further next() calls stop too
            raise StopIteration
        if isinstance(value, _Failure):
            self.close()
            raise value.exc
        return value

    def close(self) -> None:
        """Stop the worker and wait for it (it finishes the item it is on)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_S)  # unblock a worker waiting to put
        self._thread.join()

    def __enter__(self) -> Ahead[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ahead(fn: Callable[[T], R], items: Iterable[T], depth: int = DEFAULT_DEPTH) -> Ahead[R]:
    """``fn`` over ``items`` one stage ahead of the caller (see the module docstring)."""
    return Ahead(fn, items, depth)

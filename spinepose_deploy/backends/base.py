"""The contract every runtime implements: ``Backend.load(artifact) -> Session``.

A backend module implements only ``_load`` / ``availability`` / ``capabilities`` and a Session's
``_run``; this module owns the checks every backend shares (file exists, suffix, feeds match the
declared inputs) and batch handling (graphs with a static batch are run in chunks of that size,
padded, and the outputs concatenated; dynamic-batch graphs run the whole batch at once, or in chunks
of ``max_batch`` when the runtime bounds the batch: Core ML RangeDim, TensorRT optimisation profile,
padded up to ``min_batch`` when the profile's MIN is above the batch).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    BackendUnavailableError,
    InferenceError,
    InputFileError,
    InvalidOptionError,
    ModelLoadError,
    SpinePoseDeployError,
    first_line,
)

log = logging.getLogger(__name__)

Dim = int | str


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


@dataclass(frozen=True)
class TensorInfo:
    """One graph input/output. A ``str`` dim is symbolic (any size)."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size, or None when the first dim is symbolic (or there is none)."""
        if self.shape and isinstance(self.shape[0], int) and self.shape[0] > 0:
            return self.shape[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; ``reason`` says exactly what is missing when it cannot."""

    ok: bool
    reason: str = ""
    version: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Capability:
    """One (device, precision) cell of ``doctor``'s table."""

    backend: str
    device: str
    precision: str
    ok: bool
    reason: str = ""
    version: str | None = None


def dim_str(dim: object) -> Dim:
    """Normalise a runtime's dimension (None, -1, '?', Dimension objects) to int or symbolic str."""
    if isinstance(dim, (int, np.integer)) and int(dim) > 0:
        return int(dim)
    text = str(dim) if dim is not None else "?"
    return "?" if text in ("-1", "0", "None", "") else text


class Session(abc.ABC):
    """A loaded graph on one backend/device/precision. Feeds and results are ``dict[str, ndarray]``."""

    backend: str = ""
    precision: str = Precision.FP32.value
    device: str = "cpu"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    artifact: Path | None = None
    max_batch: int | None = None  # largest batch of a dynamic-batch graph (Core ML range, TensorRT profile)
    min_batch: int | None = None  # smallest one (TensorRT profile MIN): smaller batches are padded up to it
    # the only batch sizes the graph takes (Core ML EnumeratedShapes): others are padded up to the next one,
    # and batches above the largest run in chunks of it
    batch_sizes: tuple[int, ...] | None = None
    notes: list[str]

    def __init__(self) -> None:
        self.notes = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph. Feeds are checked against ``inputs``; static-batch graphs are chunked."""
        feeds = self._check_feeds(feeds)
        batch = self._feed_batch(feeds)
        static = self.inputs[0].static_batch if self.inputs else None
        try:
            if static is None and batch is not None and self.batch_sizes and batch not in self.batch_sizes:
                return self._run_ladder(feeds, batch, self.batch_sizes)
            if static is None and batch is not None and self.max_batch and batch > self.max_batch:
                return self._run_chunked(feeds, batch, self.max_batch)  # a bounded dynamic batch
            if static is None and batch is not None and self.min_batch and batch < self.min_batch:
                return self._run_chunked(feeds, batch, self.min_batch)  # one chunk, padded, trimmed back
            if static is None or batch is None or batch == static:
                return self._run(feeds)
            return self._run_chunked(feeds, batch, static)
        except SpinePoseDeployError:
            raise
        except Exception as exc:  # the runtime's own error, whatever its type: one line, the error as cause
            raise self._failure(exc) from exc

    def _failure(self, exc: BaseException) -> InferenceError:
        """The one-line error for a runtime's own exception during inference."""
        name = self.artifact.name if self.artifact else "graph"
        return InferenceError(f"{self.backend} {name}: inference failed: {first_line(exc)}")

    def run_many(self, feeds: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """``run`` over a stream of independent feeds, results in input order. Here one after another; a
        backend with several infer requests (OpenVINO's THROUGHPUT hint) keeps them in flight together."""
        for one in feeds:
            yield self.run(one)

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch whose size the graph accepts."""

    def close(self) -> None:
        """Release runtime resources. Safe to call twice."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend}/{self.device}/{self.precision} {self.artifact}>"

    # -- shared checks -----------------------------------------------------------------------------
    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [info.name for info in self.inputs]
        unknown = [name for name in feeds if name not in names]
        missing = [name for name in names if name not in feeds]
        if unknown or missing:
            raise InvalidOptionError(f"feeds for {self.backend} session: got {sorted(feeds)}, expected inputs {names}")
        checked = {}
        for info in self.inputs:
            array = np.asarray(feeds[info.name])
            if array.ndim != len(info.shape):
                raise InvalidOptionError(
                    f"input '{info.name}': rank {array.ndim} (shape {array.shape}), expected shape {list(info.shape)}"
                )
            for axis, (got, want) in enumerate(zip(array.shape, info.shape, strict=True)):
                if axis > 0 and isinstance(want, int) and got != want:
                    raise InvalidOptionError(
                        f"input '{info.name}': shape {array.shape}, expected {list(info.shape)} (axis {axis})"
                    )
            if array.dtype != np.dtype(info.dtype):
                array = array.astype(info.dtype)
            checked[info.name] = np.ascontiguousarray(array)
        return checked

    @staticmethod
    def _feed_batch(feeds: Mapping[str, np.ndarray]) -> int | None:
        sizes = {array.shape[0] for array in feeds.values() if array.ndim > 0}
        return sizes.pop() if len(sizes) == 1 else None

    def _run_ladder(self, feeds: dict[str, np.ndarray], batch: int, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Chunks of the largest size, the rest padded up to the smallest size that holds it."""
        top, parts = max(sizes), []
        for start in range(0, batch, top):
            count = min(top, batch - start)
            piece = {name: array[start : start + count] for name, array in feeds.items()}
            parts.append(self._run_chunked(piece, count, min(s for s in sizes if s >= count)))
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in parts[0]}

    def _run_chunked(self, feeds: dict[str, np.ndarray], batch: int, chunk: int) -> dict[str, np.ndarray]:
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, batch, chunk):
            piece = {}
            for name, array in feeds.items():
                part = array[start : start + chunk]
                if len(part) < chunk:  # pad the last chunk by repeating its last item
                    pad = np.repeat(part[-1:], chunk - len(part), axis=0)
                    part = np.concatenate([part, pad], axis=0)
                piece[name] = part
            result = self._run(piece)
            keep = min(chunk, batch - start)
            parts.append({name: value[:keep] for name, value in result.items()})
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in parts[0]}


class Backend(abc.ABC):
    """A runtime. Subclasses set ``name``, ``suffixes``, ``extra`` and implement the abstract methods."""

    name: str = ""
    suffixes: tuple[str, ...] = ()
    extra: str = ""  # pip extra that installs it
    library: str = ""  # import name of the runtime library
    # True when _load can validate an artifact where the backend cannot run (it then raises itself)
    validates_without_runtime: bool = False

    @abc.abstractmethod
    def availability(self) -> Availability:
        """Whether this backend can run on this host. Never raises."""

    @abc.abstractmethod
    def capabilities(self) -> list[Capability]:
        """Every (device, precision) this backend knows, with whether it runs here and why not."""

    @abc.abstractmethod
    def _load(self, path: Path, **options: Any) -> Session:
        """Load an artifact that exists and has one of ``suffixes``."""

    def load(self, artifact: str | Path, **options: Any) -> Session:
        """Load ``artifact`` into a Session. Errors are one line naming the file and what was expected."""
        path = Path(artifact)
        if not path.exists():
            raise InputFileError(f"{path}: no such file (expected a {self.name} artifact: {', '.join(self.suffixes)})")
        if self.suffixes and not any(path.name.lower().endswith(s) for s in self.suffixes):
            raise ModelLoadError(
                f"{path}: '{path.suffix or path.name}' is not a {self.name} artifact "
                f"(expected {', '.join(self.suffixes)})"
            )
        if not self.validates_without_runtime:
            self.require()
        try:
            session = self._load(path, **options)
        except (ModelLoadError, BackendUnavailableError, InvalidOptionError):
            raise
        except Exception as exc:  # the runtime's own error: keep it as the cause, show one line
            raise ModelLoadError(f"{path}: {self.name} could not load it: {first_line(exc)}") from exc
        session.artifact = path
        return session

    def require(self) -> None:
        """Raise BackendUnavailableError with the reason when the backend cannot run here."""
        status = self.availability()
        if not status.ok:
            raise BackendUnavailableError(f"backend '{self.name}' is not available: {status.reason}")

    def missing_library_reason(self) -> str:
        return (
            f"{self.library} is required for backend '{self.name}'. "
            f"Install: pip install 'spinepose-deploy[{self.extra}]'"
        )

"""The bundle manifest as frozen dataclasses: ``from_dict`` reads ``manifest.json``, ``to_dict`` gives it back.

One graph entry per role, its fidelity (with the gate and the accuracy vs ground truth), its calibration and
its INT8 report. The on-disk JSON keeps the keys format v1 always had, so every v1 bundle loads unchanged; the
format and its version are checked once, in ``Manifest.from_dict``. Figures that differ per role (a pose
graph's argmax agreement, a lifter's MPJPE, ...) stay a mapping (``Fidelity.metrics``): the renderers pick
what a role has. ``to_dict`` returns the dict it was read from, so unknown keys written by a newer tool
survive a round trip and the bytes on disk do not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BundleError
from ..zoo.specs import ROLES, ModelSpec

FORMAT = "spinepose-deploy-bundle"
FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)  # format versions this release loads


@dataclass(frozen=True)
class Accuracy:
    """A gate's accuracy vs ground truth: one metric for the FP32 reference and the candidate."""

    metric: str  # pck@0.05 | ap50 | mpjpe_mm
    fp32: float
    candidate: float
    decides: bool  # truth decided the gate (FP32 has skill there), else the FP32-relative gate did

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Accuracy:
        return cls(str(data["metric"]), float(data["fp32"]), float(data["candidate"]), bool(data.get("decides")))

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "fp32": self.fp32, "candidate": self.candidate, "decides": self.decides}


@dataclass(frozen=True)
class Gate:
    """The fidelity gate's verdict."""

    passed: bool
    failures: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        return cls(bool(data.get("passed")), tuple(data.get("failures", ())), dict(data.get("thresholds") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failures": list(self.failures), "thresholds": dict(self.thresholds)}


@dataclass(frozen=True)
class Fidelity:
    """One graph's fidelity vs its FP32 reference (``fidelity.measure`` plus gate and accuracy)."""

    metrics: Mapping[str, Any]  # the role's own figures, as written (argmax_agreement, box_recall, mpjpe_mm, ...)
    measured: bool = True
    reason: str = ""  # why not measured
    gate: Gate | None = None
    accuracy: Accuracy | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fidelity:
        gate, accuracy = data.get("gate"), data.get("accuracy")
        return cls(
            metrics=dict(data),
            measured=bool(data.get("measured", True)),
            reason=str(data.get("reason", "")),
            gate=Gate.from_dict(gate) if gate else None,
            accuracy=Accuracy.from_dict(accuracy) if accuracy else None,
        )

    @property
    def passed(self) -> bool:
        """The gate passed; a graph not measured here (no gate) counts as passed only when not measured."""
        return self.gate.passed if self.gate is not None else not self.measured

    def to_dict(self) -> dict[str, Any]:
        return dict(self.metrics)


@dataclass(frozen=True)
class Candidate:
    """One INT8 candidate's result in one gate round (``int8`` report, ``rounds[].candidates``)."""

    passed: bool
    failures: tuple[str, ...] = ()
    figures: Mapping[str, float] = field(default_factory=dict)  # int8.SUMMARY_KEYS the role has
    accuracy: Accuracy | None = None
    latency_ms: float | None = None  # measured only when several candidates pass
    not_measured: str | None = None

    @classmethod
    def from_fidelity(cls, fidelity: Fidelity, keys: tuple[str, ...]) -> Candidate:
        figures = {k: round(float(fidelity.metrics[k]), 4) for k in keys if k in fidelity.metrics}
        failures = fidelity.gate.failures if fidelity.gate else ()
        return cls(fidelity.passed, failures, figures, fidelity.accuracy,
                   not_measured=None if fidelity.measured else fidelity.reason)  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        known = {"passed", "failures", "accuracy", "latency_ms", "not_measured"}
        accuracy = data.get("accuracy")
        return cls(
            passed=bool(data.get("passed")),
            failures=tuple(data.get("failures", ())),
            figures={k: v for k, v in data.items() if k not in known},
            accuracy=Accuracy.from_dict(accuracy) if accuracy else None,
            latency_ms=data.get("latency_ms"),
            not_measured=data.get("not_measured"),
        )

    def with_latency(self, ms: float) -> Candidate:
        return Candidate(self.passed, self.failures, self.figures, self.accuracy, round(ms, 2), self.not_measured)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "failures": list(self.failures), **self.figures}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy.to_dict()
        if self.not_measured is not None:
            out["not_measured"] = self.not_measured
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out


@dataclass(frozen=True)
class Int8Round:
    """One round of the INT8 gate: how many nodes were kept float, each candidate, which one was chosen."""

    index: int
    excluded: int
    passed: bool
    failures: tuple[str, ...]
    chosen: str | None
    candidates: Mapping[str, Candidate]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Int8Round:
        candidates = {name: Candidate.from_dict(c) for name, c in (data.get("candidates") or {}).items()}
        return cls(int(data["round"]), int(data.get("excluded", 0)), bool(data.get("passed")),
                   tuple(data.get("failures", ())), data.get("chosen"), candidates)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.index,
            "excluded": self.excluded,
            "passed": self.passed,
            "failures": list(self.failures),
            "chosen": self.chosen,
            "candidates": {name: c.to_dict() for name, c in self.candidates.items()},
        }


@dataclass(frozen=True)
class Int8Report:
    """A graph's INT8 gate rounds (``fidelity.GateReport.to_dict``) and what went into the bundle."""

    rounds: tuple[Int8Round, ...]
    excluded: tuple[str, ...] = ()
    kept: str = ""
    sensitivity: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Int8Report:
        return cls(
            tuple(Int8Round.from_dict(r) for r in data.get("rounds", ())),
            tuple(data.get("excluded", ())),
            str(data.get("kept", "")),
            tuple(data.get("sensitivity", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": [r.to_dict() for r in self.rounds],
            "excluded": list(self.excluded),
            "kept": self.kept,
            "sensitivity": [dict(s) for s in self.sensitivity],
        }


@dataclass(frozen=True)
class Calibration:
    """Where an INT8 graph's calibration data came from (``calibration.Source.describe`` plus the method)."""

    method: str
    source: Mapping[str, Any]  # the source's own description (kind, path, samples, hold-out, ...)
    data_sha256: str | None = None  # per graph: the feeds' hash
    feeds: int | None = None
    scheme: Mapping[str, Any] | None = None  # the quantization scheme actually used (absent after a fallback)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(str(data.get("method", "")), dict(data), data.get("data_sha256"), data.get("feeds"),
                   data.get("scheme"))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dict(self.source)


@dataclass(frozen=True)
class Preprocess:
    """How a graph's input is made: size (H, W), normalisation, colour order and resize (``ModelSpec``'s)."""

    input_size: tuple[int, int]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    color: str
    resize: str

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Preprocess:
        """What export records: the spec's own preprocessing."""
        mean = tuple(spec.mean) if spec.mean is not None else None
        std = tuple(spec.std) if spec.std is not None else None
        return cls((int(spec.input_size[0]), int(spec.input_size[1])), mean, std, spec.color, spec.resize)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocess:
        size = data["input_size"]
        mean, std = data.get("mean"), data.get("std")
        return cls((int(size[0]), int(size[1])), tuple(mean) if mean else None, tuple(std) if std else None,
                   str(data.get("color", "")), str(data.get("resize", "")))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "color": self.color,
            "resize": self.resize,
        }


@dataclass(frozen=True)
class GraphIO:
    """A graph's I/O contract as recorded: name, shape (symbolic dims as text) and dtype per tensor."""

    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> GraphIO:
        def tensors(specs: Any) -> tuple[dict[str, Any], ...]:
            return tuple({"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in specs)

        return cls(tensors(spec.inputs), tensors(spec.outputs))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphIO:
        return cls(tuple(dict(t) for t in data.get("inputs", ())), tuple(dict(t) for t in data.get("outputs", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [dict(t) for t in self.inputs], "outputs": [dict(t) for t in self.outputs]}


@dataclass(frozen=True)
class GraphEntry:
    """One graph of a bundle: its source, artifact and file hashes, and what export measured."""

    model: str
    source_sha256: str
    standin: bool
    precision: str | None  # None in bundles older than per-graph precision: the bundle's precision
    artifact: str
    files: Mapping[str, str]  # relative name -> sha256
    fidelity: Fidelity | None
    calibration: Calibration | None
    int8: Int8Report | None
    notes: tuple[str, ...]
    extra: Mapping[str, Any]  # the backend writer's own facts (engine_key, host_nms, trtexec, ...)
    io: GraphIO | None = None
    preprocess: Preprocess | None = None  # None in a manifest without one: the spec's
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "graph") -> GraphEntry:
        missing = [key for key in ("model", "artifact", "files") if key not in data]
        if missing:
            raise BundleError(f"{where}: missing {', '.join(missing)}")
        fidelity, calibration, int8 = data.get("fidelity"), data.get("calibration"), data.get("int8")
        return cls(
            model=str(data["model"]),
            source_sha256=str(data.get("source_sha256", "")),
            standin=bool(data.get("standin")),
            precision=data.get("precision"),
            artifact=data["artifact"],
            files=dict(data["files"]),
            fidelity=Fidelity.from_dict(fidelity) if fidelity else None,
            calibration=Calibration.from_dict(calibration) if calibration else None,
            int8=Int8Report.from_dict(int8) if int8 else None,
            notes=tuple(data.get("notes", ())),
            extra=dict(data.get("extra") or {}),
            io=GraphIO.from_dict(data["io"]) if data.get("io") else None,
            preprocess=Preprocess.from_dict(data["preprocess"]) if data.get("preprocess") else None,
            raw=dict(data),
        )

    @classmethod
    def new(
        cls,
        *,
        model: str,
        source_sha256: str,
        standin: bool,
        precision: str,
        artifact: str,
        files: Mapping[str, str],
        io: GraphIO,
        preprocess: Preprocess,
        passes: Mapping[str, Any],
        fidelity: Fidelity | None,
        notes: Sequence[str],
        extra: Mapping[str, Any],
        calibration: Calibration | None = None,
        int8: Int8Report | None = None,
    ) -> GraphEntry:
        """The entry export writes, in format v1's key order (``passes``: each pass's check, kept as written)."""
        data: dict[str, Any] = {
            "model": model, "source_sha256": source_sha256, "standin": standin, "precision": precision,
            "artifact": artifact, "files": dict(files), "io": io.to_dict(), "preprocess": preprocess.to_dict(),
            "passes": dict(passes), "calibration": calibration.to_dict() if calibration else None,
            "fidelity": fidelity.to_dict() if fidelity else None, "notes": list(notes), "extra": dict(extra),
        }  # fmt: skip
        if int8 is not None:
            data["int8"] = int8.to_dict()
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class Manifest:
    """A bundle's ``manifest.json``."""

    format_version: int
    backend: str
    backend_version: str | None
    precision: str
    mode: str
    detector: str
    model_version: str
    standin: bool
    onnx_only: bool
    calibration: Calibration | None
    graphs: Mapping[str, GraphEntry]  # in ROLES order
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest.json") -> Manifest:
        """Check the format and its version (once, here) and read every entry; one line naming the problem."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if data.get("format") != FORMAT or version not in READABLE_VERSIONS:
            raise BundleError(
                f"{where}: format {data.get('format')!r} v{version}, expected {FORMAT} "
                f"v{'/v'.join(map(str, READABLE_VERSIONS))}"
            )
        for key in ("backend", "precision", "graphs"):
            if key not in data:
                raise BundleError(f"{where}: missing '{key}'")
        graphs = data["graphs"]
        if not isinstance(graphs, Mapping):
            raise BundleError(f"{where}: 'graphs' must be an object keyed by role")
        entries = {
            role: GraphEntry.from_dict(graphs[role], f"{where}: graphs.{role}") for role in ROLES if role in graphs
        }
        calibration = data.get("calibration")
        return cls(
            format_version=int(version),
            backend=str(data["backend"]),
            backend_version=data.get("backend_version"),
            precision=str(data["precision"]),
            mode=str(data.get("mode", "")),
            detector=str(data.get("detector", "")),
            model_version=str(data.get("model_version", "")),
            standin=bool(data.get("standin")),
            onnx_only=bool(data.get("onnx_only")),
            calibration=Calibration.from_dict(calibration) if calibration else None,
            graphs=entries,
            raw=dict(data),
        )

    @classmethod
    def new(
        cls,
        *,
        header: Mapping[str, Any],
        backend: str,
        backend_version: str | None,
        precision: str,
        mode: str,
        detector: str,
        model_version: str,
        batch: str,
        onnx_only: bool,
        host: Mapping[str, Any],
        calibration: Calibration | None,
        graphs: Mapping[str, GraphEntry],
        compute_capabilities: list[str] | str | None = None,
    ) -> Manifest:
        """The manifest export writes (``header``: tool version and creation time), in format v1's key order;
        ``compute_capabilities``: an ahead-of-time engine's GPU targets ("default": the builder's own set)."""
        targets = {} if compute_capabilities is None else {"compute_capabilities": compute_capabilities}
        data = {
            "format": FORMAT, "format_version": FORMAT_VERSION, **header, "backend": backend,
            "backend_version": backend_version, "precision": precision, "mode": mode, "detector": detector,
            "model_version": model_version, "batch": batch, "onnx_only": onnx_only, **targets,
            "standin": any(entry.standin for entry in graphs.values()), "host": dict(host),
            "calibration": calibration.to_dict() if calibration else None,
            "graphs": {role: entry.to_dict() for role, entry in graphs.items()},
        }  # fmt: skip
        return cls.from_dict(data)

    def graph_precision(self, role: str) -> str:
        """A graph's own precision: an INT8 bundle may keep a graph in FP16 (``--fallback fp16``)."""
        return self.graphs[role].precision or self.precision

    def to_dict(self) -> dict[str, Any]:
        return {**self.raw, "graphs": {role: entry.to_dict() for role, entry in self.graphs.items()}}

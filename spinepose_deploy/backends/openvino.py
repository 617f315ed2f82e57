"""OpenVINO backend (the native API, not the ONNX Runtime EP): IR (.xml + .bin) or ONNX files.

Precision is always explicit: a CPU with BF16 support would otherwise run an FP32 model in bf16, and
a GPU in f16. The precision that actually ran is read back from the compiled model and recorded.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidOptionError, ModelLoadError, SpinePoseDeployError, check_choice
from ..paths import cache_subdir
from .base import Availability, Backend, Capability, Session, TensorInfo, dim_str

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
HINTS = ("latency", "throughput")
_CAPABILITY = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8"}  # OPTIMIZATION_CAPABILITIES
_FROM_OV_TYPE = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}
_QUANTIZED_OPS = {"FakeQuantize", "FakeConvert"}  # what ONNX Q/DQ and NNCF graphs become in OpenVINO


def runtime_message(exc: BaseException) -> str:
    """The informative line of an OpenVINO error (its first lines are source locations)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception from ", "Check '", "FrontEnd API"))]
    return (useful or lines or [type(exc).__name__])[0][:300]


def precision_hint(device: str, precision: str, caps: set[str] | None) -> tuple[str, str | None]:
    """The OpenVINO inference precision for ``precision`` on a device with ``caps`` (None: unknown, AUTO),
    and a note when it is not what was asked. Raises for bf16 on a device without BF16."""
    if precision in ("fp32", "int8"):  # int8: the quantized parts run int8 whatever the hint
        return "f32", None
    listed = ", ".join(sorted(caps or ()))
    if precision == "bf16":
        if caps is not None and "BF16" not in caps:
            raise InvalidOptionError(
                f"precision bf16: openvino {device} has no BF16 support ({listed}); use fp32"
            )
        return "bf16", None
    if caps is not None and "FP16" not in caps:
        # Decision: run f32 with a note rather than refuse. An FP16 IR is OpenVINO's usual artifact and
        # the runtime itself computes it in f32 on such devices; refusing would strand fp16 bundles.
        return "f32", f"openvino {device}: no FP16 support ({listed}); fp16 computes in f32 here"
    return "f16", None


def _tensor_info(port: Any, index: int, kind: str) -> TensorInfo:
    try:
        name = port.get_any_name()
    except RuntimeError:  # an unnamed tensor
        name = f"{kind}{index}"
    shape = tuple(d.get_length() if d.is_static else dim_str(str(d)) for d in port.get_partial_shape())
    return TensorInfo(name, shape, np.dtype(port.get_element_type().to_dtype()).name)


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, compiled: Any, device: str, precision: str, split: Any = None) -> None:
        super().__init__()
        self._compiled = compiled
        # a THROUGHPUT twin of ``compiled`` (``split_batch``): a batch of 2+ runs as parts on its streams
        self._split = split
        self._split_queue: Any = None
        self.split_parts = int(split.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) if split is not None else 1
        self._request = compiled.create_infer_request()  # one request, reused: a session is not thread-safe
        self.device, self.precision = device, precision
        self.inputs = [_tensor_info(p, i, "input") for i, p in enumerate(compiled.inputs)]
        self.outputs = [_tensor_info(p, i, "output") for i, p in enumerate(compiled.outputs)]
        # what the hint asked for: 1 under LATENCY, one per stream under THROUGHPUT (run_many's queue size)
        self.requests = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._queue: Any = None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.split_parts > 1 and (batch := self._feed_batch(feeds)) is not None and batch >= 2:
            return self._run_split(feeds, min(self.split_parts, batch))
        results = self._request.infer(feeds, share_inputs=True, share_outputs=True)
        ports = self._compiled.outputs
        # OpenVINO reuses its output buffers on the next call: copy out
        return {info.name: results[port].copy() for info, port in zip(self.outputs, ports, strict=True)}

    def run_many(self, feeds: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Under THROUGHPUT: ``requests`` feeds in flight at once on an AsyncInferQueue, yielded in input order
        (a window at a time, so at most ``requests`` results are held). Under LATENCY: one after another."""
        if self.requests == 1:
            yield from super().run_many(feeds)
            return
        static = self.inputs[0].static_batch if self.inputs else None
        stream = iter(feeds)
        while window := list(itertools.islice(stream, self.requests)):
            checked = [self._check_feeds(one) for one in window]
            if static is not None and any(self._feed_batch(one) not in (None, static) for one in checked):
                yield from (self.run(one) for one in checked)  # chunking and padding live in run()
                continue
            yield from self._run_window(checked)

    def _run_window(self, window: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if self._queue is None:
            self._queue = _queue(self._compiled, self.requests)
        return self._in_flight(self._queue, window)

    def _in_flight(self, queue: Any, window: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """``window`` feeds in flight together on ``queue`` (an AsyncInferQueue), results in input order."""
        results: dict[int, dict[str, np.ndarray]] = {}
        names = [info.name for info in self.outputs]

        def done(request: Any, index: int) -> None:  # on OpenVINO's thread; copy out before the request is reused
            results[index] = {name: request.get_output_tensor(i).data.copy() for i, name in enumerate(names)}

        queue.set_callback(done)
        try:
            for index, one in enumerate(window):
                queue.start_async(one, userdata=index, share_inputs=True)  # window keeps the inputs alive
            queue.wait_all()
        except SpinePoseDeployError:
            raise
        except Exception as exc:  # the runtime's own error: one line, as run() gives it
            raise self._failure(exc) from exc
        return [results[index] for index in range(len(window))]

    def _run_split(self, feeds: dict[str, np.ndarray], parts: int) -> dict[str, np.ndarray]:
        """One batch as ``parts`` slices in flight together on the THROUGHPUT twin, rejoined in order. Opt-in:
        on a quiet 2-core host it measured no faster than one LATENCY run (``benchmarks/pose_split.py``)."""
        if self._split_queue is None:
            self._split_queue = _queue(self._split, self.split_parts)
        slices = {name: np.array_split(value, parts) for name, value in feeds.items()}
        window = [{name: np.ascontiguousarray(chunks[i]) for name, chunks in slices.items()} for i in range(parts)]
        results = self._in_flight(self._split_queue, window)
        return {info.name: np.concatenate([part[info.name] for part in results]) for info in self.outputs}

    def close(self) -> None:
        self._request = self._compiled = self._queue = self._split = self._split_queue = None


class OpenVinoBackend(Backend):
    name = "openvino"
    suffixes = (".xml", ".onnx")
    extra = "openvino"
    library = "openvino"

    @functools.cached_property
    def _core(self) -> Any:
        import openvino as ov  # runtime library, loaded on first use: listing backends never fails

        return ov.Core()

    def _caps(self, device: str) -> set[str] | None:
        if device.startswith("AUTO"):
            return None
        return set(self._core.get_property(device, "OPTIMIZATION_CAPABILITIES"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("openvino") is None:
            return Availability(False, self.missing_library_reason())
        try:
            import openvino as ov  # runtime library, loaded on first use: listing backends never fails

            devices = ", ".join(self._core.available_devices)
            return Availability(True, f"devices: {devices}", ov.get_version().split("-")[0])
        except Exception as exc:  # a broken install must not break doctor
            return Availability(False, f"openvino failed to start: {runtime_message(exc)}")

    def capabilities(self) -> list[Capability]:
        status = self.availability()
        if not status:
            return [Capability(self.name, "cpu", p, False, status.reason) for p in PRECISIONS]
        rows = []
        for device in self._core.available_devices:
            caps = self._caps(device) or set()
            for precision in PRECISIONS:
                ok = _CAPABILITY[precision] in caps
                reason = "" if ok else f"{device} has no {_CAPABILITY[precision]} support"
                reason += " (fp16 artifacts run in f32)" if precision == "fp16" and not ok else ""
                rows.append(Capability(self.name, device.lower(), precision, ok, reason, status.version))
        return rows

    def _check_device(self, device: str) -> str:
        wanted, available = device.upper(), list(self._core.available_devices)
        families = {name.split(".")[0] for name in available}  # 'GPU' addresses 'GPU.0' as well
        if wanted == "AUTO" or wanted.startswith("AUTO:") or wanted in available or wanted in families:
            return wanted
        listed = ", ".join([*available, "AUTO"])
        raise InvalidOptionError(f"openvino device '{device}': not available here (available: {listed})")

    def _load(
        self,
        path: Path,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        hint: str = "latency",
        threads: int | None = None,
        cache: bool = True,
        split_batch: bool = False,
        **_: Any,
    ) -> Session:
        import openvino as ov  # runtime library, loaded on first use: listing backends never fails

        check_choice("--precision", precision, PRECISIONS)
        check_choice("openvino hint", hint, HINTS)
        device = self._check_device(device)
        if threads and device != "CPU":
            raise InvalidOptionError(
                f"openvino threads={threads}: only device CPU takes a thread count, not {device}"
            )
        model = _read_model(path)
        quantized = any(op.get_type_name() in _QUANTIZED_OPS for op in model.get_ops())
        if precision == "int8" and not quantized:
            raise InvalidOptionError(f"precision int8: {path} has no quantized (Q/DQ, FakeQuantize) ops")
        requested, note = precision_hint(device, precision, self._caps(device))
        notes = [note] if note else []
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": getattr(ov.Type, requested),
            "PERFORMANCE_HINT": hint.upper(),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if cache:
            config["CACHE_DIR"] = str(cache_subdir("openvino"))
        try:
            compiled = self._core.compile_model(model, device, config)
        except RuntimeError as exc:
            raise ModelLoadError(
                f"{path}: openvino could not compile it for {device}: {runtime_message(exc)}"
            ) from exc
        executed, effective = _describe(compiled, device, requested)
        if quantized:
            notes.append(f"openvino: quantized ops run int8, the rest in {effective}")
            effective = "int8"
        split = None
        if split_batch and hint == "latency" and device == "CPU" and not threads and _batch_first(compiled):
            twin = self._core.compile_model(model, device, {**config, "PERFORMANCE_HINT": "THROUGHPUT"})
            if int(twin.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) > 1:
                split = twin
        session = OpenVinoSession(compiled, executed, effective, split)
        for text in notes:
            log.info(text)
            session.notes.append(text)
        return session


def _queue(compiled: Any, requests: int) -> Any:
    from openvino import AsyncInferQueue  # runtime library, loaded on first use: listing backends never fails

    return AsyncInferQueue(compiled, requests)


def _batch_first(compiled: Any) -> bool:
    """Whether every input and output has a dynamic leading (batch) axis, so a batch can be cut into parts."""
    ports = [*compiled.inputs, *compiled.outputs]
    return bool(ports) and all(p.get_partial_shape().rank.get_length() > 0 and p.get_partial_shape()[0].is_dynamic
                               for p in ports)  # fmt: skip


def _read_model(path: Path) -> Any:
    """Read with the frontend the suffix names: clearer errors than Core.read_model, which tries them all."""
    from openvino.frontend import FrontEndManager  # runtime library, loaded on first use: listing backends never fails

    is_ir = path.suffix.lower() == ".xml"
    if is_ir and not path.with_suffix(".bin").exists():
        raise ModelLoadError(
            f"{path}: weights file {path.with_suffix('.bin').name} is missing (IR is .xml + .bin)"
        )
    try:
        frontend = FrontEndManager().load_by_framework("ir" if is_ir else "onnx")
        return frontend.convert(frontend.load(str(path)))
    except Exception as exc:  # the frontends raise RuntimeError or their own GeneralFailure
        kind = "an OpenVINO IR" if is_ir else "ONNX"
        raise ModelLoadError(f"{path}: openvino could not read it as {kind}: {runtime_message(exc)}") from exc


def _describe(compiled: Any, device: str, requested: str) -> tuple[str, str]:
    """(devices that execute it, precision it computes in), as the compiled model reports them."""
    try:
        executed = ",".join(compiled.get_property("EXECUTION_DEVICES")).lower()
    except RuntimeError:
        executed = device.lower()
    try:
        actual = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    except RuntimeError:  # AUTO and some plugins do not report it
        actual = requested
    return executed, _FROM_OV_TYPE.get(actual, actual)

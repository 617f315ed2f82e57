"""TensorRT-RTX: NVIDIA's own parser and builder, run here (CPU-only ahead-of-time builds, no GPU, no mocks).

What our static rules accept, the real builder builds (every TensorRT-bound graph of small mode, FP16 and INT8;
medium/large in the slow tests), and what each error rule refuses, the builder refuses too. Running an engine
needs an RTX GPU: those tests skip with the reason (``benchmarks/check_tensorrt.py --backend tensorrt-rtx``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from _trt_rule_examples import examples
from onnx import numpy_helper

from spinepose_deploy import backends
from spinepose_deploy.backends import _cuda, _trt, tensorrt_build, tensorrt_rules
from spinepose_deploy.errors import BackendUnavailableError, BundleError, InvalidOptionError
from spinepose_deploy.export import calibration, passes, quantize, sanitize
from spinepose_deploy.export import tensorrt as trt_writer
from spinepose_deploy.export import tensorrt_rtx as rtx_writer
from spinepose_deploy.export.base import BatchRange
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.zoo.specs import get_spec, resolve_mode
from spinepose_deploy.zoo.standins import build_standin

pytest.importorskip(
    "tensorrt_rtx", reason="TensorRT-RTX is not installed: pip install 'spinepose-deploy[tensorrt-rtx]'"
)
# small mode's default detector, pose and lifter; RF-DETR-n (the other small detector: 47 s of builds) is slow
SMALL = ("yolox-tiny", "pose-s-v2", "lifter")
BATCH = BatchRange(1, 4, 16)


def _bound_graphs(names: tuple[str, ...], work: Path) -> dict[tuple[str, str], Path]:
    """(name, precision) -> the graph the exporter hands the TensorRT-RTX writer: simplified, detector cut before
    NMS, TopK capped, then FP16, or INT8 Q/DQ in TensorRT's scheme (2 random calibration feeds: the builder
    checks structure, not accuracy)."""
    rng = np.random.default_rng(0)
    graphs = {}
    for name in names:
        model = passes.simplify(onnx.load(str(build_standin(name))))
        model, _ = tensorrt_rules.cap_topk(sanitize.strip_nms(model))
        if get_spec(name).role.value != "detector" and not passes.has_dynamic_batch(model):
            model = passes.make_batch_dynamic(model)
        fp32, fp16 = work / f"{name}.fp32.onnx", work / f"{name}.fp16.onnx"
        onnx.save(model, str(fp32))
        onnx.save(passes.to_fp16(model), str(fp16))
        shape = [d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim]
        items = ({name: {model.graph.input[0].name: rng.uniform(0, 1, shape).astype(np.float32)}} for _ in range(2))
        feeds = calibration.spool(items, {name: work / f"{name}-calib"})[name]
        int8 = quantize.quantize_qdq(
            fp32,
            work / f"{name}.int8.onnx",
            feeds=feeds,
            method="minmax",
            scheme=quantize.SCHEMES["tensorrt"],
            exclude=quantize.float_tail(fp32),
        )
        graphs[(name, "fp16")], graphs[(name, "int8")] = fp16, int8
    return graphs


@pytest.fixture(scope="module")
def small_graphs(tmp_path_factory, standin_paths) -> dict[tuple[str, str], Path]:
    return _bound_graphs(SMALL, tmp_path_factory.mktemp("rtx-graphs"))


def _build_all(graphs: dict[tuple[str, str], Path], out: Path) -> dict[tuple[str, str], dict]:
    built = {}
    for (name, precision), path in graphs.items():
        folder = out / f"{name}-{precision}"
        folder.mkdir()
        # the static rules first (what export does), then NVIDIA's builder on the same graph
        written = rtx_writer.write(path, folder, spec=get_spec(name), precision=precision, batch=BATCH)
        assert written.extra["rules"]["passed"]
        assert (folder / written.primary).stat().st_size == written.extra["engine_bytes"] > 100_000
        built[(name, precision)] = written.extra
    return built


def test_every_small_mode_graph_the_rules_pass_is_built_by_tensorrt_rtx(small_graphs, tmp_path):
    built = _build_all(small_graphs, tmp_path)
    assert set(built) == {(n, p) for n in SMALL for p in ("fp16", "int8")}
    assert built[("yolox-tiny", "fp16")]["host_nms"] and "nms" in built[("yolox-tiny", "fp16")]
    assert all(extra["engine_key"]["compute_capabilities"] == "default" for extra in built.values())
    # the table for the closing note (pytest -s shows it)
    for (name, precision), extra in sorted(built.items()):
        print(f"{name:11s} {precision}: built in {extra['build_s']:.2f} s, {extra['engine_bytes'] / 1e6:.1f} MB")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["small", "medium", "large"])
def test_rfdetr_medium_and_large_graphs_are_built_by_tensorrt_rtx(tmp_path, mode):
    names = set()
    for detector in ("yolox", "rfdetr"):
        names |= {spec.name for spec in resolve_mode(mode, detector, "v2").graphs().values()}
    names -= set(SMALL)
    for (name, precision), extra in sorted(_build_all(_bound_graphs(tuple(sorted(names)), tmp_path), tmp_path).items()):
        print(f"{name:11s} {precision}: built in {extra['build_s']:.2f} s, {extra['engine_bytes'] / 1e6:.1f} MB")


@pytest.mark.parametrize("rule", sorted(examples()))
def test_each_error_rules_example_graph_really_fails_to_build(rule, tmp_path):
    model = examples()[rule]
    report = tensorrt_rules.check(model, rule, "tensorrt-rtx")
    assert [f.rule for f in report.errors] == [rule], report.first_error()
    path = tmp_path / f"{rule}.onnx"
    onnx.save(model, str(path))
    with pytest.raises(tensorrt_build.BuildError, match=r"(could not parse|engine build failed|dynamic non-batch)"):
        tensorrt_build.build_engine(path, (1, 1, 1), flavour=_trt.RTX)


def test_nms_is_a_note_for_tensorrt_and_an_error_for_tensorrt_rtx():
    model = examples()["no-kernel"]
    assert tensorrt_rules.check(model, "g", "tensorrt").ok
    assert [f.rule for f in tensorrt_rules.check(model, "g", "tensorrt").notes] == ["data-dependent"]
    assert "tensorrt-rtx has no kernel for it" in tensorrt_rules.check(model, "g", "tensorrt-rtx").first_error()


def test_scalar_quantized_constants_get_shape_1_bit_identical_and_then_build(small_graphs, tmp_path):
    """ORT's quantizer leaves 0-d INT8 constants before DequantizeLinear (pose head, lifter); the builder refuses
    them. The writers give them shape [1]: ONNX Runtime's outputs are bit-identical and the graph builds."""
    raw = small_graphs[("lifter", "int8")]
    report = tensorrt_rules.check(onnx.load(str(raw)), "lifter int8", "tensorrt")
    assert {f.rule for f in report.errors} == {"dq-scalar"}
    with pytest.raises(tensorrt_build.BuildError, match="Quantized constant .* is only allowed before DQ"):
        tensorrt_build.build_engine(raw, (1, 4, 16), flavour=_trt.RTX)
    # the regular TensorRT writer (--onnx-only here) hands its builder the fixed graph too
    written = trt_writer.write_onnx(raw, tmp_path, spec=get_spec("lifter"), precision="int8", batch=BATCH)
    fixed = onnx.load(str(tmp_path / written.primary))
    weights = {i.name: numpy_helper.to_array(i) for i in fixed.graph.initializer}
    dq_inputs = [
        weights[n.input[0]] for n in fixed.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights
    ]
    assert dq_inputs and all(w.ndim >= 1 for w in dq_inputs)
    assert any("given shape [1]" in note for note in written.notes)
    feed = {"input": np.random.default_rng(1).uniform(-1, 1, (5, 37, 2)).astype(np.float32)}
    before, after = passes.run_onnx(onnx.load(str(raw)), feed), passes.run_onnx(fixed, feed)
    assert all(np.array_equal(before[name], after[name]) for name in before)
    tensorrt_build.build_engine(tmp_path / written.primary, (1, 4, 16), flavour=_trt.RTX)


def test_build_errors_are_counted_per_build_not_in_a_capped_process_wide_list(tmp_path):
    path = tmp_path / "scalar.onnx"
    onnx.save(examples()["dq-scalar"], str(path))
    for _ in range(40):  # the old logger kept 32 errors and then said "no detail from TensorRT"
        with pytest.raises(tensorrt_build.BuildError) as exc:
            tensorrt_build.build_engine(path, (1, 1, 1), flavour=_trt.RTX)
    assert "Quantized constant (q)" in str(exc.value) and _trt.NO_DETAIL not in str(exc.value)


def test_building_makes_no_cuda_call(small_graphs, monkeypatch, tmp_path):
    def no_cuda():
        raise AssertionError("building called the CUDA runtime")

    monkeypatch.setattr(_cuda, "cudart", no_cuda)
    data = tensorrt_build.build_engine(small_graphs[("lifter", "fp16")], (1, 4, 16), flavour=_trt.RTX, targets=("8.6",))
    assert len(data) > 100_000


def test_compute_capability_targets_are_parsed_and_checked(small_graphs):
    assert tensorrt_build.target_names("sm86, 12.0,default") == ("8.6", "12.0")
    assert tensorrt_build.target_names(None) == ()
    with pytest.raises(InvalidOptionError, match=r"--compute-capability: 'ampere' is not a compute capability"):
        tensorrt_build.target_names("ampere")
    with pytest.raises(
        InvalidOptionError, match=r"--compute-capability: 9.0 is not a target of TensorRT-RTX .*known: .*8.6"
    ):
        tensorrt_build.build_engine(small_graphs[("lifter", "fp16")], (1, 4, 16), flavour=_trt.RTX, targets=("9.0",))
    with pytest.raises(InvalidOptionError, match="--compute-capability: only for --backend tensorrt-rtx"):
        ExportRequest(backend="tensorrt", out=Path("unused"), compute_capabilities=("8.6",)).validate()


@pytest.fixture(scope="module")
def lifter_bundle(tmp_path_factory, standin_paths) -> Path:
    out = tmp_path_factory.mktemp("rtx") / "bundle"
    request = ExportRequest(
        backend="tensorrt-rtx", precision="fp16", out=out, roles=("lifter",), compute_capabilities=("8.6", "8.9")
    )
    export_bundle(request)
    return out


def test_export_builds_the_engine_here_and_the_bundle_records_its_targets(lifter_bundle):
    manifest = json.loads((lifter_bundle / "manifest.json").read_text())
    assert manifest["backend"] == "tensorrt-rtx" and manifest["compute_capabilities"] == ["8.6", "8.9"]
    entry = manifest["graphs"]["lifter"]
    assert entry["artifact"] == "lifter.rtx.engine" and set(entry["files"]) == {"lifter.rtx.engine", "lifter.onnx"}
    assert entry["extra"]["engine_key"]["compute_capabilities"] == ["8.6", "8.9"]
    assert manifest["backend_version"] == entry["extra"]["engine_key"]["tensorrt_rtx"]
    assert tensorrt_build.onnx_profile(lifter_bundle / "lifter.onnx") == (1, 1, 16)
    # measured on the engine's own ONNX where no RTX GPU runs, and said so
    assert "tensorrt-rtx-bound ONNX" in entry["fidelity"]["measured_on"] and entry["fidelity"]["gate"]["passed"]
    assert backends.backend_for(lifter_bundle / "lifter.rtx.engine").name == "tensorrt-rtx"
    assert backends.backend_for(lifter_bundle / "other.engine").name == "tensorrt"


def test_rtx_bundle_without_an_rtx_gpu_says_what_is_missing(lifter_bundle):
    from spinepose_deploy.bundle.bundle import Bundle

    status = backends.get_backend("tensorrt-rtx").availability()
    if status.ok:
        pytest.skip("an RTX GPU runs here: benchmarks/check_tensorrt.py --backend tensorrt-rtx loads the engines")
    assert status.version and "needs" in status.reason
    with pytest.raises(BackendUnavailableError, match=r"backend 'tensorrt-rtx' is not available: needs "):
        backends.load(lifter_bundle / "lifter.rtx.engine")
    with pytest.raises(BundleError, match=r"engines built with tensorrt-rtx 1\.7.*this host has 9\.9"):
        Bundle.load(lifter_bundle).check_runtime("9.9")


def test_rtx_engine_runs_on_an_rtx_gpu_and_keeps_its_runtime_cache(lifter_bundle):
    status = backends.get_backend("tensorrt-rtx").availability()
    if not status.ok:
        pytest.skip(f"needs an RTX GPU to deserialize and JIT-compile: tensorrt-rtx {status.reason}")
    from spinepose_deploy.backends.tensorrt_rtx import runtime_cache_path

    engine = lifter_bundle / "lifter.rtx.engine"
    feed = {"input": np.random.default_rng(0).uniform(-1, 1, (3, 37, 2)).astype(np.float32)}
    with backends.load(engine, backend="tensorrt-rtx", precision="fp16") as session:
        got = session.run(feed)
    assert runtime_cache_path(engine, 0).is_file()  # the JIT-compiled kernels, for the next load
    expected = passes.run_onnx(onnx.load(str(lifter_bundle / "lifter.onnx")), feed)
    for name, value in expected.items():
        assert np.allclose(got[name], value, atol=5e-2 * max(1.0, float(np.abs(value).max())))


def test_tensorrt_int8_calibrates_with_percentile_unless_told_otherwise():
    """Measured on the trained stand-ins (docs/tensorrt_rtx.md): minmax and entropy failed the pose gate."""
    for backend in ("tensorrt", "tensorrt-rtx"):
        assert ExportRequest(backend=backend, out=Path("unused"), precision="int8").method == "percentile"
        assert ExportRequest(backend=backend, out=Path("unused"), calib_method="minmax").method == "minmax"
    assert ExportRequest(backend="openvino", out=Path("unused"), precision="int8").method == "minmax"


@pytest.mark.slow
def test_cli_export_int8_trained_for_tensorrt_rtx_builds_every_engine(tmp_path):
    from spinepose_deploy.cli import main

    out = tmp_path / "int8"
    args = ["export", "--backend", "tensorrt-rtx", "--precision", "int8", "--weights", "trained", "--calib", "synth"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for role, entry in manifest["graphs"].items():
        assert entry["precision"] == "int8", f"{role}: {entry['int8']['kept']}"
        assert (out / entry["artifact"]).stat().st_size == entry["extra"]["engine_bytes"]

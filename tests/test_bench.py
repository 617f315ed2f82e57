"""Bench: selection logic on fake timings, the selection cache, Ctrl-C, the JSON document, a tiny real run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from spinepose_deploy.backends.host import fingerprint, host_key
from spinepose_deploy.bench import report, runner
from spinepose_deploy.bench.runner import FAILED, FAILED_FIDELITY, RAN, BenchRequest, BenchRow
from spinepose_deploy.cli import main, tables
from spinepose_deploy.errors import InvalidOptionError, ModelLoadError
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.select import auto as select
from spinepose_deploy.select import measure
from spinepose_deploy.zoo.source import SourceGraph
from spinepose_deploy.zoo.specs import resolve_mode


def _row(graph: str, backend: str, precision: str, batch: int, p50: float, status: str = RAN) -> BenchRow:
    return BenchRow(graph, f"{graph}-model", backend, "cpu", precision, batch, status, p50_ms=p50)


# ------------------------------------------------------------------ selection logic (fake timings)


FAKE_ROWS = [
    # pose at the relevant batch (6): int8 fastest but failed its gate; OV fp16 best passing; ORT fp32 within 3 %
    _row("pose", "onnxruntime", "int8", 6, 20.0, FAILED_FIDELITY),
    _row("pose", "openvino", "fp16", 6, 40.0),
    _row("pose", "onnxruntime", "fp32", 6, 41.0),
    _row("pose", "openvino", "fp32", 6, 60.0),
    _row("pose", "tensorrt", "fp16", 6, 5.0, FAILED),  # failed to load: no timing counts
    # at batch 1 the order differs: the batch that matters is the number of people
    _row("pose", "openvino", "fp16", 1, 9.0),
    _row("pose", "onnxruntime", "fp32", 1, 7.0),
    # detector: decided at batch 1 only
    _row("detector", "openvino", "fp32", 1, 30.0),
    _row("detector", "onnxruntime", "fp32", 1, 50.0),
    # lifter: only batch 1 measured -> per-item latency scaled to 6 (estimated)
    _row("lifter", "onnxruntime", "fp32", 1, 0.2),
    _row("lifter", "openvino", "fp32", 1, 0.5),
]


def test_auto_select_picks_within_10_percent_of_the_best_passing_row():
    ranked = select.choose(FAKE_ROWS, people=6, shas={"detector": "d" * 64, "pose": "p" * 64, "lifter": "l" * 64})
    for role, choices in ranked.items():
        batch = select.target_batch(role, 6)
        passing = [
            r.p50_ms / r.batch * batch
            for r in FAKE_ROWS
            if r.graph == role and r.status == RAN and (r.batch == batch or role == "lifter")
        ]
        assert choices[0].latency_ms <= min(passing) * 1.10, (role, choices[0])
    pose = ranked["pose"]
    # the failed-gate int8 and the failed TensorRT row are never candidates
    assert {(c.backend, c.precision) for c in pose} == {
        ("openvino", "fp16"),
        ("onnxruntime", "fp32"),
        ("openvino", "fp32"),
    }
    # near-tie (41 vs 40 ms, < 5 %): the more faithful fp32 wins; the rest follow by latency
    assert [c.label for c in pose] == ["onnxruntime fp32", "openvino fp16", "openvino fp32"]
    assert ranked["detector"][0].pair == ("openvino", "fp32") and ranked["detector"][0].batch == 1
    lifter = ranked["lifter"][0]
    assert lifter.pair == ("onnxruntime", "fp32") and lifter.estimated and lifter.latency_ms == pytest.approx(1.2)


def test_auto_select_takes_the_clearly_faster_lower_precision():
    rows = [_row("pose", "onnxruntime", "fp32", 4, 100.0), _row("pose", "openvino", "int8", 4, 50.0)]
    assert select.choose(rows, people=4)["pose"][0].pair == ("openvino", "int8")


def test_a_fixed_precision_ranks_the_backends_measured_at_it_first():
    # strict FP32 through auto: the fastest measured FP32 backend, not the backend of the fastest overall row
    rows = [_row("pose", "onnxruntime", "int8", 6, 30.0), _row("pose", "openvino", "fp32", 6, 50.0),
            _row("pose", "onnxruntime", "fp32", 6, 60.0), _row("pose", "coreml", "int8", 6, 20.0)]  # fmt: skip
    fp32 = select.with_precision(select.choose(rows, people=6)["pose"], "fp32")
    assert [c.label for c in fp32] == ["openvino fp32", "onnxruntime fp32", "coreml fp32"]
    assert fp32[0].latency_ms == 50.0 and np.isnan(fp32[2].latency_ms)  # coreml fp32 was never measured


def test_no_passing_row_means_no_choice():
    rows = [_row("pose", "onnxruntime", "int8", 6, 10.0, FAILED_FIDELITY)]
    assert select.choose(rows, people=6) == {}


def test_auto_pipeline_is_compared_with_the_fastest_passing_pipeline():
    rows = [
        _row("pipeline", "openvino", "int8", 6, 50.0, FAILED_FIDELITY),  # faster, but a graph failed its gate
        _row("pipeline", "onnxruntime", "fp32", 6, 100.0),
        _row("pipeline", "openvino", "fp32", 6, 90.0),
        _row("pipeline", "auto", "auto", 6, 92.0),
    ]
    auto, best = report.auto_vs_best(rows)
    assert auto is rows[3] and best is rows[2]  # the failed INT8 pipeline is faster but not comparable
    versus = report._auto_vs_best_json(rows)
    assert versus == {"auto_p50_ms": 92.0, "best": versus["best"], "best_p50_ms": 90.0, "ratio": round(92 / 90, 4)}
    assert "openvino" in versus["best"] and "fp32" in versus["best"]
    assert report.auto_vs_best(rows[:3]) is None  # no per-graph mix measured: nothing to compare


def test_a_faster_measured_pipeline_overrides_the_per_graph_mix(cache):
    shas = {"detector": "a" * 64, "pose": "b" * 64, "lifter": "c" * 64}
    ranked = select.choose(FAKE_ROWS, people=6, shas=shas)
    assert ranked["detector"][0].pair == ("openvino", "fp32") and ranked["pose"][0].pair == ("onnxruntime", "fp32")
    close = [_row("pipeline", "auto", "auto", 6, 100.0), _row("pipeline", "openvino", "fp16", 6, 97.0)]
    assert select.prefer_end_to_end(ranked, close) == (ranked, "")  # within 5 %: the per-graph mix stays
    faster = [_row("pipeline", "auto", "auto", 6, 100.0), _row("pipeline", "openvino", "fp32", 6, 80.0)]
    reordered, note = select.prefer_end_to_end(ranked, faster)
    assert {role: c[0].pair for role, c in reordered.items()} == {r: ("openvino", "fp32") for r in ranked}
    assert "openvino fp32 pipeline (80.0 ms) beat the per-graph mix (100.0 ms)" in note
    assert len(reordered["pose"]) == len(ranked["pose"])  # the others stay as fallbacks
    select.store(reordered, fingerprint(), measured={"pose": {("onnxruntime", "fp32", "cpu")}})
    stored = select.load_stored(host_key(), "pose", shas["pose"])
    assert stored[0].pair == ("openvino", "fp32") and stored[0].end_to_end  # storing keeps the override
    # a config that failed a graph's gate (here: no passing TensorRT rows) is never selected for every graph
    gated = [_row("pipeline", "auto", "auto", 6, 100.0), _row("pipeline", "tensorrt", "fp16", 6, 10.0)]
    assert select.prefer_end_to_end(ranked, gated) == (ranked, "")


# ------------------------------------------------------------------ selection cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_sources(monkeypatch, shas: dict[str, str]) -> None:
    """resolve_graph -> fake sources with fixed sha256s (no stand-in build)."""
    by_name = {}
    selection = resolve_mode("small")
    for role, spec in selection.graphs().items():
        by_name[spec.name] = SourceGraph(spec, Path(f"/nonexistent/{spec.name}.onnx"), True, shas[role])
    monkeypatch.setattr(
        "spinepose_deploy.zoo.source.resolve_graph", lambda spec, weights="auto", **_: by_name[spec.name]
    )


def test_selection_is_stored_keyed_by_host_and_model_and_reloaded(cache, monkeypatch):
    shas = {"detector": "a" * 64, "pose": "b" * 64, "lifter": "c" * 64}
    host = fingerprint()
    ranked = select.choose(FAKE_ROWS, people=6, shas=shas)
    stored = select.store(ranked, host)
    assert set(stored) == {"detector", "pose", "lifter"}
    path = select.selection_path(host["key"], "pose", shas["pose"])
    assert path.is_file() and host["key"] in path.name and shas["pose"][:16] in path.name
    assert not list(path.parent.glob("*.partial"))  # atomic write leaves no temporary behind
    assert select.load_stored(host["key"], "pose", shas["pose"]) == ranked["pose"]
    assert select.load_stored(host["key"], "pose", "e" * 64) is None  # other weights: measure again
    assert select.load_stored("000000000000", "pose", shas["pose"]) is None  # other host: measure again

    _fake_sources(monkeypatch, shas)

    def no_probe(*args, **kwargs):
        raise AssertionError("a stored selection must not be probed again")

    monkeypatch.setattr(select, "probe", no_probe)
    assert select.auto_configuration(resolve_mode("small")) == {
        "detector": ("openvino", "fp32"),
        "pose": ("onnxruntime", "fp32"),
        "lifter": ("onnxruntime", "fp32"),
    }


def test_a_partial_bench_adds_to_the_stored_ranking(cache):
    shas = {"detector": "a" * 64, "pose": "b" * 64, "lifter": "c" * 64}
    host = fingerprint()
    select.store(select.choose(FAKE_ROWS, people=6, shas=shas), host)
    # a later run measured only INT8 (faster, passing) and OpenVINO fp16 (now failing its gate)
    later = [_row("pose", "openvino", "int8", 6, 30.0), _row("pose", "openvino", "fp16", 6, 39.0, FAILED_FIDELITY)]
    measured = {"pose": {("openvino", "int8", "cpu"), ("openvino", "fp16", "cpu")}}
    select.store(select.choose(later, people=6, shas=shas), host, measured=measured)
    labels = [c.label for c in select.load_stored(host["key"], "pose", shas["pose"])]
    assert labels == ["openvino int8", "onnxruntime fp32", "openvino fp32"]  # fp16 dropped, the rest kept


def test_auto_configuration_skips_an_unavailable_backend_with_a_warning(cache, monkeypatch, caplog):
    shas = {"detector": "a" * 64, "pose": "b" * 64, "lifter": "c" * 64}
    rows = [*FAKE_ROWS, _row("pose", "coreml", "fp16", 6, 1.0)]  # fastest, but Core ML cannot run on Linux
    select.store(select.choose(rows, people=6, shas=shas), fingerprint())
    _fake_sources(monkeypatch, shas)
    from spinepose_deploy.backends import get_backend

    if get_backend("coreml").availability().ok:
        pytest.skip("Core ML runs here (macOS): nothing to fall back from")
    with caplog.at_level(logging.WARNING, logger="spinepose_deploy.select.auto"):
        chosen = select.auto_configuration(resolve_mode("small"))
    assert chosen["pose"] == ("openvino", "fp16")  # the next by latency once coreml is out
    assert "coreml fp16 is not available" in caplog.text


def test_probe_measures_the_source_graph_on_each_backend_within_the_budget(cache, monkeypatch):
    from spinepose_deploy.backends import get_backend
    from spinepose_deploy.zoo.source import resolve_graph
    from spinepose_deploy.zoo.specs import get_spec

    lifter = resolve_graph(get_spec("lifter"), weights="standin")
    ranked = select.probe({"lifter": lifter}, budget_s=30.0)["lifter"]
    expected = {(b, "fp32") for b in select.PROBE_BACKENDS if get_backend(b).availability().ok}
    expected |= set(select.native_low_precisions())  # e.g. openvino bf16 where the CPU computes it
    assert {c.pair for c in ranked} == expected
    assert all(c.sha256 == lifter.sha256 and 0 < c.latency_ms < 1e4 for c in ranked)
    assert all(c.batch == select.PROBE_PEOPLE for c in ranked)
    spent = select.probe({"lifter": lifter}, budget_s=0.0)["lifter"]  # no time: ONNX Runtime fp32, unmeasured
    assert [(c.pair, c.latency_ms) for c in spent] == [(select.DEFAULT, float("inf"))]

    # auto_configuration: stored choices for detector/pose, the lifter probed once, then stored
    shas = {"detector": "a" * 64, "pose": "b" * 64, "lifter": lifter.sha256}
    select.store(select.choose(FAKE_ROWS, people=6, shas=shas), fingerprint())
    select.selection_path(host_key(), "lifter", lifter.sha256).unlink()
    _fake_sources(monkeypatch, {**shas, "lifter": "unused"})
    import spinepose_deploy.zoo.source as source

    fake = source.resolve_graph  # fake detector/pose sources, the real lifter stand-in
    monkeypatch.setattr(
        source,
        "resolve_graph",
        lambda spec, weights="auto", **kw: lifter if spec.name == "lifter" else fake(spec, weights),
    )
    first = select.auto_configuration(resolve_mode("small"), budget_s=30.0)
    # the lifter's pick is whichever probed candidate was fastest (OpenVINO bf16 where the CPU has it may win)
    assert first["pose"] == ("onnxruntime", "fp32") and first["lifter"] in {c.pair for c in ranked}
    document = json.loads(select.selection_path(host_key(), "lifter", lifter.sha256).read_text())
    assert document["source"] == "probe"
    monkeypatch.setattr(select, "probe", lambda *a, **k: pytest.fail("probed again despite a stored choice"))
    assert select.auto_configuration(resolve_mode("small")) == first


def test_corrupt_selection_file_is_measured_again(cache):
    path = select.selection_path(host_key(), "pose", "b" * 64)
    path.write_text("{not json")
    assert select.load_stored(host_key(), "pose", "b" * 64) is None


def test_load_with_fallback_warns_and_takes_the_next(caplog):
    def load(name: str) -> str:
        if name == "broken":
            raise ModelLoadError("broken.xml: openvino could not load it: bad IR")
        return f"session:{name}"

    with caplog.at_level(logging.WARNING, logger="spinepose_deploy.select.auto"):
        session, chosen = select.load_with_fallback(["broken", "fine"], load, role="pose")
    assert (session, chosen) == ("session:fine", "fine")
    assert "pose: broken failed to load (broken.xml: openvino could not load it: bad IR)" in caplog.text
    with pytest.raises(ModelLoadError, match="pose: no configuration could be loaded"):
        select.load_with_fallback(["broken"], load, role="pose")


# ------------------------------------------------------------------ measure


def test_tiled_boxes_give_exactly_n_person_boxes_inside_the_image():
    for people in (1, 2, 6, 7, 16):
        boxes = measure.tiled_boxes((512, 640), people)
        assert boxes.shape == (people, 4)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 640).all() and (boxes[:, 3] <= 512).all()
        widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        assert np.allclose(widths / heights, 0.75) and (widths > 20).all()


def test_time_calls_counts_runs_and_orders_percentiles():
    calls = []
    timing = measure.time_calls(lambda: calls.append(1), batch=4, warmup=2, runs=7)
    assert len(calls) == 1 + 1 + 7 and timing.runs == 7 and timing.batch == 4
    assert timing.p50_ms <= timing.p90_ms <= timing.p99_ms
    assert timing.items_per_s == pytest.approx(4000.0 / timing.p50_ms)


def test_bench_request_is_checked_up_front():
    with pytest.raises(InvalidOptionError, match="--backends: 'onnxrt' is not one of"):
        BenchRequest(backends=("onnxrt",)).validate()
    with pytest.raises(InvalidOptionError, match="--people: 0"):
        BenchRequest(people=0).validate()
    with pytest.raises(InvalidOptionError, match="--precisions: 'fp8'"):
        BenchRequest(precisions=("fp8",)).validate()
    assert BenchRequest(people=6).batch_list == (1, 6)
    assert BenchRequest(batches=(8, 1, 4)).batch_list == (1, 4, 8)


def test_default_plan_lists_uncached_int8_as_skipped_and_explicit_int8_exports(cache, monkeypatch):
    monkeypatch.setattr(runner, "_cached_path", lambda request, config, roles: cache / "absent")
    items = runner.plan(BenchRequest(backends=("onnxruntime", "openvino")))
    skipped = {i.config.label: i.skip for i in items if i.skip}
    assert "--precisions int8" in skipped["onnxruntime int8"]
    assert {i.config.label for i in items if not i.skip} >= {"onnxruntime fp32", "onnxruntime fp16"}
    explicit = runner.plan(BenchRequest(backends=("onnxruntime",), precisions=("int8",)))
    assert [(i.config.label, i.skip) for i in explicit] == [("onnxruntime int8", "")]
    # INT8 is exported one bundle per graph: a graph failing its gate leaves the others usable
    assert list(explicit[0].groups) == [("detector",), ("pose",), ("lifter",)]
    assert list(items[0].groups) == [runner.ROLES]

    # a default run takes the INT8 graphs already cached and lists the others as skipped
    def cached_pose_only(request, config, roles):
        return cache / ("present" if roles == ("pose",) else "absent")

    (cache / "present").mkdir(parents=True)
    monkeypatch.setattr(runner, "_cached_path", cached_pose_only)
    items = runner.plan(BenchRequest(backends=("onnxruntime",)))
    int8 = [i for i in items if i.config.precision == "int8"]
    assert [(list(i.groups), bool(i.skip)) for i in int8] == [([("pose",)], False), ([], True)]
    assert int8[1].skip.startswith("detector, lifter: no cached bundle")
    coreml = runner.plan(BenchRequest(backends=("coreml",)))
    from spinepose_deploy.backends import get_backend

    if not get_backend("coreml").availability().ok:
        assert coreml[0].skip.startswith("backend not available: Core ML prediction needs macOS")


# ------------------------------------------------------------------ a tiny real bench (lifter-only bundle)


@pytest.fixture(scope="module")
def lifter_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "lifter-ort-fp32"
    export_bundle(ExportRequest(backend="onnxruntime", out=out, roles=("lifter",), weights="standin"))
    return out


def test_tiny_real_bench_writes_json_and_chart(lifter_bundle, cache, tmp_path, capsys):
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", str(lifter_bundle), "--batch", "1,4", "--duration", "0.02", "--json", str(out),
                 "--chart", str(chart)])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "lifter" in printed and "ran" in printed and "STAND-IN" in printed
    # a pipe is 80 columns: the compact table, unfolded, with the numbers that pick the winner
    table = [line for line in printed.splitlines() if line.lstrip().startswith("lifter ")]
    header = next(line for line in printed.splitlines() if line.split()[:2] == ["graph", "config"])
    assert len(table) == 2 and max(map(len, [header, *table])) <= 80, printed
    assert header.split() == ["graph", "config", "b", "status", "p50", "ms", "p99", "ms", "items/s", "vs", "FP32"]
    assert all(len(line.split()) >= 7 and "ok p95" not in line for line in table)
    assert "/None" not in captured.err  # the progress display has no total while it plans: no '0/None'
    document = json.loads(out.read_text())
    assert document["schema"] == report.SCHEMA
    assert {"cpu", "flags", "cores_logical", "os", "python", "libraries", "key"} <= set(document["host"])
    assert document["host"]["key"] == host_key()
    assert document["standin"] is True
    assert document["settings"]["batches"] == [1, 4]
    rows = document["rows"]
    assert [r["batch"] for r in rows] == [1, 4]
    for row in rows:
        assert tuple(row) == report.ROW_FIELDS
        assert row["graph"] == "lifter" and row["status"] == RAN and row["backend"] == "onnxruntime"
        assert row["runs"] >= measure.MIN_RUNS and 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["items_per_s"] == pytest.approx(row["batch"] * 1000 / row["p50_ms"], rel=1e-3)
        assert row["fidelity"]["gate"]["passed"] and row["load_s"] > 0
    assert document["selection"]["lifter"]["backend"] == "onnxruntime"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = select.load_stored(host_key(), "lifter", json.loads((lifter_bundle / "manifest.json").read_text())
                                ["graphs"]["lifter"]["source_sha256"])  # fmt: skip
    assert stored and stored[0].pair == ("onnxruntime", "fp32")


def test_ctrl_c_prints_finished_rows_and_writes_no_json(lifter_bundle, cache, tmp_path, monkeypatch, capsys):
    real = measure.run_window
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(measure, "run_window", interrupted)
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    # batch 1 is timed, then Ctrl-C arrives while batch 4 is timed
    argv = ["bench", str(lifter_bundle), "--batch", "1,4", "--duration", "0.02"]
    code = main([*argv, "--json", str(out), "--chart", str(chart)])
    assert code == 130
    captured = capsys.readouterr()
    assert "(interrupted)" in captured.out and "ran" in captured.out
    assert "1 rows finished; no JSON or chart written" in captured.err
    assert not out.exists() and not chart.exists()
    assert not list(tmp_path.glob(".bench.json*"))  # no temporary left either


def test_failed_rows_keep_their_reason(lifter_bundle, cache, monkeypatch):
    def broken(*args, **kwargs):
        raise ModelLoadError("lifter.onnx: onnxruntime could not load it: truncated")

    monkeypatch.setattr(measure, "open_session", broken)
    rows = []
    result = runner.run_bench(BenchRequest(bundles=(lifter_bundle,), batches=(1, 2)), on_row=rows.append)
    assert [r.status for r in result.rows] == [FAILED, FAILED] and rows == result.rows
    assert result.rows[0].reason == "lifter.onnx: onnxruntime could not load it: truncated"
    assert result.selection == {}
    table = tables.bench_table(result.rows)
    assert table.row_count == 2


def test_two_bundles_of_the_same_config_are_refused(lifter_bundle):
    with pytest.raises(InvalidOptionError, match="are both onnxruntime fp32; bench them one at a time"):
        BenchRequest(bundles=(lifter_bundle, lifter_bundle)).validate()


@pytest.mark.slow
def test_small_mode_bench_has_pipeline_and_auto_rows(standin_paths, tmp_path):
    """Exports the small ORT fp32 bundle (cached by key) and benches it end to end (~1 min)."""
    request = BenchRequest(
        backends=("onnxruntime",), precisions=("fp32",), people=3, duration_s=0.02, weights="standin"
    )
    result = runner.run_bench(request)
    pipeline = [r for r in result.rows if r.graph == runner.PIPELINE]
    assert [r.backend for r in pipeline] == ["onnxruntime", "auto"]
    assert all(r.status == RAN and r.batch == 3 and r.items_per_s > 0 for r in pipeline)
    assert set(result.selection) == {"detector", "pose", "lifter"}
    path = report.write_chart(result.rows, tmp_path / "chart.png", title="test")
    assert path.stat().st_size > 10_000


def test_plan_runs_bf16_where_the_cpu_has_it_and_says_why_not_elsewhere(monkeypatch):
    from spinepose_deploy import backends
    from spinepose_deploy.backends.base import Capability

    real = backends.capabilities()
    items = runner.plan(BenchRequest(backends=("openvino",), precisions=("bf16",)))
    has_bf16 = any(c.ok and c.backend == "openvino" and c.precision == "bf16" for c in real)
    assert [(i.config.label, bool(i.skip)) for i in items] == [("openvino bf16", not has_bf16)]

    no_bf16 = [Capability("openvino", "cpu", p, p != "bf16", "" if p != "bf16" else "CPU has no BF16 support")
               for p in ("fp32", "fp16", "bf16", "int8")]  # fmt: skip
    monkeypatch.setattr(backends, "capabilities", lambda: no_bf16)
    monkeypatch.setattr(runner, "capabilities", lambda: no_bf16, raising=False)  # where runner imports it by name
    items = runner.plan(BenchRequest(backends=("openvino",)))
    assert {i.config.label: i.skip for i in items}["openvino bf16"] == "CPU has no BF16 support"

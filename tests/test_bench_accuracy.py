"""bench --accuracy: trained graphs scored against synthetic ground truth through their Sessions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spinepose_deploy import backends
from spinepose_deploy.bench import accuracy as acc
from spinepose_deploy.bench import report, runner
from spinepose_deploy.bench.runner import RAN, BenchRequest
from spinepose_deploy.cli import main, tables
from spinepose_deploy.errors import InvalidOptionError
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.zoo.source import resolve_graph
from spinepose_deploy.zoo.specs import get_spec
from spinepose_deploy.zoo.standins.trained import trained_graph

SCENES = 3


@pytest.fixture(scope="module")
def truth() -> acc.GroundTruth:
    return acc.GroundTruth.heldout(SCENES)


def _trained(name: str) -> Path:
    path = trained_graph(name)
    if path is None:
        pytest.skip(f"the package has no trained {name}")
    return path


@pytest.mark.parametrize("name", ["pose-s-v2", "lifter"])
def test_trained_graphs_score_sanely_on_a_few_scenes(name, truth):
    spec = get_spec(name)
    session = backends.load(_trained(name), backend="onnxruntime", precision="fp32")
    try:
        # batch range 1..4 forces the chunked, padded path (the scenes hold more people than 4)
        result = acc.measure(spec.role.value, session, GraphInfo.from_spec(spec, standin=True), truth, (1, 4))
    finally:
        session.close()
    assert result["scenes"] == SCENES and result["people"] == len(truth.persons) > 4
    if name == "lifter":
        assert result["metric"] == "mpjpe_mm" and 0 < result["value"] < 250 < result["mean_pose_mm"] + 50
        assert result["value"] < result["mean_pose_mm"]
    else:
        assert result["metric"] == "pck@0.05" and result["value"] > 0.5


def test_batched_splits_pads_and_joins():
    seen = []

    def run(feeds):
        x = feeds["x"]
        seen.append(len(x))
        return {"y": x * 2}

    x = np.arange(7, dtype=np.float32)[:, None]
    out = acc.batched(run, 4, 4)({"x": x})
    assert seen == [4, 4] and np.array_equal(out["y"], x * 2)  # 4 + 3 padded to 4, trimmed back to 7


def test_weights_kind_tells_trained_from_random():
    spec = get_spec("lifter")
    _trained("lifter")
    trained = resolve_graph(spec, weights="trained")
    random = resolve_graph(spec, weights="standin")
    assert acc.weights_kind("lifter", trained.standin, trained.sha256) == acc.TRAINED
    assert acc.weights_kind("lifter", random.standin, random.sha256) == acc.RANDOM
    assert acc.weights_kind("lifter", False, "0" * 64) == acc.REAL
    assert acc.weakest(acc.REAL, acc.RANDOM, acc.TRAINED) == acc.RANDOM


def test_negative_accuracy_is_refused():
    with pytest.raises(InvalidOptionError, match="--accuracy: -1, expected a number of scenes >= 0"):
        BenchRequest(accuracy=-1).validate()


def _lifter_bundle(tmp_path_factory, weights: str) -> Path:
    out = tmp_path_factory.mktemp("bench-acc") / f"lifter-{weights}"
    export_bundle(ExportRequest(backend="onnxruntime", out=out, roles=("lifter",), weights=weights))
    return out


def test_cli_accuracy_puts_mpjpe_in_the_table_and_json_rows(tmp_path_factory, tmp_path, capsys):
    _trained("lifter")
    bundle = _lifter_bundle(tmp_path_factory, "trained")
    out = tmp_path / "bench.json"
    argv = ["bench", str(bundle), "--batch", "1,2", "--duration", "0.02", "--accuracy", str(SCENES)]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"first {SCENES} held-out synthetic scenes: lifter trained stand-ins" in printed
    assert "vs truth" in printed and "MPJPE" in printed  # the compact heading: pytest output is 80 columns
    document = json.loads(out.read_text())
    assert document["settings"]["accuracy_scenes"] == SCENES
    assert document["accuracy"]["weights"] == {"lifter": "trained"} and not document["accuracy"]["note"]
    rows = document["rows"]
    assert [r["batch"] for r in rows] == [1, 2]  # measured once per config, carried by every batch row
    for row in rows:
        assert tuple(row) == report.ROW_FIELDS and row["status"] == RAN
        accuracy = row["accuracy"]
        assert accuracy["metric"] == "mpjpe_mm" and accuracy["weights"] == "trained" and accuracy["scenes"] == SCENES
        assert 0 < accuracy["value"] < 250
    assert rows[0]["accuracy"] == rows[1]["accuracy"]


def test_random_standins_are_not_scored_and_say_why(tmp_path_factory):
    bundle = _lifter_bundle(tmp_path_factory, "standin")
    request = BenchRequest(bundles=(bundle,), batches=(1,), duration_s=0.02, accuracy=SCENES)
    assert runner.weights_kinds(request) == {"lifter": acc.RANDOM}
    result = runner.run_bench(request)
    assert [r.accuracy for r in result.rows] == [None]
    assert result.accuracy["weights"] == {"lifter": acc.RANDOM}
    assert result.accuracy["note"].startswith("accuracy not measured for lifter: random stand-in weights")
    assert "accuracy vs truth" not in [c.header for c in tables.bench_table(result.rows).columns]

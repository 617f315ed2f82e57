"""The typed bundle manifest: what export wrote reads back typed; a bad format is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from spinepose_deploy.bundle import render
from spinepose_deploy.bundle.bundle import MANIFEST, Bundle
from spinepose_deploy.bundle.manifest import Candidate, Fidelity, Int8Report, Manifest, Preprocess
from spinepose_deploy.cli import main
from spinepose_deploy.cli.tables import int8_table
from spinepose_deploy.errors import BundleError
from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.export.int8 import SUMMARY_KEYS
from spinepose_deploy.stages import GraphInfo
from spinepose_deploy.zoo.fetch import sha256_file
from spinepose_deploy.zoo.specs import get_spec

# A pose graph's INT8 fidelity as ``exporter._fidelity`` writes it (format v1)
POSE_FIDELITY = {
    "argmax_agreement": 0.98765,
    "kpt_px_median": 0.5,
    "kpt_px_p95": 2.34567,
    "max_abs": {"simcc_x": 0.25},
    "accuracy": {"metric": "pck@0.05", "fp32": 0.915, "candidate": 0.912, "decides": True, "frames": 8},
    "frames": 8,
    "measured_on": "onnxruntime cpu int8",
    "gate": {"passed": False, "failures": ["keypoint p95 23.74 px > 6.0"], "thresholds": {"pose_p95_px": 6.0}},
}


@pytest.fixture(scope="module")
def lifter_bundle(tmp_path_factory, standin_paths) -> Bundle:
    """A real bundle written by the exporter (format v1, the lifter only: seconds)."""
    out = tmp_path_factory.mktemp("manifest") / "ort"
    return export_bundle(ExportRequest(backend="onnxruntime", out=out, weights="standin", roles=("lifter",)))


def test_the_typed_manifest_export_wrote_reads_back_what_the_bundle_holds(lifter_bundle):
    typed = Manifest.from_dict(json.loads((lifter_bundle.path / MANIFEST).read_text()))
    entry = typed.graphs["lifter"]
    spec = get_spec("lifter")
    assert typed.format_version == 1 and typed.backend == "onnxruntime" and list(typed.graphs) == ["lifter"]
    assert entry.standin and entry.fidelity is not None and entry.fidelity.gate is not None
    assert entry.fidelity.gate.passed and entry.fidelity.metrics["mpjpe_mm"] >= 0
    # the recorded hash is the artifact's (hashed here, independently of the exporter)
    assert entry.files[entry.artifact] == sha256_file(lifter_bundle.path / entry.artifact)
    # I/O and preprocessing are typed, and feed the graph as its spec says
    assert entry.preprocess == Preprocess.from_spec(spec) and entry.io is not None
    assert [t["name"] for t in entry.io.inputs] == [t.name for t in spec.inputs]
    assert GraphInfo.from_manifest(entry) == GraphInfo.from_spec(spec, standin=True)
    assert render.fidelity_detail(entry.fidelity).startswith("MPJPE ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 7}, r"format 'spinepose-deploy-bundle' v7, expected spinepose-deploy-bundle v1"),
        ({"format": "other"}, r"format 'other' v1"),
        ({"graphs": []}, r"'graphs' must be an object"),
    ],
)
def test_bad_manifest_is_one_line_naming_the_file(lifter_bundle, tmp_path, capsys, change, message):
    bundle = tmp_path / "bundle"
    shutil.copytree(lifter_bundle.path, bundle)
    manifest = {**json.loads((bundle / MANIFEST).read_text()), **change}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)
    assert main(["bench", str(bundle), "--json", str(tmp_path / "bench.json")]) == BundleError.exit_code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.splitlines()[-1].startswith(f"error: {bundle / MANIFEST}: ")


def test_graph_entry_without_artifact_is_refused(lifter_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(lifter_bundle.path, bundle)
    manifest = json.loads((bundle / MANIFEST).read_text())
    del manifest["graphs"]["lifter"]["artifact"]
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"graphs\.lifter: missing artifact"):
        Bundle.load(bundle)


def test_int8_candidate_summary_keeps_the_v1_keys():
    candidate = Candidate.from_fidelity(Fidelity.from_dict(POSE_FIDELITY), SUMMARY_KEYS).with_latency(3.14159)
    assert candidate.to_dict() == {
        "passed": False,
        "failures": ["keypoint p95 23.74 px > 6.0"],
        "argmax_agreement": 0.9877,
        "kpt_px_median": 0.5,
        "kpt_px_p95": 2.3457,
        "accuracy": {"metric": "pck@0.05", "fp32": 0.915, "candidate": 0.912, "decides": True},
        "latency_ms": 3.14,
    }
    assert Candidate.from_dict(candidate.to_dict()) == candidate
    unmeasured = Candidate.from_fidelity(Fidelity.from_dict({"measured": False, "reason": "no GPU"}), SUMMARY_KEYS)
    assert unmeasured.passed and unmeasured.to_dict() == {"passed": True, "failures": [], "not_measured": "no GPU"}


def test_int8_table_renders_the_typed_report():
    candidate = Candidate.from_fidelity(Fidelity.from_dict(POSE_FIDELITY), SUMMARY_KEYS).with_latency(3.14)
    raw = {
        "rounds": [{"round": 1, "excluded": 4, "passed": False, "failures": ["x"], "chosen": "qdq",
                    "candidates": {"qdq": candidate.to_dict()}}],  # fmt: skip
        "excluded": [],
        "kept": "fp16 (fallback: INT8 failed the gate)",
        "sensitivity": [{"label": "Conv_3", "drop": 0.1}],
    }
    report = Int8Report.from_dict(raw)
    assert report.to_dict() == raw and report.rounds[0].candidates["qdq"].latency_ms == 3.14
    console = Console(width=200, record=True)
    console.print(int8_table({"pose": report}, console))
    text = console.export_text()
    assert "PCK@0.05 0.912 (FP32 0.915), truth decides the gate), 3.1 ms" in text
    assert "4 nodes" in text and "fp16 (fallback" in text


def test_old_bundle_without_per_graph_precision_uses_the_bundle_precision(lifter_bundle, tmp_path: Path):
    bundle = tmp_path / "bundle"
    shutil.copytree(lifter_bundle.path, bundle)
    manifest = json.loads((bundle / MANIFEST).read_text())
    del manifest["graphs"]["lifter"]["precision"]
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    loaded = Bundle.load(bundle)
    assert loaded.precision_of("lifter") == "fp32" and "precision" not in loaded.graph("lifter")


def test_auto_refuses_a_probed_bundle_whose_gate_failed(lifter_bundle, tmp_path):
    from spinepose_deploy.pipeline.load import require_gate

    require_gate(lifter_bundle, "lifter")  # passed: no error
    bundle = tmp_path / "bundle"
    shutil.copytree(lifter_bundle.path, bundle)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["graphs"]["lifter"]["fidelity"]["gate"] = {"passed": False, "failures": ["lifter MPJPE 90 mm > 10"]}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"lifter onnxruntime fp32 fails the fidelity gate \(lifter MPJPE 90 mm"):
        require_gate(Bundle.load(bundle, verify=False), "lifter")

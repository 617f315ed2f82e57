"""A bundle loads only files inside itself, and only files whose hashes the manifest records."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import onnx
import pytest

from spinepose_deploy.bundle.bundle import MANIFEST, Bundle, hash_files
from spinepose_deploy.cli import main
from spinepose_deploy.errors import BundleError
from spinepose_deploy.export.exporter import ExportRequest, export_bundle


@pytest.fixture(scope="module")
def made(tmp_path_factory, standin_paths) -> dict[str, Path]:
    """Small real bundles (the lifter graph only: seconds to export)."""
    pytest.importorskip("openvino")
    root = tmp_path_factory.mktemp("confine")
    return {
        backend: export_bundle(
            ExportRequest(backend=backend, out=root / backend, weights="standin", roles=("lifter",))
        ).path
        for backend in ("openvino", "onnxruntime")
    }


def _copy(src: Path, dest: Path) -> tuple[Path, dict]:
    shutil.copytree(src, dest)
    return dest, json.loads((dest / MANIFEST).read_text())


def _save(bundle: Path, manifest: dict) -> None:
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def _refused(bundle: Path, capsys, pattern: str) -> None:
    """Refused by the API and by the CLI (one error line naming the entry, no traceback)."""
    with pytest.raises(BundleError, match=pattern):
        Bundle.load(bundle)
    assert main(["bench", str(bundle), "--json", str(bundle.parent / "bench.json")]) == BundleError.exit_code
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]) and "Traceback" not in err, err
    assert re.search(pattern, errors[0]), errors[0]


def test_artifact_with_dotdot_is_refused(made, tmp_path, capsys):
    """(a) artifact '../outside/lifter.xml' with files keyed by that path and the right hashes."""
    bundle, manifest = _copy(made["openvino"], tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("lifter.xml", "lifter.bin"):
        shutil.move(bundle / name, outside / name)
    graph = manifest["graphs"]["lifter"]
    graph["artifact"] = "../outside/lifter.xml"
    graph["files"] = hash_files(bundle, ["../outside/lifter.xml", "../outside/lifter.bin"])
    _save(bundle, manifest)
    _refused(bundle, capsys, r"graphs\.lifter\.files '\.\./outside/lifter\.xml' contains '\.\.'")


def test_absolute_artifact_is_refused_even_when_listed_files_verify(made, tmp_path, capsys):
    """(b) absolute artifact outside while files still lists the bundle's own (verifying) lifter.xml."""
    bundle, manifest = _copy(made["openvino"], tmp_path / "b")
    elsewhere = tmp_path / "srv" / "elsewhere"
    shutil.copytree(bundle, elsewhere)
    manifest["graphs"]["lifter"]["artifact"] = str(elsewhere / "lifter.xml")
    _save(bundle, manifest)
    _refused(bundle, capsys, r"graphs\.lifter\.artifact '.*/srv/elsewhere/lifter\.xml' is an absolute path")
    # the loader is never handed the outside path, even without hash verification
    with pytest.raises(BundleError, match="is an absolute path"):
        Bundle.load(bundle, verify=False).artifact("lifter")


@pytest.mark.parametrize("name", ["C:\\srv\\lifter.xml", "\\\\server\\share\\lifter.xml", "sub\\..\\..\\x.xml"])
def test_windows_style_escapes_are_refused_on_any_host(made, tmp_path, name):
    bundle, manifest = _copy(made["openvino"], tmp_path / "b")
    manifest["graphs"]["lifter"]["artifact"] = name
    _save(bundle, manifest)
    with pytest.raises(BundleError, match=r"graphs\.lifter\.artifact .*(absolute path|contains '\.\.')"):
        Bundle.load(bundle)


def test_weights_symlinked_out_of_the_bundle_are_refused(made, tmp_path, capsys):
    """(c) lifter.bin replaced by a symlink to an identical file outside the bundle (hash still matches)."""
    bundle, _ = _copy(made["openvino"], tmp_path / "b")
    outside = tmp_path / "outside.bin"
    shutil.move(bundle / "lifter.bin", outside)
    (bundle / "lifter.bin").symlink_to(outside)
    _refused(bundle, capsys, r"graphs\.lifter\.files 'lifter\.bin' resolves to .*outside\.bin \(a symlink out")


def test_openvino_weights_not_listed_are_refused(made, tmp_path, capsys):
    """OpenVINO reads lifter.bin next to lifter.xml: a manifest that does not hash it is refused."""
    bundle, manifest = _copy(made["openvino"], tmp_path / "b")
    del manifest["graphs"]["lifter"]["files"]["lifter.bin"]
    _save(bundle, manifest)
    _refused(bundle, capsys, r"graphs\.lifter\.files does not list 'lifter\.bin', which loading lifter\.xml reads")


def _externalise(bundle: Path, location: str) -> None:
    model = onnx.load(str(bundle / "lifter.onnx"))
    onnx.save(model, str(bundle / "lifter.onnx"), save_as_external_data=True, location="weights.data",
              size_threshold=1024)  # shape constants stay inline
    if location != "weights.data":  # point the graph at another location (the file is moved there)
        model = onnx.load(str(bundle / "lifter.onnx"), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(model, str(bundle / "lifter.onnx"))
        target = (bundle / location).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(bundle / "weights.data", target)


def test_onnx_external_data_must_be_listed_and_is_then_verified(made, tmp_path, capsys):
    bundle, manifest = _copy(made["onnxruntime"], tmp_path / "b")
    _externalise(bundle, "weights.data")
    graph = manifest["graphs"]["lifter"]
    graph["files"] = hash_files(bundle, ["lifter.onnx"])
    _save(bundle, manifest)
    _refused(bundle, capsys, r"does not list 'weights\.data', which loading lifter\.onnx reads")
    graph["files"] = hash_files(bundle, ["lifter.onnx", "weights.data"])
    _save(bundle, manifest)
    Bundle.load(bundle)  # listed and hashed: accepted
    data = bytearray((bundle / "weights.data").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "weights.data").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights\.data: sha256 .* differs from the manifest"):
        Bundle.load(bundle)


def test_onnx_external_data_outside_the_bundle_is_refused(made, tmp_path, capsys):
    bundle, manifest = _copy(made["onnxruntime"], tmp_path / "b")
    _externalise(bundle, "../outside/weights.data")
    manifest["graphs"]["lifter"]["files"] = hash_files(bundle, ["lifter.onnx"])
    _save(bundle, manifest)
    _refused(bundle, capsys, r"graphs\.lifter\.artifact \(reads\) '\.\./outside/weights\.data' contains '\.\.'")


def test_onnxruntime_itself_refuses_external_data_outside_the_model_folder(made, tmp_path):
    """Defence in depth: even unverified, ONNX Runtime will not read external data outside the model folder."""
    from spinepose_deploy import backends
    from spinepose_deploy.errors import ModelLoadError

    bundle, _ = _copy(made["onnxruntime"], tmp_path / "b")
    _externalise(bundle, "../outside/weights.data")
    with pytest.raises(ModelLoadError, match=r"lifter\.onnx: onnxruntime could not load it: .*(outside|escape)"):
        backends.load(bundle / "lifter.onnx", backend="onnxruntime")


def test_mlpackage_contents_are_each_verified(tmp_path, standin_paths, capsys):
    pytest.importorskip("coremltools")
    bundle = export_bundle(
        ExportRequest(backend="coreml", precision="fp16", out=tmp_path / "c", weights="standin", roles=("lifter",))
    ).path
    package = bundle / "lifter.mlpackage"
    weights = next(p for p in package.rglob("*") if p.is_file() and "weight" in p.name)
    # an extra file inside the package that Core ML would read but the manifest does not hash
    extra = weights.with_name("extra.bin")
    extra.write_bytes(b"\0" * 16)
    relative = extra.relative_to(bundle).as_posix()
    _refused(bundle, capsys, f"does not list '{relative}', which loading lifter.mlpackage reads")
    extra.unlink()
    # the weights swapped for a symlink out of the bundle
    outside = tmp_path / "weight.bin"
    shutil.move(weights, outside)
    weights.symlink_to(outside)
    _refused(bundle, capsys, r"resolves to .*weight\.bin \(a symlink out of the bundle\)")

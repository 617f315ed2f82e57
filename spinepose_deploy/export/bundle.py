"""Bundle: a directory with ``manifest.json`` and one artifact per graph, written atomically, verified on load.

Manifest (format_version 1)::

    {format, format_version, tool_version, created, backend, backend_version, precision, mode, detector,
     model_version, batch, standin, host,
     graphs: {detector|pose|lifter: {model, source_sha256, standin, artifact, files: {name: sha256},
              io: {inputs, outputs}, preprocess, calibration, fidelity, notes, extra}}}

Loading checks every file's sha256 (a changed byte is refused, naming the file) and that the installed
runtime can read what was written: TensorRT engines need the same TensorRT version and GPU compute
capability; OpenVINO and ONNX Runtime refuse artifacts written by a newer release than the installed one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends._trt import device_index, gpu_key
from ..backends.formats import FORMATS
from ..errors import BundleError
from ..zoo.fetch import sha256_file
from ..zoo.specs import ROLES

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "spinepose-deploy-bundle"
FORMAT_VERSION = 1


def hash_files(root: Path, files: list[str]) -> dict[str, str]:
    """sha256 of each file (files inside an .mlpackage are listed individually)."""
    return {name: sha256_file(root / name) for name in files}


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Bundle:
        """Read ``manifest.json`` and (by default) verify every artifact's sha256."""
        root = Path(path)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(f"{root}: not a bundle (no {MANIFEST}); make one with 'spinepose-deploy export'")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{manifest_path}: unreadable manifest ({exc})") from exc
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"{manifest_path}: format {manifest.get('format')!r} v{manifest.get('format_version')}, "
                f"expected {FORMAT} v{FORMAT_VERSION}"
            )
        bundle = cls(root, manifest)
        if verify:
            bundle.verify()
        return bundle

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def standin(self) -> bool:
        return bool(self.manifest.get("standin"))

    @property
    def roles(self) -> list[str]:
        return [role for role in ROLES if role in self.manifest["graphs"]]

    def graph(self, role: str) -> dict[str, Any]:
        try:
            return self.manifest["graphs"][role]
        except KeyError:
            raise BundleError(f"{self.path}: bundle has no '{role}' graph (has {', '.join(self.roles)})") from None

    def precision_of(self, role: str) -> str:
        """A graph's own precision: an INT8 bundle may keep a graph in FP16 (``--fallback fp16``)."""
        return self.graph(role).get("precision", self.precision)

    def artifact(self, role: str) -> Path:
        return self.path / self.graph(role)["artifact"]

    def verify(self) -> None:
        """Refuse missing or changed files, naming the first one found."""
        for role in self.roles:
            for name, expected in self.graph(role)["files"].items():
                file = self.path / name
                if not file.is_file():
                    raise BundleError(f"{file}: missing from bundle (listed in {MANIFEST})")
                actual = sha256_file(file)
                if actual != expected:
                    raise BundleError(
                        f"{file}: sha256 {actual[:16]}... differs from the manifest's {expected[:16]}... "
                        "(file changed after export); re-export the bundle"
                    )

    def check_runtime(self, installed_version: str | None, device: str | int | None = None) -> None:
        """Refuse a bundle the installed runtime cannot read (see module docstring)."""
        made_with = self.manifest.get("backend_version")
        fmt = FORMATS.get(self.backend)
        if fmt is not None and fmt.engine_bound_to_gpu:
            here = gpu_key(device_index(device))
            for role in self.roles:
                extra = self.graph(role)["extra"]
                if extra.get("onnx_only"):  # built on this GPU on first use, cached per GPU/TensorRT version
                    continue
                built = extra.get("engine_key", {})
                if built != here:
                    raise BundleError(
                        f"{self.artifact(role)}: engine built for {built.get('gpu')} "
                        f"(sm {built.get('compute_capability')}) "
                        f"with TensorRT {built.get('tensorrt')}; this host has {here['gpu']} (sm "
                        f"{here['compute_capability']}) with TensorRT {here['tensorrt']}. Rebuild it here: "
                        "spinepose-deploy export --backend tensorrt ... (or export --onnx-only once and let "
                        "each GPU build its own engines)"
                    )
            return
        newer = made_with and installed_version and _version_tuple(made_with) > _version_tuple(installed_version)
        if fmt is not None and fmt.refuses_newer_artifacts and newer:
            raise BundleError(
                f"{self.path}: exported with {self.backend} {made_with}, newer than the installed "
                f"{installed_version}; upgrade {self.backend} or re-export with this version"
            )

"""Bundle: a directory with ``manifest.json`` and one artifact per graph, written atomically, verified on load.

Manifest (format_version 1)::

    {format, format_version, tool_version, created, backend, backend_version, precision, mode, detector,
     model_version, batch, standin, host,
     graphs: {detector|pose|lifter: {model, source_sha256, standin, artifact, files: {name: sha256},
              io: {inputs, outputs}, preprocess, calibration, fidelity, notes, extra}}}

Loading confines every ``artifact`` and ``files`` entry to the bundle directory (relative, no ``..``, no drive,
symlinks resolved and refused when they leave it), checks that every file the backend will read is listed
(``backends.files``: IR ``.bin``, ONNX external data, ``.mlpackage`` contents), checks every listed file's
sha256 (a changed byte is refused, naming the file) and that the installed
runtime can read what was written: TensorRT engines need the same TensorRT version and GPU compute
capability; OpenVINO and ONNX Runtime refuse artifacts written by a newer release than the installed one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..backends._trt import device_index, gpu_key
from ..backends.files import files_read
from ..backends.formats import FORMATS
from ..errors import BundleError
from ..zoo.fetch import sha256_file
from .manifest import GraphEntry, Manifest

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


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
    info: Manifest  # typed; ``manifest`` is the same as written on disk (``--json``)

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
        bundle = cls(root, Manifest.from_dict(manifest, str(manifest_path)))
        if verify:
            bundle.verify()
        return bundle

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as written on disk (plain JSON types)."""
        return self.info.to_dict()

    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def precision(self) -> str:
        return self.info.precision

    @property
    def standin(self) -> bool:
        return self.info.standin

    @property
    def roles(self) -> list[str]:
        return list(self.info.graphs)

    def entry(self, role: str) -> GraphEntry:
        """One graph's typed manifest entry."""
        try:
            return self.info.graphs[role]
        except KeyError:
            raise BundleError(f"{self.path}: bundle has no '{role}' graph (has {', '.join(self.roles)})") from None

    def graph(self, role: str) -> dict[str, Any]:
        """One graph's manifest entry as written on disk (see ``entry`` for the typed one)."""
        return self.entry(role).to_dict()

    def precision_of(self, role: str) -> str:
        """A graph's own precision: an INT8 bundle may keep a graph in FP16 (``--fallback fp16``)."""
        self.entry(role)
        return self.info.graph_precision(role)

    def artifact(self, role: str) -> Path:
        """The artifact's path, refused when the manifest points outside the bundle."""
        return self._inside(f"graphs.{role}.artifact", self.entry(role).artifact)

    def _inside(self, entry: str, name: object) -> Path:
        """``self.path / name`` when it stays inside the bundle once resolved, else one line naming the entry."""
        text = str(name)
        pure = PureWindowsPath(text)  # also catches 'C:\\...' and '\\\\server\\share' on POSIX hosts
        why = ""
        if not isinstance(name, str) or not text:
            why = "is not a relative file name"
        elif PurePosixPath(text).is_absolute() or pure.drive or pure.root:
            why = "is an absolute path"
        elif ".." in PurePosixPath(text).parts or ".." in pure.parts:
            why = "contains '..'"
        path = self.path / text
        if not why:
            root = self.path.resolve()
            resolved = path.resolve()
            if resolved != root and root not in resolved.parents:
                why = f"resolves to {resolved} (a symlink out of the bundle)"
        if why:
            raise BundleError(
                f"{self.path / MANIFEST}: {entry} {text!r} {why}; bundle files must stay inside the bundle "
                "directory (refusing to load it)"
            )
        return path

    def verify(self) -> None:
        """Refuse escaping, unlisted, missing or changed files, naming the first one found."""
        for role in self.roles:
            listed = self.entry(role).files
            for name in listed:
                self._inside(f"graphs.{role}.files", name)
            artifact = self.artifact(role)
            if artifact.exists():
                self._check_listed(role, artifact, listed)
            for name, expected in listed.items():
                file = self.path / name
                if not file.is_file():
                    raise BundleError(f"{file}: missing from bundle (listed in {MANIFEST})")
                actual = sha256_file(file)
                if actual != expected:
                    raise BundleError(
                        f"{file}: sha256 {actual[:16]}... differs from the manifest's {expected[:16]}... "
                        "(file changed after export); re-export the bundle"
                    )

    def _check_listed(self, role: str, artifact: Path, listed: Mapping[str, str]) -> None:
        """Every file the backend will read must be one whose hash the manifest records."""
        try:
            reads = files_read(artifact)
        except Exception as exc:  # an unparsable artifact: the backend's own load names it
            log.debug("%s: could not list the files it reads (%s)", artifact, exc)
            return
        names = {self._inside(f"graphs.{role}.files", name).resolve() for name in listed}
        for file in reads:
            try:
                relative = file.relative_to(self.path).as_posix()
            except ValueError:  # an absolute external-data location: refused by _inside below
                relative = str(file)
            resolved = self._inside(f"graphs.{role}.artifact (reads)", relative).resolve()
            if resolved not in names:
                raise BundleError(
                    f"{self.path / MANIFEST}: graphs.{role}.files does not list {relative!r}, which loading "
                    f"{artifact.name} reads (its bytes would be unverified); re-export the bundle"
                )

    def check_runtime(self, installed_version: str | None, device: str | int | None = None) -> None:
        """Refuse a bundle the installed runtime cannot read (see module docstring)."""
        made_with = self.info.backend_version
        fmt = FORMATS.get(self.backend)
        if fmt is not None and fmt.engine_bound_to_gpu:
            here = gpu_key(device_index(device))
            for role in self.roles:
                extra = self.entry(role).extra
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
        if fmt is not None and fmt.engine_bound_to_version and made_with and made_with != installed_version:
            raise BundleError(
                f"{self.path}: engines built with {self.backend} {made_with}; this host has {installed_version}, "
                f"which cannot deserialize them. Re-export (any machine): spinepose-deploy export --backend "
                f"{self.backend} ..., or install {self.backend} {made_with}"
            )
        newer = made_with and installed_version and _version_tuple(made_with) > _version_tuple(installed_version)
        if fmt is not None and fmt.refuses_newer_artifacts and newer:
            raise BundleError(
                f"{self.path}: exported with {self.backend} {made_with}, newer than the installed "
                f"{installed_version}; upgrade {self.backend} or re-export with this version"
            )

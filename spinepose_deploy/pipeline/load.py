"""Bundles exported into the user cache on first use, keyed by what they are made of.

``Pipeline.from_zoo`` and ``spinepose-deploy bench`` share these entries: a configuration the bench measured
is loaded by ``backend="auto"``, not exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock

from .._version import __version__
from ..backends import get_backend
from ..bundle.bundle import Bundle
from ..errors import SpinePoseDeployError
from ..paths import cache_subdir
from ..zoo import source as zoo_source
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, ROLES, resolve_mode

log = logging.getLogger(__name__)
PER_ROLE_PRECISIONS = ("int8",)  # one bundle per graph: a graph failing its gate leaves the others usable


def bundle_roles(precision: str, role: str) -> tuple[str, ...]:
    """The graphs exported together with ``role`` at ``precision``: all of the mode's, or (INT8) it alone."""
    return (role,) if precision in PER_ROLE_PRECISIONS else ROLES


@dataclass(frozen=True)
class BundleRecipe:
    """A mode's graphs (``roles`` of them) exported for one backend and precision."""

    backend: str
    precision: str = "fp32"
    weights: str = "auto"
    roles: tuple[str, ...] = ROLES
    mode: str = DEFAULT_MODE
    detector: str = DEFAULT_DETECTOR
    model_version: str = DEFAULT_VERSION

    def key(self) -> str:
        """Cache directory name: the settings, the sources by sha256, tool and runtime versions."""
        specs = resolve_mode(self.mode, self.detector, self.model_version).graphs()
        sources = {role: zoo_source.resolve_graph(specs[role], weights=self.weights).sha256 for role in self.roles}
        blob = json.dumps(
            {
                "mode": self.mode, "detector": self.detector, "version": self.model_version,
                "backend": self.backend, "precision": self.precision, "weights": self.weights,
                "roles": list(self.roles), "sources": sources, "tool": __version__,
                "runtime": get_backend(self.backend).availability().version,
            },
            sort_keys=True,
        )  # fmt: skip
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return f"{self.mode}-{self.detector}-{self.model_version}-{self.backend}-{self.precision}-{digest}"

    def path(self) -> Path:
        """Where this bundle lives in the cache (whether or not it was exported yet)."""
        return cache_subdir("bundles") / self.key()

    def cached(self) -> Path:
        """The bundle in the cache, exported on first use (one process at a time)."""
        # the exporter pulls in onnx and the export passes (seconds to import): only a first use pays for them
        from ..export.exporter import ExportRequest, export_bundle

        request = ExportRequest(
            backend=self.backend, out=Path("pending"), precision=self.precision, mode=self.mode,
            detector=self.detector, model_version=self.model_version, weights=self.weights, force=True,
            roles=tuple(self.roles),
        )  # fmt: skip
        request.validate()  # a bad backend/precision is refused before any graph is resolved or built
        path = self.path()
        with FileLock(str(path) + ".lock"):
            if path.is_dir():
                try:
                    Bundle.load(path)
                    return path
                except SpinePoseDeployError as exc:  # damaged cache entry: export it again
                    log.warning("cached bundle %s unusable (%s); exporting again", path, exc)
            log.info("exporting %s %s %s bundle to %s", self.mode, self.backend, self.precision, path)
            export_bundle(replace(request, out=path))
        return path

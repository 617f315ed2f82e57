"""A bundle sent through the Ray object store, for nodes that cannot see the driver's bundle path."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from .._atomic import atomic_dir
from ..errors import InvalidOptionError, ModelLoadError
from ..paths import cache_subdir
from ..pipeline.pipeline import Pipeline
from ..pipeline.spec import PipelineSpec


@dataclass(frozen=True)
class ShippedBundle:
    """A bundle sent through the object store: each node unpacks it once into its cache, then loads it."""

    spec: PipelineSpec
    blob: Any  # ObjectRef of the zipped bundle
    digest: str

    def __call__(self) -> Pipeline:
        import ray  # optional extra, loaded only when this feature runs


        local = cache_subdir("ray-bundles") / self.digest
        with FileLock(str(local) + ".lock"):
            if not (local / "manifest.json").is_file():
                data = ray.get(self.blob)
                with atomic_dir(local, replace=True) as tmp, zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for name in archive.namelist():
                        if name.startswith("/") or ".." in Path(name).parts:
                            raise ModelLoadError(f"shipped bundle: unsafe entry '{name}'")
                    archive.extractall(tmp)
        return replace(self.spec, bundle=str(local)).build()

    def settings(self) -> Any:
        return self.spec.settings()


def pack_bundle(bundle: str) -> tuple[bytes, str]:
    root = Path(bundle)
    if not (root / "manifest.json").is_file():
        raise InvalidOptionError(f"--bundle: '{root}' has no manifest.json (expected a bundle from 'export')")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(root).as_posix())
    digest = hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()[:16]
    return buffer.getvalue(), f"{root.name}-{digest}"

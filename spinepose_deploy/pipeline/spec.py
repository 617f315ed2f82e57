"""``PipelineSpec``: what ``infer``, ``infer --ray`` and the Python API ask for, checked once, built anywhere.

A bundle or a zoo mode (with its defaults), a backend, ``PipelineOptions`` fields; zoo options given with a
bundle are refused (the bundle fixes them). Picklable: Ray workers build their Pipeline from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionError
from ..zoo.source import DEFAULT_WEIGHTS
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION
from .pipeline import Pipeline, PipelineOptions

_ZOO_DEFAULTS = {
    "mode": DEFAULT_MODE, "detector": DEFAULT_DETECTOR, "model_version": DEFAULT_VERSION, "weights": DEFAULT_WEIGHTS,
}


@dataclass(frozen=True)
class PipelineSpec:
    """How each worker builds its one Pipeline: from a bundle, or a zoo mode.

    ``backend="auto"`` (the default) lets every node pick the configuration its own bench selection
    measured fastest. ``options`` are ``PipelineOptions`` fields (lift, max_people, fov, ...).
    """

    bundle: str | None = None
    mode: str | None = None
    detector: str | None = None
    model_version: str | None = None
    backend: str = "auto"
    precision: str | None = None
    weights: str | None = None
    device: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        PipelineOptions.build(**self.options)  # unknown or out-of-range options fail here, on the driver
        if self.bundle is not None:
            given = self.fixed_by_bundle()
            if given:
                raise InvalidOptionError(f"{given[0]}: not allowed with a bundle (the bundle fixes it)")
            object.__setattr__(self, "bundle", str(Path(self.bundle).absolute()))

    @classmethod
    def from_cli(
        cls, bundle: Path | str | None, backend: str | None, default_backend: str, **fields: Any
    ) -> PipelineSpec:
        """The spec of ``infer``'s options (``--mode`` ...), zoo options given with ``--bundle`` refused as
        the CLI spells them; ``default_backend`` when ``--backend`` is not given."""
        spec = cls(backend=backend or default_backend, **fields)  # zoo fields checked against no bundle
        given = spec.fixed_by_bundle() if bundle is not None else []
        if given:
            raise InvalidOptionError(f"--{given[0].replace('_', '-')}: not allowed with --bundle (the bundle fixes it)")
        return replace(spec, bundle=None if bundle is None else str(bundle))

    def fixed_by_bundle(self) -> list[str]:
        """The zoo fields given, which a bundle would fix (so they may not be given with one)."""
        return [name for name in (*_ZOO_DEFAULTS, "precision") if getattr(self, name) is not None]

    def build(self) -> Pipeline:
        if self.bundle is not None:
            return Pipeline.from_bundle(self.bundle, backend=self.backend, device=self.device, **self.options)
        zoo = {name: getattr(self, name) or default for name, default in _ZOO_DEFAULTS.items()}
        return Pipeline.from_zoo(backend=self.backend, precision=self.precision, device=self.device, **zoo,
                                 **self.options)  # fmt: skip

    __call__ = build  # a PipelineSpec is itself a pipeline factory

    def settings(self) -> dict[str, Any]:
        """What changes the outputs, for resume fingerprints (a re-exported bundle counts as new)."""
        data = asdict(self)
        data["options"] = asdict(PipelineOptions.build(**self.options))  # defaults spelled out or not: equal
        if self.bundle is not None:
            manifest = Path(self.bundle) / "manifest.json"
            if manifest.is_file():
                data["manifest_sha256"] = hashlib.sha256(manifest.read_bytes()).hexdigest()
        return data

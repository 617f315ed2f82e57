"""Which Session runs which role: bundles exported into the user cache on first use, and loading them.

``BundleRecipe``: a mode's graphs for one backend and precision, cached under a key made of what they are
made of. ``Pipeline.from_zoo`` and ``spinepose-deploy bench`` share these entries: a configuration the bench
measured is loaded by ``backend="auto"``, not exported again. ``load_bundle`` turns a verified ``Bundle`` into
Sessions per role; ``load_auto`` walks each role's ranking (``select.auto``) until one loads. A bundle is read
and hashed once per load: recipes give back the ``Bundle`` they verified, and ``load_auto`` reuses it for every
role it holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import backends
from .._version import __version__
from ..backends import get_backend
from ..backends.base import Session
from ..bundle.bundle import Bundle
from ..errors import BackendUnavailableError, BundleError, InvalidOptionError, SpinePoseDeployError
from ..paths import cache_subdir
from ..select import auto as auto_select
from ..stages import GraphInfo
from ..zoo import source as zoo_source
from ..zoo.specs import DEFAULT_DETECTOR, DEFAULT_MODE, DEFAULT_VERSION, ROLES, ModeSelection, resolve_mode

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
        """The bundle's directory in the cache, exported on first use (one process at a time)."""
        return self.bundle().path

    def bundle(self) -> Bundle:
        """The bundle in the cache, verified (hashed) once, exported on first use (one process at a time)."""
        # the exporter pulls in onnx and the export passes (seconds to import): only a first use pays for them
        from ..export.exporter import ExportRequest, export_bundle

        fields = dict(backend=self.backend, precision=self.precision, mode=self.mode, detector=self.detector,
                      model_version=self.model_version, weights=self.weights, force=True, roles=tuple(self.roles))
        # a bad backend/precision is refused before any graph is resolved or built (the key resolves them)
        ExportRequest(out=cache_subdir("bundles"), **fields).check_options()  # fmt: skip
        path = self.path()
        with FileLock(str(path) + ".lock"):
            if path.is_dir():
                try:
                    return Bundle.load(path)
                except SpinePoseDeployError as exc:  # damaged cache entry: export it again
                    log.warning("cached bundle %s unusable (%s); exporting again", path, exc)
            log.info("exporting %s %s %s bundle to %s", self.mode, self.backend, self.precision, path)
            return export_bundle(ExportRequest(out=path, **fields))


@dataclass
class Loaded:
    """What ``from_bundle``/``from_zoo`` hand to the constructor."""

    sessions: dict[str, Session | None] = field(default_factory=dict)
    graphs: dict[str, GraphInfo] = field(default_factory=dict)
    picked: dict[str, str] = field(default_factory=dict)  # backend="auto": role -> configuration label

    @contextlib.contextmanager
    def closing_on_error(self) -> Iterator[None]:
        """Close the Sessions loaded so far when a later step fails."""
        try:
            yield
        except BaseException:
            for session in self.sessions.values():
                if session is not None:
                    session.close()
            raise


# ---------------------------------------------------------------- bundles


def load_bundle(
    loaded: Loaded,
    bundle: Bundle,
    backend: str,
    roles: Iterable[str],
    device: str | None,
    threads: int | None = None,
) -> None:
    """Sessions for ``roles`` from a verified ``bundle`` (``backend``: "auto" or the bundle's own)."""
    if backend not in ("auto", bundle.backend):
        backends.get_backend(backend)  # an unknown name gets the registry's message
        raise InvalidOptionError(
            f"--backend: '{backend}' but bundle {bundle.path} was exported for {bundle.backend}; use "
            f"backend='auto' or export one: spinepose-deploy export --backend {backend} --out DIR"
        )
    runtime = backends.get_backend(bundle.backend)
    runtime.require()
    bundle.check_runtime(runtime.availability().version, device)
    options: dict[str, Any] = {}
    if device:
        options["device"] = device
    if threads:
        options["threads"] = threads
    for role in roles:
        if role not in bundle.roles:
            if role == "detector":
                continue  # a pose-only bundle: the caller passes boxes
            raise BundleError(f"{bundle.path}: no '{role}' graph (has {', '.join(bundle.roles)}); needed for {role}")
        loaded.graphs[role] = GraphInfo.from_manifest(bundle.entry(role))
        loaded.sessions[role] = backends.load(
            bundle.artifact(role), backend=bundle.backend, precision=bundle.precision_of(role), **options
        )
        log.info("%s: %s from %s", role, loaded.sessions[role], bundle.path)


def require_gate(bundle: Bundle, role: str) -> None:
    """Refuse ``role`` of ``bundle`` when its fidelity gate failed (a graph not gated here passes)."""
    fidelity = bundle.entry(role).fidelity
    gate = fidelity.gate if fidelity else None
    if gate is not None and not gate.passed:
        failures = "; ".join(gate.failures) or "see its manifest"
        raise BundleError(f"{bundle.path}: {role} {bundle.backend} {bundle.precision_of(role)} fails the fidelity gate "
                          f"({failures})")  # fmt: skip


def load_auto(
    loaded: Loaded,
    selection: ModeSelection,
    recipe: BundleRecipe,
    roles: Iterable[str],
    precision: str | None,
    device: str | None,
    threads: int | None,
) -> None:
    """Each role from the bench's ranking for this host (stored, else probed), best first; a configuration
    that fails to export or load is a warning and the next-best is tried (``select.auto.load_with_fallback``).

    Bundles are the bench's own cache entries (same keys and grouping), so a configuration the bench measured
    is loaded, not exported again.
    """
    ranked = auto_select.ranked_configurations(selection, weights=recipe.weights)
    bundles: dict[BundleRecipe, Bundle] = {}  # one read and hash per bundle, however many roles it serves
    for role in roles:
        choices = list(ranked.get(role) or [])
        if precision:
            choices = auto_select.with_precision(choices, precision)
        default_backend, default_precision = auto_select.DEFAULT
        fallback = auto_select.Choice(role, "", "", default_backend, precision or default_precision, "cpu",
                                      float("nan"), 1)  # fmt: skip
        if not any(c.pair == fallback.pair for c in choices):
            choices.append(fallback)

        def load(choice: auto_select.Choice, role: str = role) -> None:
            status = backends.get_backend(choice.backend).availability()
            if not status.ok:
                raise BackendUnavailableError(f"{choice.backend}: {status.reason}")
            group = bundle_roles(choice.precision, role)
            wanted = replace(recipe, backend=choice.backend, precision=choice.precision, roles=group)
            if wanted not in bundles:
                bundles[wanted] = wanted.bundle()
            require_gate(bundles[wanted], role)  # a probed bf16/fp16 hint is picked once its export passed the gate
            load_bundle(loaded, bundles[wanted], choice.backend, [role], device or choice.device, threads)

        _, choice = auto_select.load_with_fallback(choices, load, role=role)
        loaded.picked[role] = choice.label



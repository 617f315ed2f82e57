"""One exception family for spinepose-deploy.

The CLI turns every ``SpinePoseDeployError`` into one line on stderr; ``UserError``
subclasses exit with code 2 (the user can fix them), the rest with code 1.

    SpinePoseDeployError
    ├── UserError                      exit 2: bad option, file, or combination
    │   ├── InvalidOptionError         an option value outside what is accepted
    │   ├── InputFileError             a missing / unreadable / wrong-format input file
    │   ├── UnknownModelError          a model or mode name that does not exist (with a suggestion)
    │   └── OfflineError               offline mode and the file is not cached
    ├── BackendUnavailableError        the runtime library, OS or hardware is missing
    ├── ModelLoadError                 a runtime could not load an artifact (corrupt, wrong format)
    ├── ContractError                  a graph's inputs/outputs differ from the spec
    ├── FetchError                     a download failed
    │   ├── DownloadError              exit 2: the network or mirror did not deliver the file
    │   ├── HashMismatchError          downloaded/cached bytes differ from the pinned hash
    │   └── UnsafeArchiveError         an archive entry escapes the target or is a link
    ├── BundleError                    a bundle is incomplete, tampered or for another runtime
    ├── ExportError                    a conversion step failed
    │   └── GateFailedError            INT8 failed the fidelity gate in every round (carries the report)
    └── InferenceError                 a session failed while running (the runtime's error as its cause)

``first_line`` is the one way to show a runtime's (often multi-page) error as one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class SpinePoseDeployError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class UserError(SpinePoseDeployError):
    """Something the user can fix: an option, a path, a combination."""

    exit_code = 2


class InvalidOptionError(UserError):
    """An option value outside the accepted set."""


class InputFileError(UserError):
    """A missing, unreadable or wrongly-formatted input file."""


class UnknownModelError(UserError):
    """A model, mode or variant name that does not exist."""


class OfflineError(UserError):
    """Offline mode was requested and a needed file is not in the cache."""


class BackendUnavailableError(SpinePoseDeployError):
    """A backend's library, operating system or hardware is not available."""

    exit_code = 2


class ModelLoadError(SpinePoseDeployError):
    """A runtime could not load an artifact."""

    exit_code = 2


class ContractError(SpinePoseDeployError):
    """A graph's inputs or outputs do not match what the spec expects."""

    exit_code = 2


class FetchError(SpinePoseDeployError):
    """A model download failed."""


class DownloadError(FetchError):
    """The file could not be downloaded (no network, DNS, HTTP error): the user fixes it, so exit 2."""

    exit_code = 2


class HashMismatchError(FetchError):
    """Bytes on disk differ from the pinned sha256."""


class UnsafeArchiveError(FetchError):
    """An archive member would escape the extraction directory or is a link."""


class BundleError(SpinePoseDeployError):
    """A bundle is incomplete, tampered with, or made for another runtime."""

    exit_code = 2


class ExportError(SpinePoseDeployError):
    """An export/conversion step failed."""


class GateFailedError(ExportError):
    """The INT8 gate failed in every round; carries the report (``export.fidelity.GateReport``: its
    ``to_report()`` is the typed table the CLI prints, and the exporter's FP16 fallback records)."""

    def __init__(self, role: str, report: Any) -> None:
        failures = "; ".join(report.final.fidelity.get("gate", {}).get("failures", [])) or "see the report"
        super().__init__(
            f"{role}: INT8 fails the fidelity gate after {len(report.rounds)} round(s) ({failures}); "
            "use --fallback fp16, more representative --calib data, or loosen --gate"
        )
        self.role, self.report = role, report


class InferenceError(SpinePoseDeployError):
    """A session failed while running."""


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of ``exc``'s message (at most ``limit`` characters), else its type name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An error as one short line: our messages as they are, others prefixed with their type."""
    text = first_line(exc, limit) if str(exc).strip() else ""
    return text if isinstance(exc, SpinePoseDeployError) else f"{type(exc).__name__}: {text}"[:limit]


def suggest(value: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for a near miss, else ''."""
    match = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


def check_choice(option: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise InvalidOptionError naming all of them."""
    choices = list(choices)
    if value not in choices:
        raise InvalidOptionError(f"{option}: '{value}' is not one of {', '.join(choices)}.{suggest(value, choices)}")
    return value

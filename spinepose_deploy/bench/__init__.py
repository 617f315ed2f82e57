"""Measure Sessions and pipelines on this host and pick the fastest configuration that passes fidelity.

``runner`` runs ``spinepose-deploy bench``, ``accuracy`` scores each graph against ground truth, ``report``
renders table, JSON and chart. Below it: ``select.measure`` times Sessions, ``select.auto`` ranks and
stores the choice that ``Pipeline.from_zoo(backend="auto")`` reads, ``backends.host`` fingerprints the
machine. Nothing here imports a runtime library: everything goes through Sessions.
"""

from .runner import BenchRequest, BenchResult, BenchRow, run_bench

__all__ = [
    "BenchRequest",
    "BenchResult",
    "BenchRow",
    "run_bench",
]

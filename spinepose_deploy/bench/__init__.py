"""Measure Sessions and pipelines on this host and pick the fastest configuration that passes fidelity.

``measure`` times Sessions, ``runner`` runs ``spinepose-deploy bench``, ``select`` ranks and stores the
choice that ``Pipeline.from_zoo(backend="auto")`` reads, ``report`` renders table, JSON and chart, ``host``
fingerprints the machine. Nothing here imports a runtime library: everything goes through Sessions.
"""

from .measure import Measurement, Timing, measure_session
from .runner import BenchRequest, BenchResult, BenchRow, run_bench
from .select import auto_configuration, load_with_fallback

__all__ = [
    "BenchRequest",
    "BenchResult",
    "BenchRow",
    "Measurement",
    "Timing",
    "auto_configuration",
    "load_with_fallback",
    "measure_session",
    "run_bench",
]

"""Auto-selection: time Sessions on this host (``measure``), rank the configurations that pass their gate,
store the choice per host and probe when none is stored (``auto``).

Above ``stages`` (feeds are prepared by the stage objects) and ``bundle`` (cached bundles are candidates);
below ``pipeline`` and ``bench``, which read and write the choice.
"""

"""The on-disk bundle contract: the typed manifest (``manifest``), loading and verifying a bundle (``bundle``)
and its text rendering (``render``).

Above ``backends`` and ``zoo`` (a bundle names its backend's format checks and hashes its source graph),
below ``select``, ``export`` and ``pipeline``: export writes bundles, select and pipeline read them.
"""

from .bundle import MANIFEST, Bundle, hash_files

__all__ = ["MANIFEST", "Bundle", "hash_files"]

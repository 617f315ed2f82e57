"""Scale out: ``infer`` over large image/video collections on a Ray cluster, resumable; inputs and outputs
on a shared disk or in object storage (``objstore``), long videos split across workers (``segments``).

``ray`` is an optional extra (``pip install 'spinepose-deploy[ray]'``); importing this package works
without it and ``infer_on_ray`` says how to install it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..pipeline.spec import PipelineSpec
    from .ray_infer import RunSummary, infer_on_ray
    from .sources import resolve_sources

__all__ = ["PipelineSpec", "RunSummary", "infer_on_ray", "resolve_sources"]

_LAZY = {
    "infer_on_ray": ".ray_infer",
    "RunSummary": ".ray_infer",
    "resolve_sources": ".sources",
    "PipelineSpec": "..pipeline.spec",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinepose_deploy.scale' has no attribute {name!r}")

"""Stand-in graphs: architecture-faithful torch models with seeded weights, exported to ONNX.

One module per family (``pose``, ``lifter``, ``yolox``, ``rfdetr``) exposes ``create(spec)`` and
optionally ``finalize(model, spec)`` and ``EXPORT_BATCH``; ``build`` exports, checks and caches.
Importing this package does not import torch.
"""

from .build import build_standin, is_standin

__all__ = ["build_standin", "is_standin"]

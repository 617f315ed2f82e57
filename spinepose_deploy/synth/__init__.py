"""A synthetic world with known answers: rendered people in the SpineTrack skeleton, and accuracy metrics.

- :mod:`.skeleton` — 3D kinematic skeleton (37 keypoints, 9-point spine chain) with joint limits.
- :mod:`.render` — :func:`render_scene` draws posed figures seen by a pinhole camera; :class:`Scene` holds
  the image, boxes, 2D keypoints + visibility, 3D keypoints (camera metres) and intrinsics.
- :mod:`.dataset` — the fixed held-out set, training crops (via the pipeline's crop) and lifter samples.
- :mod:`.metrics` — PCK / per-keypoint error, MPJPE, AP50; :mod:`.evaluate` runs a graph against ground truth.
"""

from .render import RenderConfig, Scene, render_scene

__all__ = ["RenderConfig", "Scene", "render_scene"]

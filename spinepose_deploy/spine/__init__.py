"""Spine kinematics: angles per person and frame, tables and plots, OpenSim TRC and C3D files.

- :mod:`.angles` — pure numpy: :func:`spine_angles` (2D and, with world 3D, sagittal/coronal) and names.
- :mod:`.table` — rows per frame x person and the CSV writer; :mod:`.plot` — angles over time (matplotlib).
- :mod:`.mocap` — world-space keypoints per track as OpenSim TRC and C3D (ezc3d), on the video's clock;
  :mod:`.markers` — upstream's OpenSim marker names; :mod:`.storage` — angles as OpenSim ``.mot``.
- :mod:`.tracks` — one track's series through :mod:`.filtering` (offline: gaps, Hampel, zero-lag Butterworth),
  :mod:`.neutral` (reference posture) and :mod:`.summary` (zones, peaks, ROM, craniovertebral angle);
  :mod:`.report` — the per-input JSON and self-contained HTML; :mod:`.options` — their CLI text parsed once.

The models are not medical devices: these numbers are not for clinical use (docs/spine.md).
"""

from .angles import ANGLE_NAMES, SpineAngles, spine_angles

__all__ = ["ANGLE_NAMES", "SpineAngles", "spine_angles"]

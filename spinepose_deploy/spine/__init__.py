"""Spine kinematics: angles per person and frame, tables and plots, OpenSim TRC and C3D files.

- :mod:`.angles` — pure numpy: :func:`spine_angles` (2D and, with world 3D, sagittal/coronal) and names.
- :mod:`.table` — rows per frame x person and the CSV writer; :mod:`.plot` — angles over time (matplotlib).
- :mod:`.mocap` — world-space keypoints per track as OpenSim TRC and C3D (ezc3d).

The models are not medical devices: these numbers are not for clinical use (docs/spine.md).
"""

from .angles import ANGLE_NAMES, SpineAngles, spine_angles

__all__ = ["ANGLE_NAMES", "SpineAngles", "spine_angles"]

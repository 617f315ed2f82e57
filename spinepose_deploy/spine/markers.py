"""Which keypoints go into marker files, under which names.

Upstream's OpenSim setup for SpineTrack (dfki-av/simspine ``assets/OpenSim_Setup/Markers.xml``, with its
``Scaling_Setup.xml`` and ``IK_Setup.xml``) names 33 markers the Pose2Sim way (``LHip``, ``Spine_01``,
``Neck_02``, ``LLatissimus``...); it has no eyes or ears. With those names its scaling and IK setups run
on our TRC files unchanged. ``keypoints`` keeps all 37 SpineTrack keypoint names instead.
"""

from __future__ import annotations

from enum import Enum

from ..errors import InvalidOptionError
from ..ops.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES

# SpineTrack keypoint -> upstream marker name, in upstream's Markers.xml order
OPENSIM_NAMES: dict[str, str] = {
    "nose": "Nose", "head": "Head", "neck": "Neck",
    "left_shoulder": "LShoulder", "right_shoulder": "RShoulder", "left_elbow": "LElbow", "right_elbow": "RElbow",
    "left_wrist": "LWrist", "right_wrist": "RWrist", "hip": "Hip", "left_hip": "LHip", "right_hip": "RHip",
    "left_knee": "LKnee", "right_knee": "RKnee", "left_ankle": "LAnkle", "right_ankle": "RAnkle",
    "left_big_toe": "LBigToe", "left_small_toe": "LSmallToe", "left_heel": "LHeel",
    "right_big_toe": "RBigToe", "right_small_toe": "RSmallToe", "right_heel": "RHeel",
    "neck_03": "Neck_03", "neck_02": "Neck_02", "left_clavicle": "LClavicle", "right_clavicle": "RClavicle",
    "left_latissimus": "LLatissimus", "right_latissimus": "RLatissimus",
    "spine_05": "Spine_05", "spine_04": "Spine_04", "spine_03": "Spine_03", "spine_02": "Spine_02",
    "spine_01": "Spine_01",
}  # fmt: skip


class MarkerNames(str, Enum):
    """``opensim``: upstream's 33 OpenSim/Pose2Sim markers (default); ``keypoints``: the 37 keypoint names."""

    OPENSIM = "opensim"
    KEYPOINTS = "keypoints"

    @classmethod
    def parse(cls, text: str, option: str = "--marker-names") -> MarkerNames:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidOptionError(
                f"{option}: '{text}' is not one of {', '.join(m.value for m in cls)}"
            ) from None


def marker_set(names: MarkerNames = MarkerNames.OPENSIM) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Keypoint ids and the marker names to write for them, in file order."""
    if names is MarkerNames.KEYPOINTS:
        return tuple(range(len(KEYPOINT_NAMES))), KEYPOINT_NAMES
    return tuple(KEYPOINT_INDEX[k] for k in OPENSIM_NAMES), tuple(OPENSIM_NAMES.values())

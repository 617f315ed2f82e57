"""The SpineTrack skeleton: 37 keypoints, 39 links, the spine chain, OKS sigmas and drawing colours.

Names, links, swaps and sigmas are read from ``data/spinetrack_skeleton.json`` (facts from upstream
SpinePose 2.1.0 ``metainfo.py``). Colours are upstream's too (RGB there; stored here as BGR for OpenCV).
"""

from __future__ import annotations

import json

import numpy as np

from ..paths import package_data_dir


def _load() -> dict:
    with open(package_data_dir() / "spinetrack_skeleton.json", encoding="utf-8") as fh:
        return json.load(fh)


_DATA = _load()

NUM_KEYPOINTS: int = int(_DATA["num_keypoints"])
KEYPOINT_NAMES: tuple[str, ...] = tuple(kp["name"] for kp in sorted(_DATA["keypoints"], key=lambda k: k["id"]))
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
# (39, 2) index pairs, in upstream's drawing order
LINKS: tuple[tuple[int, int], ...] = tuple((KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]) for a, b in _DATA["links"])
# hip (sacrum) -> L5 -> L3 -> T12/L1 -> T8 -> T3 -> neck (C7) -> C3/C4 -> C1
SPINE_IDS: tuple[int, ...] = tuple(int(i) for i in _DATA["spine_ids"])
ROOT_ID: int = KEYPOINT_INDEX["hip"]  # the lifter's root joint (19)
FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (kp["id"], KEYPOINT_INDEX[kp["swap"]])
    for kp in _DATA["keypoints"]
    if kp["swap"] and kp["id"] < KEYPOINT_INDEX[kp["swap"]]
)
OKS_SIGMAS: np.ndarray = np.asarray(_DATA["sigmas"], dtype=np.float32)  # (37,)
JOINT_WEIGHTS: np.ndarray = np.asarray(_DATA["joint_weights"], dtype=np.float32)  # (37,)

_SPINE_SET = frozenset(SPINE_IDS) | {KEYPOINT_INDEX["head"]}
# links whose both ends lie on the hip..head chain: drawn emphasised
SPINE_LINKS: tuple[int, ...] = tuple(i for i, (a, b) in enumerate(LINKS) if a in _SPINE_SET and b in _SPINE_SET)

# Upstream colours (metainfo.py), RGB.
_KP_DEFAULT = (204, 51, 51)
_KP_SPECIAL = {
    "neck": (36, 93, 48), "neck_02": (36, 93, 48), "neck_03": (36, 93, 48),
    "hip": (35, 161, 210),
    "spine_01": (248, 144, 171), "spine_02": (248, 144, 171), "spine_03": (248, 144, 171),
    "spine_04": (194, 134, 91), "spine_05": (194, 134, 91),
}  # fmt: skip


# one code per link in LINKS order (upstream skeleton_info): L green, R orange, C blue
_LINK_CODES = "LLLRRRCCCCCCCCCLLRRCCCCCCCCLLLRRRLRLRLR"
_CODE_RGB = {"L": (0, 255, 0), "R": (255, 128, 0), "C": (51, 153, 255)}
if len(_LINK_CODES) != len(LINKS):  # the json and this table must agree
    raise RuntimeError(f"spinetrack_skeleton.json has {len(LINKS)} links, colour table {len(_LINK_CODES)}")


KEYPOINT_COLORS_BGR: tuple[tuple[int, int, int], ...] = tuple(
    tuple(reversed(_KP_SPECIAL.get(name, _KP_DEFAULT))) for name in KEYPOINT_NAMES
)
LINK_COLORS_BGR: tuple[tuple[int, int, int], ...] = tuple(tuple(reversed(_CODE_RGB[code])) for code in _LINK_CODES)


def overlay_sizes(image_width: int) -> tuple[int, int]:
    """Keypoint radius and line width for an overlay, as upstream (width/800 scale) but never below 1.

    Upstream's ``int(2 * width / 800)`` is 0 on images narrower than 400 px and OpenCV then refuses to draw.
    """
    scale = image_width / 800
    return max(1, int(4 * scale)), max(1, int(2 * scale))

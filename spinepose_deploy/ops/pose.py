"""Top-down pose pre/post-processing (RTMPose-style SimCC), pure numpy + OpenCV warp.

Faithful to upstream SpinePose 2.1.0 (``tools/pose_estimation``, ``pose_estimator._smooth_spine``) with
one structural change: all crops of a frame are built into one ``(N, 3, H, W)`` batch for a single
``session.run`` (upstream runs one session call per crop in a fresh thread pool every frame).

Sizes: ``input_hw`` is the network input ``(height, width)``, as ``ModelSpec.input_size``; OpenCV-facing
helpers that take ``output_wh`` say so.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UserError
from .detector import channel_order, check_image, sanitize_boxes
from .skeleton import SPINE_IDS

POSE_MEAN = (123.675, 116.28, 103.53)  # RGB
POSE_STD = (58.395, 57.12, 57.375)
PADDING = 1.25
SIMCC_SPLIT_RATIO = 2.0


def bbox_xyxy2cs(boxes: np.ndarray, padding: float = PADDING) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` xyxy -> ``(centers (N, 2), scales (N, 2))``; scale is the padded box width/height."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scales = (boxes[:, 2:] - boxes[:, :2]) * padding
    return centers, scales


def fix_aspect_ratio(scales: np.ndarray, aspect: float) -> np.ndarray:
    """Grow each ``(w, h)`` in ``scales`` ``(N, 2)`` to the network input's aspect ``w / h`` (upstream)."""
    w, h = scales[:, :1], scales[:, 1:]
    return np.where(w > h * aspect, np.hstack([w, w / aspect]), np.hstack([h * aspect, h]))


def get_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    output_wh: tuple[int, int],
    rot: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Affine ``(2, 3)`` mapping the box (``center`` (2,), ``scale`` (2,)) onto an ``output_wh`` crop.

    Built from three float32 point pairs with ``cv2.getAffineTransform`` exactly as upstream, so crops are
    bit-identical. Only ``scale[0]`` sets the zoom: pass an aspect-fixed scale. ``inv`` maps crop -> image.
    """
    center = np.asarray(center, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    shift_xy = scale * np.asarray(shift, dtype=np.float64)
    dst_w, dst_h = float(output_wh[0]), float(output_wh[1])
    angle = np.deg2rad(rot)
    sn, cs = np.sin(angle), np.cos(angle)
    src_dir = np.array([[cs, -sn], [sn, cs]]) @ np.array([0.0, scale[0] * -0.5])
    dst_dir = np.array([0.0, dst_w * -0.5])

    def third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return b + np.r_[-d[1], d[0]]

    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center + shift_xy
    src[1] = center + src_dir + shift_xy
    src[2] = third(src[0], src[1])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def crop_batch(
    image_bgr: np.ndarray,
    boxes: np.ndarray,
    input_hw: tuple[int, int],
    mean: tuple[float, float, float] = POSE_MEAN,
    std: tuple[float, float, float] = POSE_STD,
    color: str = "rgb",
    seed_compat: bool = False,
    padding: float = PADDING,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All person crops of one frame as one normalised batch.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 frame.
        boxes: ``(N, 4)`` xyxy image pixels. Corners are ordered first; a box that
            :func:`~spinepose_deploy.ops.detector.sanitize_boxes` would drop (non-finite, or both sides
            under 1 px) raises ``UserError`` — the detector decoders never emit one.
        input_hw: network input ``(height, width)``.
        mean, std: per channel in the network's order (``color``); ``seed_compat`` feeds BGR as upstream.

    Returns:
        ``(batch (N, 3, h, w) float32, centers (N, 2), scales (N, 2))``; scales are aspect-fixed, ready for
        :func:`crop_to_image`. Values are ``(pixel - mean) / std`` computed in float64 then rounded, as
        upstream, so seed_compat crops are bit-identical to upstream's. ``N == 0`` gives an empty batch.
        Boxes may extend past the image: the outside is black (0) before normalisation, as upstream.
    """
    image = check_image(image_bgr)
    order = channel_order(color, seed_compat)
    out_h, out_w = int(input_hw[0]), int(input_hw[1])
    raw = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    fixed, keep = sanitize_boxes(raw)
    if not keep.all():
        bad = raw[~keep][0].tolist()
        raise UserError(f"boxes: {bad} is empty or not finite; expected x1, y1, x2, y2 with a side >= 1 px")
    centers, scales = bbox_xyxy2cs(fixed, padding)
    scales = fix_aspect_ratio(scales, out_w / out_h)
    # (value - mean) / std for every uint8 value, in float64 then rounded: bit-identical to upstream's
    # float64 arithmetic on the whole crop; applied per plane with cv2.LUT straight into the batch, which is
    # ~5x faster than a numpy gather over the (N, h, w, 3) crops (2.7 ms of a 6-person frame)
    lut = ((np.arange(256)[:, None] - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)).astype(np.float32)
    planes_lut = [np.ascontiguousarray(lut[:, c]) for c in range(3)]
    batch = np.empty((len(fixed), 3, out_h, out_w), dtype=np.float32)
    for i, (center, scale) in enumerate(zip(centers, scales, strict=True)):
        warp = get_warp_matrix(center, scale, (out_w, out_h))
        planes = cv2.split(cv2.warpAffine(image, warp, (out_w, out_h), flags=cv2.INTER_LINEAR))
        for c, src in enumerate(order):
            cv2.LUT(planes[src], planes_lut[c], dst=batch[i, c])
    return batch, centers, scales


def decode_simcc(
    simcc_x: np.ndarray,
    simcc_y: np.ndarray,
    split_ratio: float = SIMCC_SPLIT_RATIO,
    mark_invalid: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC ``simcc_x`` (N, K, 2w), ``simcc_y`` (N, K, 2h) -> ``(keypoints (N, K, 2), scores (N, K))``.

    Keypoints are in crop pixels: argmax per axis divided by ``split_ratio``. Score is the mean of the two
    maxima. As upstream, a keypoint whose score is <= 0 gets location -1 (before the division, so -0.5 px);
    ``mark_invalid=False`` keeps the argmax there (the fidelity gate compares raw peak positions).
    """
    n, k, _ = simcc_x.shape
    # float32 whatever the backend returned (fp16 artifacts), so scores compare across backends
    sx = np.asarray(simcc_x, dtype=np.float32).reshape(n * k, simcc_x.shape[2])
    sy = np.asarray(simcc_y, dtype=np.float32).reshape(n * k, simcc_y.shape[2])
    locs = np.stack((np.argmax(sx, axis=1), np.argmax(sy, axis=1)), axis=-1).astype(np.float32)
    vals = 0.5 * (np.amax(sx, axis=1) + np.amax(sy, axis=1))
    if mark_invalid:
        locs[vals <= 0.0] = -1
    return (locs / np.float32(split_ratio)).reshape(n, k, 2), vals.reshape(n, k).astype(np.float32)


def crop_to_image(
    keypoints: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_hw: tuple[int, int]
) -> np.ndarray:
    """Map crop-pixel keypoints ``(N, K, 2)`` back to image pixels with each crop's center/scale ``(N, 2)``.

    The exact inverse of the warp in :func:`crop_batch` (upstream's rescale). Returns float32 ``(N, K, 2)``.
    """
    size = np.asarray([input_hw[1], input_hw[0]], dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)[:, None, :]
    scales = np.asarray(scales, dtype=np.float64)[:, None, :]
    out = np.asarray(keypoints, dtype=np.float64) / size * scales + centers - scales / 2
    return out.astype(np.float32)


def image_to_crop(points: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """Image pixels ``(N, K, 2)`` -> crop pixels; the inverse of :func:`crop_to_image`."""
    size = np.asarray([input_hw[1], input_hw[0]], dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)[:, None, :]
    scales = np.asarray(scales, dtype=np.float64)[:, None, :]
    return ((np.asarray(points, dtype=np.float64) - centers + scales / 2) / scales * size).astype(np.float32)


def smooth_spine_v1(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upstream's v1 spine rule: each inner spine point becomes the mean of its neighbours, in order.

    Applied along ``SPINE_IDS`` (hip .. C1) for v1 (spinetrack) models only. The update is sequential
    (point i uses the already-updated point i-1), as upstream. ``keypoints`` ``(N, K, 2)``; returns new
    arrays (upstream mutates its input); scores are unchanged.
    """
    out = np.array(keypoints, copy=True)
    spine = out[:, list(SPINE_IDS)]
    for i in range(1, len(SPINE_IDS) - 1):
        spine[:, i] = (spine[:, i - 1] + spine[:, i + 1]) / 2
    out[:, list(SPINE_IDS)] = spine
    return out, np.array(scores, copy=True)


def validate_simcc(outputs: dict[str, np.ndarray], n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``simcc_x``/``simcc_y`` from a session's outputs (by name, else first two) and check shapes."""
    if "simcc_x" in outputs and "simcc_y" in outputs:
        sx, sy = outputs["simcc_x"], outputs["simcc_y"]
    else:
        values = list(outputs.values())
        if len(values) < 2:
            raise UserError(f"pose outputs: got {list(outputs)}, expected simcc_x and simcc_y")
        sx, sy = values[0], values[1]
    if sx.ndim != 3 or sy.ndim != 3 or sx.shape[:2] != (n, k) or sy.shape[:2] != (n, k):
        raise UserError(f"pose outputs: simcc_x {sx.shape}, simcc_y {sy.shape}, expected ({n}, {k}, L)")
    return sx, sy

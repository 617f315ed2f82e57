"""Person detector pre/post-processing (YOLOX and RF-DETR), pure numpy + OpenCV resize.

Boxes are ``(N, 4)`` float32 ``x1, y1, x2, y2`` in original-image pixels, scores ``(N,)`` float32.
Faithful to upstream SpinePose 2.1.0 (``tools/object_detection``) except where a docstring says otherwise.
Every decoder ends with :func:`sanitize_boxes`, so downstream code never sees an inverted, empty or
non-finite box.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UserError

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 0.485/0.456/0.406 * 255, RGB
IMAGENET_STD = (58.395, 57.12, 57.375)  # 0.229/0.224/0.225 * 255, RGB
PAD_VALUE = 114  # YOLOX letterbox grey

Feed = dict[str, np.ndarray]


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` if it is an ``(H, W, 3)`` uint8 array, else raise naming the shape and dtype."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise UserError(f"{what}: got shape {shape} dtype {dtype}, expected (H, W, 3) uint8 BGR")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise UserError(f"{what}: got an empty image of shape {image.shape}, expected H, W > 0")
    return image


def channel_order(color: str, seed_compat: bool) -> tuple[int, int, int]:
    """Indices into a BGR image's channels that give the order to feed.

    ``color`` is the order the network was trained on ("rgb"/"bgr"); ``seed_compat`` feeds BGR whatever it
    is, as upstream 2.1.0 does for RF-DETR and the pose network (both trained on RGB). Channels are
    reordered after resizing/warping (cheaper on small arrays, identical since both act per channel).
    """
    if color.lower() not in ("rgb", "bgr"):
        raise UserError(f"color: '{color}' is not one of rgb, bgr")
    return (0, 1, 2) if seed_compat or color.lower() == "bgr" else (2, 1, 0)


def sanitize_boxes(boxes: np.ndarray, min_size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Order corners and drop unusable boxes.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2 (any order of corners).
        min_size: a box is dropped when both its width and height are below this (pixels).

    Returns:
        ``(boxes (M, 4) float32, keep (N,) bool)``: corners ordered (x1 <= x2, y1 <= y2); rows with a
        non-finite value or with ``max(w, h) < min_size`` removed. A box that is thin in one direction only
        is kept: the pose crop fixes its aspect ratio from the other side, as upstream does.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    ordered = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    size = ordered[:, 2:] - ordered[:, :2]
    keep = np.isfinite(ordered).all(axis=1) & (size.max(axis=1, initial=0.0) >= min_size)
    return ordered[keep], keep


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` float64 of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4); either may be empty.

    Inverted boxes have zero area; an empty union gives IoU 0 (upstream's tracker divides by 1e-5 there).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.where(union > 0, union, 1e-5)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


# ---------------------------------------------------------------- YOLOX


def letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping aspect ratio and paste at the top-left of a 114-grey canvas (upstream YOLOX).

    Args:
        image: ``(H, W, 3)`` uint8.
        input_hw: network input ``(height, width)``.

    Returns:
        ``(canvas (h, w, 3) uint8, ratio)`` with ``network_xy = image_xy * ratio``. The resized size is
        truncated with ``int()`` exactly as upstream; it is kept >= 1 px (upstream crashes there).
    """
    out_h, out_w = int(input_hw[0]), int(input_hw[1])
    ratio = min(out_h / image.shape[0], out_w / image.shape[1])
    new_w = max(1, int(image.shape[1] * ratio))
    new_h = max(1, int(image.shape[0] * ratio))
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, ratio


def yolox_feed(image_bgr: np.ndarray, input_hw: tuple[int, int], input_name: str = "input") -> tuple[Feed, float]:
    """YOLOX feed: letterboxed raw 0-255 BGR (YOLOX was trained on BGR), ``(1, 3, h, w)`` float32.

    Returns ``(feed, ratio)``; pass ``ratio`` to :func:`decode_yolox`.
    """
    canvas, ratio = letterbox(check_image(image_bgr), input_hw)
    batch = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    return {input_name: batch}, ratio


def decode_yolox(dets: np.ndarray, ratio: float, score_thr: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Decode the NMS-in-graph output ``dets`` ``(1, N, 5)`` (x1, y1, x2, y2, score in network pixels).

    As upstream: boxes divided by ``ratio``, kept when ``score > score_thr``; ``labels`` are ignored (the
    Human-Art YOLOX graphs have one class). Returns ``(boxes (M, 4), scores (M,))``, then sanitized.
    """
    dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5)
    keep = dets[:, 4] > score_thr
    boxes, scores = dets[keep, :4] / np.float32(ratio), dets[keep, 4]
    boxes, ok = sanitize_boxes(boxes)
    return boxes, scores[ok]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, offset: float = 1.0) -> np.ndarray:
    """Greedy single-class non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` xyxy. scores: ``(N,)``.
        iou_thr: a box is suppressed when its IoU with a kept box is above this.
        offset: added to widths/heights; 1.0 is upstream's pixel-inclusive convention, 0.0 matches
            ONNX ``NonMaxSuppression`` (what the YOLOX graphs run inside).

    Returns:
        ``(K,)`` int64 indices of kept boxes, highest score first.
    """
    x1, y1, x2, y2 = np.asarray(boxes).T
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = np.asarray(scores).argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_thr]  # NaN IoU (two empty boxes, offset 0) suppresses, as upstream
    return np.asarray(keep, dtype=np.int64)


def yolox_grid_decode(raw: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Decode a raw YOLOX head output ``(1, A, 5 + C)`` (cx, cy, log w, log h, objectness, classes) on the
    stride 8/16/32 grids, as upstream. Returns ``(boxes (A, 4) xyxy network px, scores (A, C))``.
    """
    raw = np.asarray(raw, dtype=np.float32).reshape(-1, raw.shape[-1])
    grids, strides = [], []
    for stride in (8, 16, 32):
        h, w = int(input_hw[0]) // stride, int(input_hw[1]) // stride
        xv, yv = np.meshgrid(np.arange(w), np.arange(h))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((h * w, 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    if grid.shape[0] != raw.shape[0]:
        raise UserError(f"YOLOX raw output has {raw.shape[0]} anchors, expected {grid.shape[0]} for input {input_hw}")
    # rounded to float32 at the same steps as upstream's in-place update
    xy = ((raw[:, :2] + grid) * stride).astype(np.float32)
    wh = (np.exp(raw[:, 2:4]) * stride).astype(np.float32)
    boxes = np.concatenate([xy - wh / 2.0, xy + wh / 2.0], axis=1)
    return boxes, raw[:, 4:5] * raw[:, 5:]


def decode_boxes_scores(
    boxes: np.ndarray,
    scores: np.ndarray,
    ratio: float,
    *,
    iou_thr: float = 0.45,
    pre_thr: float = 0.7,
    score_thr: float = 0.3,
    class_id: int = 0,
    offset: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Host NMS for a detector whose NMS was not run in the graph (upstream's ``multiclass_nms`` path).

    Args:
        boxes: ``(1, A, 4)`` or ``(A, 4)`` xyxy in network pixels.
        scores: ``(1, A, C)``, ``(A, C)`` or ``(A,)`` class scores.
        ratio: letterbox ratio from :func:`yolox_feed`.
        iou_thr, pre_thr: upstream YOLOX ``nms_thr=0.45`` and ``score_thr=0.7`` (per-class candidates).
        score_thr: final threshold (upstream 0.3). class_id: the person class.
        offset: see :func:`nms` (1.0 upstream; 0.0 to mimic an in-graph ONNX NonMaxSuppression).

    Returns:
        ``(boxes (M, 4), scores (M,))`` in image pixels, highest score first, sanitized.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / np.float32(ratio)
    scores = np.asarray(scores, dtype=np.float32)
    scores = scores.reshape(boxes.shape[0], -1)
    if class_id >= scores.shape[1]:
        return _empty()
    cls_scores = scores[:, class_id]
    # upstream runs NMS for every class and then keeps class 0: only class 0 matters for the result
    cand = cls_scores > pre_thr
    cand_boxes, cand_scores = boxes[cand], cls_scores[cand]
    keep = nms(cand_boxes, cand_scores, iou_thr, offset=offset)
    out_boxes, out_scores = cand_boxes[keep], cand_scores[keep]
    final = out_scores > score_thr
    out_boxes, ok = sanitize_boxes(out_boxes[final])
    return out_boxes, out_scores[final][ok]


# ---------------------------------------------------------------- RF-DETR


def rfdetr_feed(
    image_bgr: np.ndarray,
    input_hw: tuple[int, int],
    input_name: str = "input",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    color: str = "rgb",
    seed_compat: bool = False,
) -> tuple[Feed, tuple[int, int]]:
    """Feed for RF-DETR: stretch-resize to ``input_hw``, /255, minus mean, over std, ``(1, 3, h, w)`` float32.

    ``mean``/``std`` are in 0-255 units and in the network's channel order (``color``). With
    ``seed_compat`` the BGR frame is fed as upstream does. The arithmetic is float32 in upstream's order
    (``x * (1/255) - mean/255) * (1/(std/255))``) so the feed is bit-identical to upstream's.

    Returns ``(feed, (image_h, image_w))``; pass the size to :func:`decode_rfdetr`.
    """
    order = channel_order(color, seed_compat)
    resized = cv2.resize(check_image(image_bgr), (int(input_hw[1]), int(input_hw[0])), interpolation=cv2.INTER_LINEAR)
    mean01 = (np.asarray(mean, dtype=np.float64) / 255.0).astype(np.float32)
    std01 = (np.asarray(std, dtype=np.float64) / 255.0).astype(np.float32)
    x = resized[..., list(order)].astype(np.float32)
    x *= np.float32(1.0 / 255.0)
    x -= mean01
    x *= (1.0 / std01).astype(np.float32)
    batch = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    return {input_name: batch}, (int(image_bgr.shape[0]), int(image_bgr.shape[1]))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflow gives 0 probability, which is right
        return 1.0 / (1.0 + np.exp(-x))


def decode_rfdetr(
    dets: np.ndarray,
    logits: np.ndarray,
    image_hw: tuple[int, int],
    score_thr: float = 0.3,
    num_select: int = 300,
    class_ids: tuple[int, ...] | None = (0,),
) -> tuple[np.ndarray, np.ndarray]:
    """Decode RF-DETR ``dets`` ``(B, Q, 4)`` normalised cx, cy, w, h and ``logits`` ``(B, Q, C)``.

    As upstream: sigmoid; background column 0 excluded; top ``num_select`` over all (query, class) pairs,
    highest first; keep ``score > score_thr`` and ``label - 1`` in ``class_ids`` (None: any class); boxes to
    xyxy (negative w/h clipped to 0) scaled to ``image_hw``. Batches are concatenated. Note a query can
    appear twice (two classes) when ``class_ids`` has several entries, as upstream.

    Returns ``(boxes (M, 4), scores (M,))`` float32, sanitized.
    """
    dets = np.asarray(dets, dtype=np.float32)
    logits = np.asarray(logits, dtype=np.float32)
    if dets.ndim == 2:
        dets, logits = dets[None], logits[None]
    if dets.ndim != 3 or logits.ndim != 3 or dets.shape[:2] != logits.shape[:2]:
        raise UserError(f"RF-DETR outputs: dets {dets.shape} and labels {logits.shape}, expected (B, Q, 4), (B, Q, C)")
    probs = _sigmoid(logits)
    probs[..., 0] = -1.0
    batch, _, num_classes = probs.shape
    flat = probs.reshape(batch, -1)
    k = min(num_select, flat.shape[1])
    if k <= 0:
        return _empty()
    # same argpartition/argsort calls as upstream so ties are ordered identically
    part = np.argpartition(flat, -k, axis=1)[:, -k:]
    part_scores = np.take_along_axis(flat, part, axis=1)
    order = np.argsort(-part_scores, axis=1)
    top = np.take_along_axis(part, order, axis=1)
    scores = np.take_along_axis(part_scores, order, axis=1)
    labels = top % num_classes
    w = np.clip(dets[..., 2], 0.0, None)
    h = np.clip(dets[..., 3], 0.0, None)
    xyxy = np.stack(
        [dets[..., 0] - 0.5 * w, dets[..., 1] - 0.5 * h, dets[..., 0] + 0.5 * w, dets[..., 1] + 0.5 * h], -1
    )
    xyxy = xyxy[np.arange(batch)[:, None], top // num_classes]
    img_h, img_w = float(image_hw[0]), float(image_hw[1])
    xyxy = xyxy * np.asarray([img_w, img_h, img_w, img_h], dtype=np.float32)
    keep = (scores > score_thr) & (labels > 0)
    if class_ids is not None:
        keep &= np.isin(labels - 1, np.asarray(class_ids, dtype=np.int64))
    boxes, ok = sanitize_boxes(xyxy[keep])
    return boxes, scores[keep].astype(np.float32)[ok]

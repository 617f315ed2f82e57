"""``Detector``: the one place a person-detector graph is fed and decoded, whatever its family.

The family dispatch is done once, here: YOLOX (letterboxed raw BGR; NMS in the graph ``dets``, NMS stripped
for Core ML ``boxes``/``scores`` decoded with host NMS, or a raw head) and RF-DETR (stretched, normalised;
``dets`` + class ``labels`` logits). Boxes come back in image pixels, highest score first unless
``seed_compat`` (upstream keeps the detector's order).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ops import detector as det
from ..zoo.specs import Family
from .graph import Feed, GraphInfo, Runner, Stage, pick

DEFAULT_SCORE_THR = 0.3  # upstream's detection threshold
# What decoding needs besides the outputs: the YOLOX letterbox ratio, or the RF-DETR frame size (h, w)
DetectMeta = float | tuple[int, int]


class Detector(Stage):
    """Person boxes ``(N, 4)`` xyxy image pixels and scores ``(N,)`` from one BGR frame."""

    def __init__(self, info: GraphInfo, run: Runner | None = None, *, seed_compat: bool = False) -> None:
        super().__init__(info, run)
        self.seed_compat = seed_compat

    def preprocess(self, image: np.ndarray) -> tuple[Feed, DetectMeta]:
        """The graph's feed ``(1, 3, h, w)`` float32 and what ``postprocess`` needs to map boxes back."""
        info = self.info
        if info.family is Family.RFDETR:
            return det.rfdetr_feed(image, info.input_hw, info.input_name, info.mean or det.IMAGENET_MEAN,
                                   info.std or det.IMAGENET_STD, info.color, self.seed_compat)  # fmt: skip
        return det.yolox_feed(image, info.input_hw, info.input_name)

    def postprocess(
        self, outputs: Mapping[str, np.ndarray], meta: DetectMeta, score_thr: float = DEFAULT_SCORE_THR
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores above ``score_thr``, sorted by score (stable) unless ``seed_compat``."""
        if self.info.family is Family.RFDETR:
            boxes, scores = det.decode_rfdetr(pick(outputs, "dets", 0), pick(outputs, "labels", 1), meta,
                                              score_thr=score_thr)  # fmt: skip
        else:
            boxes, scores = self._decode_yolox(outputs, float(meta), score_thr)
        if not self.seed_compat and len(scores) > 1:
            order = np.argsort(-scores, kind="stable")
            boxes, scores = boxes[order], scores[order]
        return boxes, scores

    def __call__(self, image: np.ndarray, score_thr: float = DEFAULT_SCORE_THR) -> tuple[np.ndarray, np.ndarray]:
        feed, meta = self.preprocess(image)
        return self.postprocess(self.run(feed), meta, score_thr)

    def _decode_yolox(
        self, outputs: Mapping[str, np.ndarray], ratio: float, thr: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The three YOLOX output forms: NMS in the graph (``dets``), NMS stripped (``boxes``/``scores``,
        Core ML bundles) and a raw head (one ``(1, A, 5 + C)`` output, upstream's non-NMS path)."""
        if "dets" in outputs:
            return det.decode_yolox(outputs["dets"], ratio, thr)
        if "boxes" in outputs and "scores" in outputs:
            settings = dict(self.info.nms or {})
            boxes = np.asarray(outputs["boxes"], np.float32).reshape(-1, 4)
            if settings.get("center_point_box") == 1:  # cx, cy, w, h
                boxes = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
            return det.decode_boxes_scores(
                boxes,
                outputs["scores"],
                ratio,
                iou_thr=float(settings.get("iou_threshold") or 0.45),
                pre_thr=float(settings.get("score_threshold") or 0.0),
                score_thr=thr,
                offset=0.0,  # what the stripped ONNX NonMaxSuppression computed
            )
        raw = next(iter(outputs.values()))
        if raw.ndim == 3 and raw.shape[-1] == 5:
            return det.decode_yolox(raw, ratio, thr)
        boxes, scores = det.yolox_grid_decode(raw, self.info.input_hw)
        return det.decode_boxes_scores(boxes, scores, ratio, score_thr=thr)

"""YOLOX stand-in: CSPDarknet + PAFPN + decoupled head, NMS appended in ONNX like mmdeploy's end2end graph.

Architecture (Megvii YOLOX / mmdet ``YOLOX``): Focus stem, four CSP stages (the last with SPP 5/9/13),
PAFPN over strides 8/16/32, a decoupled head per level (1x1 stem, 2 cls convs, 2 reg convs, cls/reg/obj
1x1 predictions), one class (person; the MMPose Human-Art models). Conv + BN(eps 1e-3) + SiLU everywhere.

``forward`` returns the decoded raw outputs ``boxes`` (1, A, 4) xyxy in network-input pixels and
``scores`` (1, A, 1) = sigmoid(cls) * sigmoid(obj); ``finalize`` appends the post-processing that mmdeploy
puts in the SDK graph (``configs/mmdet/_base_/base_static.py``): pre top-k 5000 (only at 640, where
A = 8400), ONNX ``NonMaxSuppression`` (score 0.05, IoU 0.5, 200 boxes per class), a score-descending
top-k of at most 100, and the outputs ``dets`` (1, K, 5) float32 and ``labels`` (1, K) int64. K may be 0.
(The YOLOX test config's IoU 0.65 is what mmdet uses in Python; mmdeploy's exported graph uses 0.5. The
host keeps only boxes above 0.3, as upstream SpinePose does.)

Measured (1 class, FlopCounterMode, GFLOPs = 2 x MACs of conv/matmul, as YOLOX's own tool reports):
tiny 5.03 M params / 6.36 GFLOPs at 416, m 25.28 M / 73.3 GFLOPs, x 99.00 M / 281.0 GFLOPs at 640;
published (80 classes) 5.06 M / 6.45, 25.3 M / 73.8, 99.1 M / 281.9.

Score prior (a stand-in choice: YOLOX's prior_prob=0.01 would leave every score near 1e-4 and the NMS
path untested): cls bias 0, obj/cls prediction weights x ``PRED_GAIN``, boxes ``BOX_STRIDES`` strides
wide, and, set in ``finalize`` after the builder's BatchNorm calibration, per level the obj bias that lets
about ``PASSING_PER_LEVEL`` anchors per image pass 0.3 and at most ``CANDIDATES_PER_LEVEL`` pass 0.05 on
the packaged real images (``_set_score_prior``). yolox-tiny then gives 0-4 boxes above 0.3 and 6-38
above 0.05 per calibration image; a plain grey canvas gives none.
"""

from __future__ import annotations

import math
import re

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from ...errors import ExportError
from ..specs import ModelSpec
from .common import ConvModule as BaseConv
from .graph import unshare_initializers

EXPORT_BATCH = 1
STRIDES = (8, 16, 32)
NUM_CLASSES = 1
# (deepen, widen) per variant, from the YOLOX model zoo configs.
SCALES = {"tiny": (0.33, 0.375), "m": (0.67, 0.75), "x": (1.33, 1.25)}
# Our measured GFLOPs (2 x MACs of conv/matmul at the spec input size, 1 class), see the docstring.
DOCUMENTED_GFLOPS = {"tiny": 6.36, "m": 73.3, "x": 281.0}

# mmdeploy base_static post-processing, as baked into the released end2end.onnx.
SCORE_THRESHOLD = 0.05
IOU_THRESHOLD = 0.5
MAX_OUTPUT_BOXES_PER_CLASS = 200
PRE_TOP_K = 5000
KEEP_TOP_K = 100

PRED_GAIN = 1.5  # obj/cls prediction weights x this: a wider logit spread than PyTorch's default init
BOX_STRIDES = 4.0  # initial box side in strides
# Score prior, per image and level on the calibration images (see _set_score_prior): at most this many
# anchors above the host's 0.3 (upstream SpinePose keeps boxes above 0.3), and above the graph's 0.05.
PASSING_PER_LEVEL = 2.0
CANDIDATES_PER_LEVEL = 10.0
HOST_THRESHOLD = 0.3


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = BaseConv(cin, cout, 1)
        self.conv2 = BaseConv(cout, cout, 3)
        self.use_add = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """Cross-stage partial layer: two 1x1 branches, n bottlenecks on one, 1x1 fuse."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = int(cout * 0.5)
        self.conv1 = BaseConv(cin, hidden, 1)
        self.conv2 = BaseConv(cin, hidden, 1)
        self.conv3 = BaseConv(2 * hidden, cout, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class SPPBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = cin // 2
        self.conv1 = BaseConv(cin, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = BaseConv(hidden * (len(kernels) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(p(x) for p in self.pools)], dim=1))


class Focus(nn.Module):
    """Space-to-depth (4 pixel phases stacked on channels) then a 3x3 conv."""

    def __init__(self, cout: int) -> None:
        super().__init__()
        self.conv = BaseConv(12, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tl, tr = x[..., ::2, ::2], x[..., ::2, 1::2]
        bl, br = x[..., 1::2, ::2], x[..., 1::2, 1::2]
        return self.conv(torch.cat([tl, bl, tr, br], dim=1))


class CSPDarknet(nn.Module):
    def __init__(self, depth: float, width: float) -> None:
        super().__init__()
        c = int(width * 64)
        d = max(round(depth * 3), 1)
        self.stem = Focus(c)
        self.dark2 = nn.Sequential(BaseConv(c, c * 2, 3, 2), CSPLayer(c * 2, c * 2, d))
        self.dark3 = nn.Sequential(BaseConv(c * 2, c * 4, 3, 2), CSPLayer(c * 4, c * 4, d * 3))
        self.dark4 = nn.Sequential(BaseConv(c * 4, c * 8, 3, 2), CSPLayer(c * 8, c * 8, d * 3))
        self.dark5 = nn.Sequential(
            BaseConv(c * 8, c * 16, 3, 2),
            SPPBottleneck(c * 16, c * 16),
            CSPLayer(c * 16, c * 16, d, shortcut=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        return c3, c4, self.dark5(c4)


class PAFPN(nn.Module):
    """Top-down then bottom-up path aggregation over strides 8/16/32."""

    def __init__(self, depth: float, width: float) -> None:
        super().__init__()
        c3, c4, c5 = (int(ch * width) for ch in (256, 512, 1024))
        n = round(3 * depth)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c5, c4, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, n, False)
        self.reduce_conv1 = BaseConv(c4, c3, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, n, False)
        self.bu_conv2 = BaseConv(c3, c3, 3, 2)
        self.C3_n3 = CSPLayer(2 * c3, c4, n, False)
        self.bu_conv1 = BaseConv(c4, c4, 3, 2)
        self.C3_n4 = CSPLayer(2 * c4, c5, n, False)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x2, x1, x0 = feats
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([self.up(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.up(fpn_out1), x2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return pan_out2, pan_out1, pan_out0


class HeadLevel(nn.Module):
    """Decoupled head for one level: stem, cls branch, reg branch (+ objectness)."""

    def __init__(self, cin: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.stem = BaseConv(cin, hidden, 1)
        self.cls_convs = nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3))
        self.reg_convs = nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3))
        self.cls_pred = nn.Conv2d(hidden, num_classes, 1)
        self.reg_pred = nn.Conv2d(hidden, 4, 1)
        self.obj_pred = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        reg = self.reg_convs(x)
        return self.cls_pred(self.cls_convs(x)), self.reg_pred(reg), self.obj_pred(reg)


class YOLOX(nn.Module):
    """YOLOX with decoding; returns (boxes xyxy (1,A,4), scores (1,A,C))."""

    def __init__(self, depth: float, width: float, size: int, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = CSPDarknet(depth, width)
        self.neck = PAFPN(depth, width)
        hidden = int(256 * width)
        self.heads = nn.ModuleList(
            HeadLevel(int(ch * width), hidden, num_classes) for ch in (256, 512, 1024)
        )
        self.num_classes = num_classes
        grids, strides = [], []
        for stride in STRIDES:
            n = size // stride
            ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            grids.append(torch.stack([xs, ys], -1).reshape(-1, 2).float())
            strides.append(torch.full((n * n, 1), float(stride)))
        # Priors are constants of the static input size, as in mmdeploy's graph.
        self.register_buffer("grid", torch.cat(grids)[None], persistent=False)
        self.register_buffer("stride", torch.cat(strides)[None], persistent=False)
        self._init_predictions()

    def _init_predictions(self) -> None:
        with torch.no_grad():
            for head in self.heads:
                for conv in (head.cls_pred, head.obj_pred):
                    conv.weight.mul_(PRED_GAIN)
                head.cls_pred.bias.fill_(0.0)
                # YOLOX's prior_prob 0.01; finalize (_set_score_prior) replaces it
                head.obj_pred.bias.fill_(-4.6)
                # Boxes about BOX_STRIDES strides wide, so neighbouring anchors overlap and NMS has work.
                log_wh = math.log(BOX_STRIDES)
                head.reg_pred.bias.copy_(torch.tensor([0.0, 0.0, log_wh, log_wh]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.neck(self.backbone(x))
        cls, reg, obj = [], [], []
        for head, feat in zip(self.heads, feats, strict=True):
            c, r, o = head(feat)
            cls.append(c.flatten(2))
            reg.append(r.flatten(2))
            obj.append(o.flatten(2))
        cls_t = torch.cat(cls, 2).permute(0, 2, 1)
        reg_t = torch.cat(reg, 2).permute(0, 2, 1)
        obj_t = torch.cat(obj, 2).permute(0, 2, 1)
        xy = (reg_t[..., :2] + self.grid) * self.stride
        half_wh = torch.exp(reg_t[..., 2:]) * self.stride * 0.5
        boxes = torch.cat([xy - half_wh, xy + half_wh], -1)
        scores = torch.sigmoid(cls_t) * torch.sigmoid(obj_t)
        return boxes, scores


def create(spec: ModelSpec) -> nn.Module:
    """A YOLOX network for ``spec`` (yolox-tiny / -m / -x), random weights, eval mode."""
    depth, width = SCALES[spec.variant]
    return YOLOX(depth, width, spec.input_size[0]).eval()


def finalize(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    """Set the score prior from real images, then append the mmdeploy-style NMS tail (``add_nms``)."""
    unshare_initializers(model)
    _set_score_prior(model, spec)
    return add_nms(model, sum((spec.input_size[0] // s) ** 2 for s in STRIDES))


def add_nms(model: onnx.ModelProto, num_anchors: int) -> onnx.ModelProto:
    """Raw outputs (boxes (1,A,4), scores (1,A,C)) -> ``dets`` (1,K,5) float32, ``labels`` (1,K) int64.

    Pre top-k when A > PRE_TOP_K, NonMaxSuppression, then the best KEEP_TOP_K by score, descending.
    """
    graph = model.graph
    if len(graph.output) != 2:
        names = [o.name for o in graph.output]
        raise ExportError(f"yolox NMS tail: expected 2 raw outputs (boxes, scores), got {names}")
    # Rename whatever the exporter called the raw outputs, so the final names are free.
    raw = {graph.output[0].name: "raw_boxes", graph.output[1].name: "raw_scores"}
    for node in graph.node:
        node.input[:] = [raw.get(n, n) for n in node.input]
        node.output[:] = [raw.get(n, n) for n in node.output]
    graph.node.extend(_nms_nodes(num_anchors))
    graph.initializer.extend(_nms_constants(num_anchors > PRE_TOP_K))
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, "num_dets", 5]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, "num_dets"]),
        ]
    )
    return model


def _set_score_prior(model: onnx.ModelProto, spec: ModelSpec) -> None:
    """Rewrite each level's objectness bias so that, on the builder's real calibration images, about
    PASSING_PER_LEVEL anchors per image score above HOST_THRESHOLD and at most CANDIDATES_PER_LEVEL
    above the graph's SCORE_THRESHOLD.

    A random network's logits have heavy image- and level-dependent tails: one fixed bias gave no box
    on some images and the 100-box cap on others. Done here on the exported graph (ONNX Runtime on the
    head logits) because only after the builder's BatchNorm calibration are the logits realistic.
    """
    import onnxruntime as ort

    from .build import _calibration_batch

    graph = model.graph
    taps: dict[str, tuple[int, str]] = {}  # conv output -> (level, "cls" | "obj")
    obj_convs: dict[int, onnx.NodeProto] = {}
    for node in graph.node:
        # weights keep their parameter names; biases may not (the exporter merges equal initializers)
        match = re.fullmatch(r"heads\.(\d+)\.(cls|obj)_pred\.weight", node.input[1]) if len(node.input) == 3 else None
        if node.op_type == "Conv" and match:
            taps[node.output[0]] = (int(match[1]), match[2])
            if match[2] == "obj":
                obj_convs[int(match[1])] = node
    if len(taps) != 2 * len(STRIDES):
        raise ExportError(
            f"yolox finalize for '{spec.name}': found {len(taps)} head prediction convs, expected 6"
        )
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in taps)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del probe
    logits: dict[tuple[int, str], list[np.ndarray]] = {key: [] for key in taps.values()}
    images = _calibration_batch(spec)[::2]  # every other one: half the cost, the same kinds of frame
    for image in images:
        values = session.run(list(taps), {graph.input[0].name: image[None]})
        for name, value in zip(taps, values, strict=True):
            logits[taps[name]].append(value.reshape(-1))
    inits = {init.name: init for init in graph.initializer}
    for level, node in sorted(obj_convs.items()):
        old_bias = float(numpy_helper.to_array(inits[node.input[2]]).reshape(-1)[0])
        cls_prob = 1 / (1 + np.exp(-np.stack(logits[level, "cls"])))
        obj_raw = np.stack(logits[level, "obj"]) - old_bias
        bias = min(
            _bias_for_count(cls_prob, obj_raw, HOST_THRESHOLD, PASSING_PER_LEVEL * len(images)),
            _bias_for_count(cls_prob, obj_raw, SCORE_THRESHOLD, CANDIDATES_PER_LEVEL * len(images)),
        )
        name = f"heads.{level}.obj_pred.score_prior"
        graph.initializer.append(numpy_helper.from_array(np.array([bias], np.float32), name))
        node.input[2] = name
    used = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)


def _bias_for_count(cls_prob: np.ndarray, obj_raw: np.ndarray, threshold: float, count: float) -> float:
    """The largest obj bias with at most ``count`` scores above ``threshold`` (bisection; monotone)."""
    lo, hi = -40.0, 20.0
    for _ in range(40):
        mid = (lo + hi) / 2
        passing = int((cls_prob / (1 + np.exp(-(obj_raw + mid))) > threshold).sum())
        lo, hi = (lo, mid) if passing > count else (mid, hi)
    return lo


def _nms_constants(pre_top_k: bool) -> list[onnx.TensorProto]:
    values = {
        "nms_max_per_class": np.array([MAX_OUTPUT_BOXES_PER_CLASS], np.int64),
        "nms_iou": np.array([IOU_THRESHOLD], np.float32),
        "nms_score": np.array([SCORE_THRESHOLD], np.float32),
        "nms_keep_top_k": np.array([KEEP_TOP_K], np.int64),
        "nms_col_box": np.array(2, np.int64),
        "nms_col_class": np.array(1, np.int64),
        "nms_axis0": np.array([0], np.int64),
        "nms_axis1": np.array([1], np.int64),
    }
    if pre_top_k:
        values["nms_pre_top_k"] = np.array([PRE_TOP_K], np.int64)
    return [numpy_helper.from_array(value, name) for name, value in values.items()]


def _nms_nodes(num_anchors: int) -> list[onnx.NodeProto]:
    n = helper.make_node
    nodes = []
    boxes, scores = "raw_boxes", "raw_scores"
    if num_anchors > PRE_TOP_K:
        # mmdeploy keeps the pre_top_k best anchors (by max class score) before NMS.
        nodes += [
            n("ReduceMax", [scores], ["pre_max"], axes=[2], keepdims=0),
            n("TopK", ["pre_max", "nms_pre_top_k"], ["pre_val", "pre_idx"], axis=1),
            n("Squeeze", ["pre_idx", "nms_axis0"], ["pre_idx_1d"]),
            n("Gather", [boxes, "pre_idx_1d"], ["pre_boxes"], axis=1),
            n("Gather", [scores, "pre_idx_1d"], ["pre_scores"], axis=1),
        ]
        boxes, scores = "pre_boxes", "pre_scores"
    nodes += [
        n("Transpose", [scores], ["scores_t"], perm=[0, 2, 1]),  # (1, C, A)
        n(
            "NonMaxSuppression",
            [boxes, "scores_t", "nms_max_per_class", "nms_iou", "nms_score"],
            ["selected"],  # (M, 3): batch, class, box
            center_point_box=0,
        ),
        n("Gather", ["selected", "nms_col_box"], ["sel_box_idx"], axis=1),
        n("Gather", ["selected", "nms_col_class"], ["sel_labels"], axis=1),
        n("Squeeze", [boxes, "nms_axis0"], ["boxes_2d"]),
        n("Gather", ["boxes_2d", "sel_box_idx"], ["sel_boxes"], axis=0),
        n("GatherND", ["scores_t", "selected"], ["sel_scores"]),
        n("Shape", ["sel_scores"], ["num_sel"]),
        n("Min", ["num_sel", "nms_keep_top_k"], ["keep_k"]),
        n("TopK", ["sel_scores", "keep_k"], ["top_scores", "top_idx"], axis=0, largest=1, sorted=1),
        n("Gather", ["sel_boxes", "top_idx"], ["top_boxes"], axis=0),
        n("Gather", ["sel_labels", "top_idx"], ["top_labels"], axis=0),
        n("Unsqueeze", ["top_scores", "nms_axis1"], ["top_scores_2d"]),
        n("Concat", ["top_boxes", "top_scores_2d"], ["dets_2d"], axis=1),
        n("Unsqueeze", ["dets_2d", "nms_axis0"], ["dets"]),
        n("Unsqueeze", ["top_labels", "nms_axis0"], ["labels"]),
    ]
    return nodes


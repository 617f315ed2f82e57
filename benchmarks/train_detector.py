"""Train the YOLOX-tiny stand-in to find the figures of the synthetic world, and export it (not run in CI).

Same network and I/O contract as the stand-in (``zoo/standins/yolox.py``: CSPDarknet + PAFPN + decoupled
head, NMS appended in the graph); only the weights are learned, on frames from :mod:`spinepose_deploy.synth`
letterboxed by the pipeline's own ``yolox_feed``. Loss as YOLOX: SimOTA assignment (centre prior 2.5
strides, dynamic k from the top-10 IoUs, cost = score BCE + 3 x -log IoU), BCE objectness over all
anchors, IoU-aware class target, IoU loss 5 x (1 - IoU^2). AdamW, warm-up then cosine.

    python benchmarks/train_detector.py train --minutes 6 --batch 64 --workers 15 --out runs/detector  # GPU
    python benchmarks/train_detector.py export --weights runs/detector/last.pt --dest spinepose_deploy/data/trained

The export writes ``yolox-tiny.packed.onnx`` (float16-stored weights, see ``zoo/standins/trained.py``).

``--minutes`` is wall time on a GPU and CPU time of this process on a CPU (as train_standins.py). Frames are
rendered on the fly by DataLoader workers; scene seeds start at 600,000 (the pose training used the low
seeds; seeds >= 1,000,000 are the held-out set and never used). Results: data/trained/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spinepose_deploy.ops.detector import nms, yolox_feed
from spinepose_deploy.synth import dataset
from spinepose_deploy.synth.evaluate import evaluate_detector
from spinepose_deploy.synth.render import render_scene
from spinepose_deploy.zoo.specs import get_spec
from spinepose_deploy.zoo.standins import trained
from spinepose_deploy.zoo.standins import yolox as yolox_module

sys.path.insert(0, str(Path(__file__).parent))
from train_standins import one_cycle, write_packed  # noqa: E402

log = logging.getLogger("train_detector")
MODEL = "yolox-tiny"
FIRST_SEED = 600_000
MIN_SIDE = 4.0  # network pixels: slivers at the image edge are not targets
HOST_THRESHOLD = 0.3  # the pipeline keeps boxes above this


# ------------------------------------------------------------------ data


def frame(seed: int, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Letterboxed BGR 0-255 ``(3, h, w)``, boxes ``(G, 4)`` in network pixels, ratio; mirrored on odd seeds."""
    scene = render_scene(seed)
    image, boxes = scene.image, scene.boxes.copy()
    if seed % 2:
        width = image.shape[1]
        image = np.ascontiguousarray(image[:, ::-1])
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    feed, ratio = yolox_feed(image, input_hw)
    boxes = boxes * ratio
    keep = (boxes[:, 2:] - boxes[:, :2]).min(axis=1) >= MIN_SIDE
    return feed["input"][0], boxes[keep].astype(np.float32), ratio


class Frames(torch.utils.data.IterableDataset):
    """Endless rendered frames; worker ``i`` of ``n`` takes seeds ``first + i, first + i + n, ...``."""

    def __init__(self, first: int, input_hw: tuple[int, int]) -> None:
        self.first, self.input_hw = first, input_hw

    def __iter__(self):
        import cv2

        cv2.setNumThreads(1)
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        seed = self.first + worker
        while True:
            if seed >= dataset.HELDOUT_SEED:
                raise RuntimeError(f"training seeds reached the held-out range at {dataset.HELDOUT_SEED}")
            image, boxes, _ = frame(seed, self.input_hw)
            yield torch.from_numpy(image), torch.from_numpy(boxes)
            seed += workers


def collate(items):
    return torch.stack([i[0] for i in items]), [i[1] for i in items]


# ------------------------------------------------------------------ loss


def raw_outputs(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded boxes ``(B, A, 4)`` and the cls / obj logits ``(B, A)`` (the stand-in's forward, pre-sigmoid)."""
    cls, reg, obj = [], [], []
    for head, feat in zip(model.heads, model.neck(model.backbone(x)), strict=True):
        c, r, o = head(feat)
        cls.append(c.flatten(2))
        reg.append(r.flatten(2))
        obj.append(o.flatten(2))
    reg_t = torch.cat(reg, 2).permute(0, 2, 1).float()
    xy = (reg_t[..., :2] + model.grid) * model.stride
    half = torch.exp(reg_t[..., 2:].clamp(max=8.0)) * model.stride * 0.5
    boxes = torch.cat([xy - half, xy + half], -1)
    return boxes, torch.cat(cls, 2)[:, 0].float(), torch.cat(obj, 2)[:, 0].float()


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(len(a), len(b))`` of xyxy boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter + 1e-9)


@torch.no_grad()
def simota(boxes, cls, obj, gt, centers, strides) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOX's SimOTA for one image: (anchor indices, index of the matched ground-truth box for each)."""
    cx, cy = centers[:, 0], centers[:, 1]
    in_box = (cx > gt[:, :1]) & (cx < gt[:, 2:3]) & (cy > gt[:, 1:2]) & (cy < gt[:, 3:])
    gc = (gt[:, :2] + gt[:, 2:]) / 2
    radius = 2.5 * strides
    in_centre = ((cx - gc[:, :1]).abs() < radius) & ((cy - gc[:, 1:]).abs() < radius)
    candidates = (in_box | in_centre).any(0).nonzero()[:, 0]
    if len(candidates) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=gt.device)
        return empty, empty
    iou = box_iou(gt, boxes[candidates])
    score = (torch.sigmoid(cls[candidates]) * torch.sigmoid(obj[candidates])).sqrt()
    score_cost = -torch.log(score.clamp(min=1e-6))[None]  # BCE against 1 (F.binary_cross_entropy refuses autocast)
    both = (in_box & in_centre)[:, candidates]
    cost = score_cost + 3.0 * -torch.log(iou + 1e-8) + 1e5 * (~both)
    dynamic_k = iou.topk(min(10, iou.shape[1]), dim=1).values.sum(1).int().clamp(min=1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(len(gt)):
        matching[g, cost[g].topk(int(dynamic_k[g]), largest=False).indices] = True
    shared = matching.sum(0) > 1
    if shared.any():  # an anchor claimed by several boxes goes to the cheapest
        matching[:, shared] = False
        matching[cost[:, shared].argmin(0), shared.nonzero()[:, 0]] = True
    fg = matching.any(0)
    return candidates[fg], matching[:, fg].float().argmax(0)


def detector_loss(model, x: torch.Tensor, targets: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    boxes, cls, obj = raw_outputs(model, x)
    centers = (model.grid * model.stride)[0]
    strides = model.stride[0, :, 0]
    obj_target = torch.zeros_like(obj)
    iou_loss, cls_loss, fg_total = boxes.new_zeros(()), boxes.new_zeros(()), 0
    for b, gt in enumerate(targets):
        if len(gt) == 0:
            continue
        anchors, matched = simota(boxes[b].detach(), cls[b].detach(), obj[b].detach(), gt, centers, strides)
        if len(anchors) == 0:
            continue
        obj_target[b, anchors] = 1.0
        iou = box_iou(boxes[b, anchors], gt[matched]).diagonal()
        iou_loss = iou_loss + (1 - iou**2).sum()
        cls_loss = cls_loss + F.binary_cross_entropy_with_logits(cls[b, anchors], iou.detach(), reduction="sum")
        fg_total += len(anchors)
    fg = max(fg_total, 1)
    obj_loss = F.binary_cross_entropy_with_logits(obj, obj_target, reduction="sum")
    return (5.0 * iou_loss + obj_loss + cls_loss) / fg, fg_total


# ------------------------------------------------------------------ evaluation


def ap50_heldout(predict, count: int) -> dict:
    """AP50 and recall at the host threshold on the first ``count`` held-out scenes."""
    return evaluate_detector(predict, dataset.heldout_scenes(count), HOST_THRESHOLD)


def torch_predictor(model, input_hw, device):
    def predict(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed, ratio = yolox_feed(image, input_hw)
        with torch.no_grad():
            boxes, cls, obj = raw_outputs(model, torch.from_numpy(feed["input"]).to(device))
        score = (torch.sigmoid(cls) * torch.sigmoid(obj))[0].cpu().numpy()
        boxes = boxes[0].cpu().numpy()
        keep = score > yolox_module.SCORE_THRESHOLD
        boxes, score = boxes[keep], score[keep]
        order = nms(boxes, score, yolox_module.IOU_THRESHOLD, offset=0.0)[: yolox_module.KEEP_TOP_K]
        return boxes[order] / ratio, score[order]

    return predict


# ------------------------------------------------------------------ train


def train(args) -> None:
    spec = get_spec(MODEL)
    hw = tuple(spec.input_size)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    wall0 = time.perf_counter()
    model = yolox_module.create(spec).to(device).train()
    if args.resume:
        model.load_state_dict({k: v.float() for k, v in torch.load(args.resume, map_location=device).items()})
    model = model.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(
        Frames(FIRST_SEED + args.seed * 50_000, hw), batch_size=args.batch, num_workers=args.workers,
        collate_fn=collate, pin_memory=cuda, persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers else None,
    )
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    budget = args.minutes * 60.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start, step, seen = clock(), 0, 0
    for images, boxes in loader:
        elapsed = clock() - start
        if elapsed > budget or step >= args.max_steps:
            break
        for group in opt.param_groups:
            group["lr"] = one_cycle(max(step / args.max_steps, elapsed / budget), args.lr, args.warmup)
        x = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        targets = [b.to(device, non_blocking=True) for b in boxes]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss, fg = detector_loss(model, x, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        step += 1
        seen += len(images)
        if step % args.save_every == 0:
            torch.save({k: v.half() for k, v in model.state_dict().items()}, out / "last.pt")
        if step % args.log_every == 0:
            log.info("step %d  loss %.3f  fg/img %.1f  lr %.2e  %.0f img/s  %.1f min", step, loss.item(),
                     fg / len(images), opt.param_groups[0]["lr"], seen / (clock() - start), elapsed / 60)
    model.eval()
    torch.save({k: v.half() for k, v in model.state_dict().items()}, out / "last.pt")
    minutes = (clock() - start) / 60
    result = ap50_heldout(torch_predictor(model, hw, device), args.eval_scenes)
    log.info("final step %d (%d frames, %.1f min): AP50 %.3f  recall@0.3 %.3f (%d people)", step, seen, minutes,
             result["ap50"], result["recall_at_0.3"], result["people"])
    summary = {"model": MODEL, "steps": step, "batch": args.batch, "frames": seen, "minutes": round(minutes, 1),
               "clock": "wall" if cuda else "cpu", "wall_minutes": round((time.perf_counter() - wall0) / 60, 1),
               "device": torch.cuda.get_device_name() if cuda else "cpu", "seed": args.seed, "lr": args.lr,
               "torch": torch.__version__, **result}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


# ------------------------------------------------------------------ export


def export(args) -> Path:
    """The trained weights as the stand-in's graph: raw outputs, the mmdeploy NMS tail, stand-in metadata."""
    import onnx

    from spinepose_deploy.zoo.standins import build
    from spinepose_deploy.zoo.standins.graph import unshare_initializers

    spec = get_spec(MODEL)
    model = yolox_module.create(spec)
    model.load_state_dict({k: v.float() for k, v in torch.load(args.weights, map_location="cpu").items()})
    model.eval()
    dummy = torch.from_numpy(yolox_feed(render_scene(dataset.HELDOUT_SEED).image, spec.input_size)[0]["input"])
    proto = build._export(model, dummy, spec)
    unshare_initializers(proto)
    proto = yolox_module.add_nms(proto, sum((spec.input_size[0] // s) ** 2 for s in yolox_module.STRIDES))
    props = {"standin": "true", "trained": "synthetic", "model": MODEL, "seed": str(args.seed),
             "note": "stand-in architecture trained on spinepose_deploy.synth scenes - not the released weights"}
    onnx.helper.set_model_props(proto, props)
    build._declare_shapes(proto, spec)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString(deterministic=True)
    build._check_contract(data, spec, dummy.numpy())
    path = write_packed(data, MODEL, Path(args.dest))
    if args.eval_scenes:
        with tempfile.TemporaryDirectory() as tmp:
            restored = Path(tmp) / spec.filename
            restored.write_bytes(trained.unpack(onnx.load(str(path))).SerializeToString())
            result = ap50_heldout(onnx_predictor(restored, spec), args.eval_scenes)
        log.info("exported graph on %d held-out scenes: AP50 %.3f  recall@0.3 %.3f (%d people)", args.eval_scenes,
                 result["ap50"], result["recall_at_0.3"], result["people"])
    return path


def onnx_predictor(path: Path, spec):
    """The pipeline's path: yolox_feed, the graph with its NMS, decode at the graph's 0.05 score floor."""
    import onnxruntime as ort

    from spinepose_deploy.ops.detector import decode_yolox

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def predict(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed, ratio = yolox_feed(image, spec.input_size)
        dets, _ = session.run(None, feed)
        return decode_yolox(dets, ratio, score_thr=0.0)

    return predict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--minutes", type=float, default=6.0, help="wall minutes on a GPU, CPU minutes on a CPU")
    t.add_argument("--out", default="runs/detector")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--max-steps", type=int, default=100_000)
    t.add_argument("--warmup", type=float, default=0.05)
    t.add_argument("--workers", type=int, default=0, help="DataLoader processes rendering frames")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--save-every", type=int, default=500, help="steps between checkpoints (fp16 weights)")
    t.add_argument("--eval-scenes", type=int, default=200)
    t.add_argument("--resume", default=None)
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    e = sub.add_parser("export")
    e.add_argument("--weights", required=True)
    e.add_argument("--dest", default="spinepose_deploy/data/trained")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--eval-scenes", type=int, default=200)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if hasattr(args, "threads"):
        torch.set_num_threads(args.threads)
    {"train": train, "export": export}[args.cmd](args)


if __name__ == "__main__":
    main()

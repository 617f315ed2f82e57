"""Train the pose-s and lifter stand-ins on the synthetic world and export them to ONNX (not run in CI).

The networks are exactly the stand-in architectures (``zoo/standins/pose.py``, ``lifter.py``) with the
released I/O contract; only their weights are learned, on scenes from :mod:`spinepose_deploy.synth`.

    nice python benchmarks/train_standins.py pose   --minutes 55 --out runs/pose    # CPU minutes, 1 thread
    nice python benchmarks/train_standins.py lifter --minutes 26 --samples 200000 --level 0.75 --out runs/lifter
    python benchmarks/train_standins.py export --pose runs/pose/last.pt --lifter runs/lifter/last.pt \\
        --dest spinepose_deploy/data/trained

Pose: SimCC targets (Gaussian over the 2W / 2H bins, split ratio 2), KL loss on softmax(beta * logits) as
RTMPose's KLDiscretLoss, plus a small term pinning each visible keypoint's peak logit at 1 so decoded
scores are positive and comparable (the pipeline drops keypoints whose score is <= 0), plus training-only
deep supervision (heatmap heads on two backbone stages, dropped at export). AdamW, warm-up then cosine.
Lifter: L1 on root-relative metres from normalised camera coordinates with random keypoint drop-out and
left-right mirroring; ``--level`` is the share of skeletons seen through the level virtual camera the pipeline
feeds when it knows the camera (``ops.lifter.level_feed``). ``--minutes`` is CPU time of the process. A GPU
is used when torch sees one (``--device``); the CPU path is the reference. Results and the exact runs:
data/trained/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spinepose_deploy.ops.world import FOOT_IDS
from spinepose_deploy.synth import dataset, metrics
from spinepose_deploy.synth.render import RenderConfig
from spinepose_deploy.zoo.specs import get_spec
from spinepose_deploy.zoo.standins import lifter as lifter_module
from spinepose_deploy.zoo.standins import pose as pose_module

log = logging.getLogger("train_standins")
POSE_MODEL = "pose-s-v2"
BETA = 10.0  # KLDiscretLoss beta / label_beta (RTMPose)


# ------------------------------------------------------------------ pose


def simcc_targets(kpts: torch.Tensor, bins_x: int, bins_y: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian SimCC labels ``(N, K, bins)`` for crop-pixel keypoints ``(N, K, 2)`` (split ratio 2)."""
    xs = torch.arange(bins_x, dtype=torch.float32, device=kpts.device)
    ys = torch.arange(bins_y, dtype=torch.float32, device=kpts.device)
    mu = kpts * pose_module.SIMCC_SPLIT
    tx = torch.exp(-((xs - mu[..., :1]) ** 2) / (2 * sigma**2))
    ty = torch.exp(-((ys - mu[..., 1:]) ** 2) / (2 * sigma**2))
    return tx, ty


def kl_simcc(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per keypoint KL(softmax(BETA * target) || softmax(BETA * logits)), summed over bins ``(N, K)``."""
    log_p = F.log_softmax(logits * BETA, dim=-1)
    q = F.softmax(target * BETA, dim=-1)
    return (q * (torch.log(q.clamp_min(1e-12)) - log_p)).sum(-1)


def pose_loss(sx, sy, kpts, weight, sigma):
    tx, ty = simcc_targets(kpts, sx.shape[-1], sy.shape[-1], sigma)
    kl = kl_simcc(sx, tx) + kl_simcc(sy, ty)
    peak = (sx.amax(-1) - 1.0) ** 2 + (sy.amax(-1) - 1.0) ** 2
    denom = weight.sum().clamp_min(1.0)
    return (kl * weight).sum() / denom + 0.1 * (peak * weight).sum() / denom


def _pose_weights(kpts: np.ndarray, visible: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """1 for visible keypoints, 0.5 for occluded ones inside the crop, 0 outside (nothing to see there)."""
    inside = (kpts[..., 0] >= 0) & (kpts[..., 0] < hw[1]) & (kpts[..., 1] >= 0) & (kpts[..., 1] < hw[0])
    return np.where(visible, 1.0, np.where(inside, 0.5, 0.0)).astype(np.float32)


def one_cycle(progress: float, peak: float, warmup: float) -> float:
    """Linear warm-up from peak/10 over ``warmup``, then cosine down to peak/500 at progress 1."""
    if progress < warmup:
        return peak * (0.1 + 0.9 * progress / warmup)
    t = min(1.0, (progress - warmup) / max(1e-9, 1.0 - warmup))
    return peak * (0.002 + 0.998 * 0.5 * (1.0 + np.cos(np.pi * t)))


def evaluate_pose_model(model, people, scenes, spec, device) -> dict:
    from spinepose_deploy.synth.evaluate import evaluate_pose

    def run(feeds):
        with torch.no_grad():
            x = torch.from_numpy(feeds["input"]).to(device).contiguous(memory_format=torch.channels_last)
            sx, sy = model(x)
        return {"simcc_x": sx.float().cpu().numpy(), "simcc_y": sy.float().cpu().numpy()}

    model.eval()
    result = evaluate_pose(run, scenes, spec.input_size, people=people)
    model.train()
    return result


FINAL = 99  # key of the head's final_layer in DeepSupervision


class DeepSupervision(torch.nn.Module):
    """Training-only 1x1 heatmap heads on intermediate backbone stages (dropped at export).

    Each stage output gets a spatial cross-entropy against a Gaussian around every keypoint (sigma one
    cell): a dense, per-pixel signal that teaches the backbone where the markers are far sooner than the
    SimCC loss alone, which reaches the backbone only through the stride-32 bottleneck.
    """

    def __init__(self, model: torch.nn.Module, stages: tuple[int, ...] = (1, 2), final: bool = False) -> None:
        super().__init__()
        self.features: dict[int, torch.Tensor] = {}
        self.strides = {i: 2 ** (i + 2) for i in stages}  # stem /2, stage i /2**(i+2)
        channels = {i: model.backbone.stages[i][-1].final_conv[0].out_channels for i in stages}
        heads: dict[str, torch.nn.Module] = {
            str(i): torch.nn.Conv2d(channels[i], pose_module.NUM_KEYPOINTS, 1) for i in stages
        }
        for i in stages:
            model.backbone.stages[i].register_forward_hook(self._keep(i))
        if final:  # the head's own 7x7 conv output (stride 32) as heatmap logits: no extra layer
            self.strides[FINAL] = 32
            heads[str(FINAL)] = torch.nn.Identity()
            model.head.final_layer.register_forward_hook(self._keep(FINAL))
        self.heads = torch.nn.ModuleDict(heads)

    def _keep(self, index: int):
        def hook(_module, _inputs, output):
            self.features[index] = output
        return hook

    def loss(self, kpts: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        total = kpts.new_zeros(())
        for key, head in self.heads.items():
            logits = head(self.features[int(key)]).float()
            n, k, h, w = logits.shape
            stride = self.strides[int(key)]
            ys = (torch.arange(h, device=kpts.device, dtype=torch.float32) + 0.5) * stride
            xs = (torch.arange(w, device=kpts.device, dtype=torch.float32) + 0.5) * stride
            dx = (xs[None, None, None, :] - kpts[..., 0, None, None]) / stride
            dy = (ys[None, None, :, None] - kpts[..., 1, None, None]) / stride
            target = torch.exp(-0.5 * (dx**2 + dy**2)).reshape(n, k, -1)
            target = target / target.sum(-1, keepdim=True).clamp_min(1e-6)
            ce = -(target * F.log_softmax(logits.reshape(n, k, -1), dim=-1)).sum(-1)
            total = total + (ce * weight).sum() / weight.sum().clamp_min(1.0)
        self.features.clear()
        return total


def _take(samples, n: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunk = list(itertools.islice(samples, n))
    kp = np.stack([c[1] for c in chunk])
    return np.stack([c[0] for c in chunk]), kp, _pose_weights(kp, np.stack([c[2] for c in chunk]), hw)


def head_warmup(model, samples, args, hw, device) -> None:
    """BatchNorm statistics from synthetic crops, then the head alone on cached backbone features.

    Cheap (the backbone runs forward once per sample, no backward): the head learns to decode the
    seeded backbone's features, so the end-to-end phase starts with useful gradients for the backbone.
    """
    from spinepose_deploy.zoo.standins import build

    start = time.perf_counter()
    crops, _, _ = _take(samples, 64, hw)
    build._calibrate_bn(model, crops, get_spec(POSE_MODEL))
    model.eval()
    feats, kpts, weights = [], [], []
    with torch.no_grad():
        for _ in range(0, args.head_samples, 32):
            x, kp, w = _take(samples, 32, hw)
            xt = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            feats.append(model.backbone(xt).to(torch.float16).cpu())
            kpts.append(torch.from_numpy(kp))
            weights.append(torch.from_numpy(w))
    feats, kpts, weights = torch.cat(feats), torch.cat(kpts), torch.cat(weights)
    log.info("head warm-up: %d cached feature maps in %.1f min", len(feats), (time.perf_counter() - start) / 60)
    head = model.head
    head.train()
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.05)
    steps = args.head_epochs * (len(feats) // 64)
    g = torch.Generator().manual_seed(args.seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = one_cycle(step / steps, args.lr, 0.05)
        idx = torch.randint(0, len(feats), (64,), generator=g)
        sx, sy = head(feats[idx].float().to(device))
        loss = pose_loss(sx, sy, kpts[idx].to(device), weights[idx].to(device), args.sigma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 200 == 0:
            log.info("head step %d/%d loss %.4f", step, steps, loss.item())
    log.info("head warm-up done in %.1f min", (time.perf_counter() - start) / 60)


def shipped_pose_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state with the weights of the packaged pose graph, to fine-tune it (``--resume shipped``).

    The export folded each BatchNorm into the conv before it, so a conv takes the folded weight and bias and its
    BatchNorm becomes the identity (scale 1, mean 0, variance 1 - eps); convs and linears are matched in the
    order the network runs them, named weights by name. The restored network reproduces the graph to ~1e-5.
    """
    import onnx
    from onnx import numpy_helper

    from spinepose_deploy.zoo.standins import trained

    graph = trained.unpack(onnx.load(str(trained.packed_path(POSE_MODEL)))).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    called: list[tuple[str, torch.nn.Module]] = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: called.append((n, m)))
             for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    height, width = get_spec(POSE_MODEL).input_size
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, height, width, device=next(model.parameters()).device))
    for hook in hooks:
        hook.remove()
    modules = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    conv_calls = [c for c in called if isinstance(c[1], torch.nn.Conv2d)]
    linear_calls = [c for c in called if isinstance(c[1], torch.nn.Linear)]
    if len(convs) != len(conv_calls) or len(matmuls) != len(linear_calls):
        raise RuntimeError("the packaged pose graph does not match the pose stand-in's architecture")

    def put(key: str, value: np.ndarray) -> None:
        state[key] = torch.from_numpy(np.array(value, np.float32)).reshape(state[key].shape)

    for node, (name, conv) in zip(convs, conv_calls, strict=True):
        put(name + ".weight", weights[node.input[1]])
        bias = weights[node.input[2]] if len(node.input) > 2 else np.zeros(conv.out_channels, np.float32)
        if conv.bias is not None:
            put(name + ".bias", bias)
            continue
        parent, index = name.rsplit(".", 1)
        bn = f"{parent}.{int(index) + 1}"
        put(bn + ".weight", np.ones(conv.out_channels))
        put(bn + ".bias", bias)
        put(bn + ".running_mean", np.zeros(conv.out_channels))
        put(bn + ".running_var", np.full(conv.out_channels, 1.0 - modules[bn].eps))
    for node, (name, _) in zip(matmuls, linear_calls, strict=True):
        put(name + ".weight", weights[node.input[1]].T)
    for key in state:
        if key in weights:
            put(key, weights[key])
    return state


def train_pose(args) -> None:
    spec = get_spec(POSE_MODEL)
    hw = tuple(spec.input_size)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    # --minutes is CPU time of this process (warm-up included, evaluations excluded): on a shared machine
    # wall time says more about the neighbours than about the training
    t0, wall0 = time.process_time(), time.perf_counter()
    # channels_last: oneDNN's fast path on CPU (about 1.5x here for training)
    model = pose_module.create(spec).to(device).to(memory_format=torch.channels_last)
    samples = dataset.pose_samples(args.seed * 1_000_003 % 500_000, hw, RenderConfig(standing=args.standing))
    eval_scenes = dataset.heldout_scenes(args.eval_scenes)
    eval_people = dataset.people(eval_scenes)
    if args.resume == "shipped":
        model.load_state_dict(shipped_pose_state(model))
    elif args.resume:
        model.load_state_dict(torch.load(args.resume, map_location=device))
    elif args.head_samples > 0:
        head_warmup(model, samples, args, hw, device)
        result = evaluate_pose_model(model, eval_people, eval_scenes, spec, device)
        log.info("after head warm-up: PCK@0.05 %.3f  mean error %.3f of box", result["pck"], result["mean_error"])
    model.train()
    if args.resume == "shipped":  # its BatchNorm is folded into the convs: keep the (identity) statistics
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
    aux = DeepSupervision(model, final=args.aux_final).to(device) if args.aux > 0 else None
    decay, no_decay = [], []
    named = list(model.named_parameters()) + (list(aux.named_parameters()) if aux is not None else [])
    for name, p in named:
        (no_decay if p.ndim <= 1 or name.endswith((".gamma", ".beta")) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    budget_s = args.minutes * 60.0 - (time.process_time() - t0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.process_time()
    history = []
    step, last_eval, eval_cpu = 0, time.perf_counter(), 0.0
    while step < args.max_steps:
        elapsed = time.process_time() - start - eval_cpu
        if elapsed > budget_s:
            log.info("time budget of %.0f min reached at step %d", args.minutes, step)
            break
        # one cycle over whichever runs out first, steps or minutes (the CPU is shared: time is the budget)
        progress = max(step / args.max_steps, elapsed / budget_s)
        for group in opt.param_groups:
            group["lr"] = one_cycle(progress, args.lr, args.warmup)
        chunk = list(itertools.islice(samples, args.batch))
        x = torch.from_numpy(np.stack([c[0] for c in chunk])).to(device).contiguous(memory_format=torch.channels_last)
        kp = np.stack([c[1] for c in chunk])
        w = torch.from_numpy(_pose_weights(kp, np.stack([c[2] for c in chunk]), hw)).to(device)
        kp_t = torch.from_numpy(kp).to(device)
        sx, sy = model(x)
        loss = pose_loss(sx, sy, kp_t, w, args.sigma)
        if aux is not None:
            loss = loss + args.aux * aux.loss(kp_t, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            log.info("step %d  loss %.4f  lr %.2e  %.2f cpu-s/step  cpu %.1f min  wall %.1f min", step, loss.item(),
                     opt.param_groups[0]["lr"], elapsed / step, elapsed / 60, (time.perf_counter() - wall0) / 60)
        if time.perf_counter() - last_eval > args.eval_every * 60:
            torch.save(model.state_dict(), out / "last.pt")
            eval_start = time.process_time()
            result = evaluate_pose_model(model, eval_people, eval_scenes, spec, device)
            eval_cpu += time.process_time() - eval_start
            history.append({"step": step, "minutes": elapsed / 60, "pck": result["pck"]})
            log.info("eval step %d: PCK@0.05 %.3f  mean error %.3f of box (%d people)", step, result["pck"],
                     result["mean_error"], result["people"])
            last_eval = time.perf_counter()
    torch.save(model.state_dict(), out / "last.pt")
    minutes = (time.process_time() - t0 - eval_cpu) / 60
    wall = (time.perf_counter() - wall0) / 60
    result = evaluate_pose_model(model, eval_people, eval_scenes, spec, device)
    log.info("final step %d (%.1f cpu-min, %.1f wall-min): PCK@0.05 %.3f", step, minutes, wall, result["pck"])
    summary = {"model": POSE_MODEL, "steps": step, "batch": args.batch, "cpu_minutes": round(minutes, 1),
               "wall_minutes": round(wall, 1), "head_samples": args.head_samples, "head_epochs": args.head_epochs,
               "seed": args.seed, "lr": args.lr, "sigma_bins": args.sigma, "device": str(device),
               "resume": args.resume, "standing": args.standing,
               "threads": torch.get_num_threads(), "eval_scenes": args.eval_scenes,
               "pck": result["pck"], "history": history}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


# ------------------------------------------------------------------ lifter


def _mirror(xy: torch.Tensor, xyz: torch.Tensor, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror the chosen samples left-right (x -> -x, left/right keypoints swapped): an exact augmentation."""
    from spinepose_deploy.ops.skeleton import FLIP_PAIRS

    perm = list(range(xy.shape[1]))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    sign2 = torch.tensor([-1.0, 1.0], device=xy.device)
    sign3 = torch.tensor([-1.0, 1.0, 1.0], device=xy.device)
    f = flip.to(xy.device)[:, None, None]
    return torch.where(f, xy[:, perm] * sign2, xy), torch.where(f, xyz[:, perm] * sign3, xyz)


def train_lifter(args) -> None:
    spec = get_spec("lifter")
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    start = time.process_time()  # CPU time, sample generation included
    model = lifter_module.create(spec).to(device)
    if args.resume:
        model.load_state_dict(torch.load(args.resume, map_location=device))
    xy, _, target = dataset.lifter_samples(args.samples, seed=args.seed, level=args.level, standing=args.standing)
    vxy, _, vtarget = dataset.lifter_samples(2000, seed=dataset.HELDOUT_SEED, level=args.level)
    log.info("lifter: %d training samples in %.1f cpu-min", len(xy), (time.process_time() - start) / 60)
    mean_pose = target.mean(axis=0)
    weight = torch.ones(1, xy.shape[1], 1, device=device)
    weight[:, torch.from_numpy(FOOT_IDS)] = args.foot_weight  # the floor is fitted to the lifted feet
    x_t, y_t = torch.from_numpy(xy).to(device), torch.from_numpy(target).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    step = 0
    while step < args.max_steps:
        used = time.process_time() - start
        if used > args.minutes * 60:
            break
        for group in opt.param_groups:
            group["lr"] = one_cycle(max(step / args.max_steps, used / (args.minutes * 60)), args.lr, 0.05)
        idx = torch.randint(0, len(x_t), (args.batch,), generator=g)
        # extra random drop-out per batch: the pipeline zeroes keypoints whose score is under its threshold
        keep = torch.rand(args.batch, x_t.shape[1], 1, generator=g) >= 0.15 * torch.rand(args.batch, 1, 1, generator=g)
        x_b, y_b = _mirror(x_t[idx] * keep.to(device), y_t[idx], torch.rand(args.batch, generator=g) < 0.5)
        if args.noise > 0:  # the pose graph's 2D error: Gaussian, in units of the person's spread in the image
            spread = lifter_module.normalise(x_b)[:, -1].exp()[:, None, None]
            jitter = torch.randn(x_b.shape, generator=g).to(device) * args.noise * spread
            x_b = x_b + jitter * lifter_module.visible_mask(x_b)
        (pred,) = model(x_b)
        loss = ((pred - pred[:, 19:20] - y_b).abs() * weight).sum() / (weight.sum() * 3 * args.batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 500 == 0:
            log.info("lifter step %d loss %.4f (%.1f cpu-min)", step, loss.item(), used / 60)
    model.eval()
    with torch.no_grad():
        (pred,) = model(torch.from_numpy(vxy).to(device))
    pred = pred.cpu().numpy()
    mpjpe = metrics.mpjpe(pred, vtarget)
    baseline = metrics.mpjpe(np.broadcast_to(mean_pose, vtarget.shape), vtarget)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "last.pt")
    summary = {"model": "lifter", "steps": step, "batch": args.batch, "samples": args.samples, "seed": args.seed,
               "level": args.level,
               "minutes": round((time.process_time() - start) / 60, 1), "mpjpe_mm": mpjpe,
               "mean_pose_mpjpe_mm": baseline}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("lifter: MPJPE %.1f mm (mean-pose baseline %.1f mm)", mpjpe, baseline)


# ------------------------------------------------------------------ export


def export_onnx(model: torch.nn.Module, name: str, dest: Path, extra: dict) -> Path:
    """Export as the stand-in builder does: legacy exporter, opset 17, the spec's names and dynamic axes."""
    import onnx

    from spinepose_deploy.zoo.standins import build

    spec = get_spec(name)
    model = model.cpu().eval()
    in_names, out_names = build._io_names(spec.inputs, "input"), build._io_names(spec.outputs, "output")
    dynamic = {}
    for tname, tensor in zip(in_names + out_names, spec.inputs + spec.outputs, strict=True):
        axes = {i: d for i, d in enumerate(tensor.shape) if isinstance(d, str)}
        if axes:
            dynamic[tname] = axes
    shape = [1 if isinstance(d, str) else d for d in spec.inputs[0].shape]
    dummy = torch.zeros(*shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), buffer, dynamo=False, opset_version=build.OPSET, input_names=in_names,
                          output_names=out_names, dynamic_axes=dynamic or None, do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    props = {"standin": "true", "trained": "synthetic", "model": name,
             "note": "stand-in architecture trained on spinepose_deploy.synth scenes - not the released weights"}
    props.update({k: str(v) for k, v in extra.items()})
    onnx.helper.set_model_props(proto, props)
    build._declare_shapes(proto, spec)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString(deterministic=True)
    feed = np.concatenate([dummy.numpy()] * 2)  # batch 2: proves the batch axis is dynamic
    build._check_contract(data, spec, feed)
    return write_packed(data, name, dest)


def write_packed(data: bytes, name: str, dest: Path) -> Path:
    """Write the FP32 graph ``data`` as the package ships it: ``NAME.packed.onnx``, weights stored as float16."""
    import onnx

    from spinepose_deploy.zoo.standins import trained

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}{trained.PACKED_SUFFIX}"
    packed = trained.pack(onnx.load_from_string(data)).SerializeToString(deterministic=True)
    path.write_bytes(packed)
    log.info("wrote %s (%.1f MB, %.1f MB unpacked)", path, len(packed) / 1e6, len(data) / 1e6)
    return path


def export(args) -> None:
    dest = Path(args.dest)
    if args.pose:
        model = pose_module.create(get_spec(POSE_MODEL))
        model.load_state_dict(torch.load(args.pose, map_location="cpu"))
        export_onnx(model, POSE_MODEL, dest, {"seed": args.seed})
    if args.lifter:
        model = lifter_module.create(get_spec("lifter"))
        model.load_state_dict(torch.load(args.lifter, map_location="cpu"))
        export_onnx(model, "lifter", dest, {"seed": args.seed})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, lr, batch, steps in (("pose", 1.5e-3, 8, 100_000), ("lifter", 2e-3, 256, 100_000)):
        p = sub.add_parser(name)
        p.add_argument("--minutes", type=float, default=55.0 if name == "pose" else 26.0, help="CPU minutes")
        p.add_argument("--out", default=f"runs/{name}")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--lr", type=float, default=lr)
        p.add_argument("--batch", type=int, default=batch)
        p.add_argument("--max-steps", type=int, default=steps)
        # one thread: on a shared 2-core machine two OpenMP threads spin-wait on each other (measured 1.5-4x slower)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        if name == "pose":
            p.add_argument("--sigma", type=float, default=6.0, help="label Gaussian sigma in SimCC bins")
            p.add_argument("--warmup", type=float, default=0.05)
            p.add_argument("--eval-every", type=float, default=10.0, help="minutes")
            p.add_argument("--eval-scenes", type=int, default=60)
            p.add_argument("--resume", default=None,
                           help="start from these weights (a last.pt), or 'shipped': the packaged graph's")
            p.add_argument("--standing", type=float, default=0.0,
                           help="share of figures upright with flat feet, as the spine clips film")
            p.add_argument("--head-samples", type=int, default=0, help="cached crops for a head-only warm-up (0: none)")
            p.add_argument("--head-epochs", type=int, default=10)
            p.add_argument("--aux", type=float, default=1.0, help="weight of the deep-supervision heatmap loss")
            p.add_argument("--aux-final", action="store_true", help="also supervise the head's 7x7 conv maps")
        else:
            p.add_argument("--samples", type=int, default=200_000)
            p.add_argument("--foot-weight", type=float, default=1.0, help="loss weight of the heel and toe points")
            p.add_argument("--standing", type=float, default=0.4, help="share of upright flat-footed skeletons")
            p.add_argument("--noise", type=float, default=0.0, help="2D noise, a share of the person's spread")
            p.add_argument("--resume", default=None, help="start from these weights (a last.pt)")
            p.add_argument("--level", type=float, default=0.75,
                           help="share of samples seen through the level virtual camera (ops.lifter.level_feed)")
    e = sub.add_parser("export")
    e.add_argument("--pose")
    e.add_argument("--lifter")
    e.add_argument("--dest", default="spinepose_deploy/data/trained")
    e.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if hasattr(args, "threads"):
        torch.set_num_threads(args.threads)
    {"pose": train_pose, "lifter": train_lifter, "export": export}[args.cmd](args)


if __name__ == "__main__":
    main()

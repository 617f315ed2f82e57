"""Count a stand-in's FLOPs the way model cards do: 2 x multiply-accumulates of conv and matmul."""

from __future__ import annotations


def gflops(model, input_shape: tuple[int, ...]) -> float:
    """GFLOPs of one forward pass of ``model`` on zeros of ``input_shape`` (torch FlopCounterMode).

    Only conv/matmul-family ops are counted (norms, activations, pooling, grid_sample are not), which
    is what YOLOX's thop-based figures and most DETR model cards report.
    """
    # optional extra, loaded only when this feature runs
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # Parameters are frozen rather than using no_grad: the counter's module tracker rejects
    # grad-requiring views made under no_grad (e.g. a slice of a query embedding).
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with counter:
            model(torch.zeros(*input_shape))
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return counter.get_total_flops() / 1e9

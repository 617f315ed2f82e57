"""Lifter stand-in: a residual MLP from (N, 37, 2) normalised camera coordinates to (N, 37, 3).

The released lifter's architecture is not documented; this keeps the I/O contract and a realistic
cost (~2.3M parameters) without BatchNorm, so no calibration pass is needed. The graph normalises its own
input (the visible points centred on their mean and divided by their spread, with the centre and spread
as two extra features) so that one MLP serves a person anywhere in the frame and at any distance.
"""

from __future__ import annotations

import torch
from torch import nn

from ..specs import ModelSpec

HIDDEN = 1024
BLOCKS = 2


class ResidualBlock(nn.Module):
    """x + GELU(LayerNorm(Linear(x)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.norm(self.fc(x)))


def visible_mask(x: torch.Tensor) -> torch.Tensor:
    """``(N, K, 1)``: 1 for a visible point of ``x`` ``(N, K, 2)``, 0 for a zeroed one (a clamp, not a
    comparison, so every converter takes it)."""
    return torch.clamp(x.abs().sum(dim=-1, keepdim=True) * 1e6, 0.0, 1.0)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """``(N, K, 2)`` normalised camera coordinates (invisible points are exactly 0) -> ``(N, 2K + 3)``: the
    visible points centred and scaled to unit spread (invisible stay 0), then the centre and the log spread."""
    visible = visible_mask(x)
    count = visible.sum(dim=1, keepdim=True).clamp(min=1.0)
    centre = (x * visible).sum(dim=1, keepdim=True) / count
    spread = (((x - centre) ** 2).sum(dim=-1, keepdim=True) * visible).sum(dim=1, keepdim=True) / count
    spread = torch.sqrt(spread + 1e-8)
    local = (x - centre) / spread * visible
    return torch.cat([torch.flatten(local, 1), torch.flatten(centre, 1), torch.log(torch.flatten(spread, 1))], 1)


class Lifter(nn.Module):
    def __init__(self, keypoints: int, hidden: int = HIDDEN, blocks: int = BLOCKS) -> None:
        super().__init__()
        self.keypoints = keypoints
        self.inp = nn.Linear(keypoints * 2 + 3, hidden)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden) for _ in range(blocks)))
        self.out = nn.Linear(hidden, keypoints * 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        y = self.out(self.blocks(self.inp(normalise(x))))
        return (y.reshape(-1, self.keypoints, 3),)


def create(spec: ModelSpec) -> nn.Module:
    """The lifter MLP for ``spec.input_size`` = (keypoints, 2)."""
    return Lifter(spec.input_size[0])

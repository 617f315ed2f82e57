"""Lifter stand-in: a residual MLP from (N, 37, 2) normalised camera coordinates to (N, 37, 3).

The released lifter's architecture is not documented; this keeps the I/O contract and a realistic
cost (~2.3M parameters) without BatchNorm, so no calibration pass is needed.
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


class Lifter(nn.Module):
    def __init__(self, keypoints: int, hidden: int = HIDDEN, blocks: int = BLOCKS) -> None:
        super().__init__()
        self.keypoints = keypoints
        self.inp = nn.Linear(keypoints * 2, hidden)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden) for _ in range(blocks)))
        self.out = nn.Linear(hidden, keypoints * 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        y = self.out(self.blocks(self.inp(torch.flatten(x, 1))))
        return (y.reshape(-1, self.keypoints, 3),)


def create(spec: ModelSpec) -> nn.Module:
    """The lifter MLP for ``spec.input_size`` = (keypoints, 2)."""
    return Lifter(spec.input_size[0])

"""Torch building blocks shared by the stand-ins, written after mmcv/mmdet's definitions.

Names and defaults follow mmdet so parameter counts line up with the released models: a
``ConvModule`` is Conv2d without bias + BatchNorm (eps 1e-3, momentum 0.03) + SiLU.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


class ConvModule(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU, 'same' padding for odd kernels."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, k, s, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.SiLU() if act else nn.Identity(),
        )


class DepthwiseSeparableConvModule(nn.Sequential):
    """Depthwise ConvModule (k x k) followed by a pointwise ConvModule (1 x 1)."""

    def __init__(self, cin: int, cout: int, k: int, s: int = 1) -> None:
        super().__init__(ConvModule(cin, cin, k, s, groups=cin), ConvModule(cin, cout, 1))


class SPPFBottleneck(nn.Module):
    """Fast spatial pyramid pooling: one 5x5 max-pool applied three times in sequence."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.pool = nn.MaxPool2d(k, stride=1, padding=k // 2)
        self.conv2 = ConvModule(mid * 4, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        p1 = self.pool(x)
        p2 = self.pool(p1)
        return self.conv2(torch.cat([x, p1, p2, self.pool(p2)], dim=1))


class ChannelAttention(nn.Module):
    """Squeeze-and-excite without reduction: global average pool, 1x1 conv with bias, hard sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.pool(x)))


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

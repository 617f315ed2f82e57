"""RTMPose stand-in: CSPNeXt-P5 backbone (mmdet) + RTMCC SimCC head with a gated attention unit (mmpose).

Only the stride-32 feature map of the last stage feeds the head, as in RTMPose's top-down configs.
Output: ``simcc_x`` (N, K, 2W) and ``simcc_y`` (N, K, 2H) with split ratio 2.0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..specs import ModelSpec
from .common import ChannelAttention, ConvModule, DepthwiseSeparableConvModule, SPPFBottleneck

NUM_KEYPOINTS = 37
SIMCC_SPLIT = 2.0
# variant -> (deepen_factor, widen_factor), from the RTMPose configs
FACTORS = {"s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
# CSPNeXt P5: (in, out, blocks, add_identity, use_spp) per stage, before the factors
P5_ARCH = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False),
           (512, 1024, 3, False, True))


class CSPNeXtBlock(nn.Module):
    """3x3 ConvModule then a 5x5 depthwise-separable ConvModule, optional residual."""

    def __init__(self, cin: int, cout: int, add_identity: bool) -> None:
        super().__init__()
        self.conv1 = ConvModule(cin, cout, 3)
        self.conv2 = DepthwiseSeparableConvModule(cout, cout, 5)
        self.add_identity = add_identity and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: main path of CSPNeXt blocks, 1x1 shortcut path, channel attention."""

    def __init__(self, cin: int, cout: int, blocks: int, add_identity: bool) -> None:
        super().__init__()
        mid = int(cout * 0.5)
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, mid, add_identity) for _ in range(blocks)))
        self.attention = ChannelAttention(2 * mid)
        self.final_conv = ConvModule(2 * mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.blocks(self.main_conv(x))
        return self.final_conv(self.attention(torch.cat([main, self.short_conv(x)], dim=1)))


class CSPNeXt(nn.Module):
    """CSPNeXt-P5 backbone returning the stride-32 map of the last stage."""

    def __init__(self, deepen: float, widen: float) -> None:
        super().__init__()
        stem = int(P5_ARCH[0][0] * widen)
        half = stem // 2
        self.stem = nn.Sequential(
            ConvModule(3, half, 3, 2), ConvModule(half, half, 3), ConvModule(half, stem, 3)
        )
        stages = []
        for cin, cout, blocks, add_identity, use_spp in P5_ARCH:
            cin, cout = int(cin * widen), int(cout * widen)
            layers: list[nn.Module] = [ConvModule(cin, cout, 3, 2)]
            if use_spp:
                layers.append(SPPFBottleneck(cout, cout, 5))
            layers.append(CSPLayer(cout, cout, max(round(blocks * deepen), 1), add_identity))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.out_channels = int(P5_ARCH[-1][1] * widen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class ScaleNorm(nn.Module):
    """x / (||x||_2 * dim**-0.5) * g, with a single learned scalar g."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """Learned per-channel scale on the shortcut."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RTMCCBlock(nn.Module):
    """Gated attention unit over the keypoint tokens (self-attention, no relative-position bias)."""

    def __init__(self, dim: int = 256, expansion: int = 2, s: int = 128) -> None:
        super().__init__()
        self.e = dim * expansion
        self.s = s
        self.ln = ScaleNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.act = nn.SiLU()
        self.gamma = nn.Parameter(torch.empty(2, s))
        self.beta = nn.Parameter(torch.zeros(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.res_scale = Scale(dim)
        nn.init.normal_(self.gamma, std=0.02)  # as mmpose
        nn.init.xavier_uniform_(self.uv.weight)
        nn.init.xavier_uniform_(self.o.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=-1)
        base = base.unsqueeze(2) * self.gamma + self.beta  # (N, K, 2, s)
        q, k = base[:, :, 0], base[:, :, 1]
        kernel = torch.square(torch.relu(torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.s)))
        return self.res_scale(x) + self.o(u * torch.matmul(kernel, v))


class RTMCCHead(nn.Module):
    """7x7 conv to K maps, flatten, ScaleNorm + Linear to tokens, GAU, SimCC classifiers."""

    def __init__(self, cin: int, input_size: tuple[int, int], keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        height, width = input_size
        flat = (height // 32) * (width // 32)
        self.final_layer = nn.Conv2d(cin, keypoints, 7, padding=3)
        self.mlp = nn.Sequential(ScaleNorm(flat), nn.Linear(flat, 256, bias=False))
        self.gau = RTMCCBlock(256)
        self.cls_x = nn.Linear(256, int(width * SIMCC_SPLIT), bias=False)
        self.cls_y = nn.Linear(256, int(height * SIMCC_SPLIT), bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.gau(self.mlp(torch.flatten(self.final_layer(x), 2)))
        return self.cls_x(tokens), self.cls_y(tokens)


class RTMPose(nn.Module):
    def __init__(self, variant: str, input_size: tuple[int, int]) -> None:
        super().__init__()
        deepen, widen = FACTORS[variant]
        self.backbone = CSPNeXt(deepen, widen)
        self.head = RTMCCHead(self.backbone.out_channels, input_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))


def create(spec: ModelSpec) -> nn.Module:
    """The RTMPose network for ``spec.variant`` at ``spec.input_size`` (height, width)."""
    return RTMPose(spec.variant, spec.input_size)

"""MobileOne (Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023).

Neither torchvision nor timm provides it with the keys of the published TSM checkpoint
(MMAction2's ``mobileone_tsm.py`` on mmpretrain's ``mmpretrain/models/backbones/mobileone.py``),
so it is built here with mmpretrain's module names: ``stage0`` and ``stage1``-``stage4`` of
MobileOneBlocks, each with ``branch_conv_list.K.{conv,norm}``, ``branch_scale.{conv,norm}``
(kxk blocks), ``branch_norm`` (identity branch when the shape is kept) and ``se.conv{1,2}.conv``
(squeeze-excitation in the last blocks of a stage). Every block of a stage is a depthwise 3x3
block followed by a pointwise 1x1 block.

In training a block sums its branches; for inference they fuse into one conv with bias
(:meth:`MobileOne.reparameterize`, mmpretrain's ``switch_to_deploy``), keys ``branch_reparam.*``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class MobileOneArch:
    """Blocks, width factors (of 64, 128, 256, 512 channels), conv branches and SE blocks per stage."""

    num_blocks: tuple[int, ...]
    width_factors: tuple[float, ...]
    num_conv_branches: tuple[int, ...]
    num_se_blocks: tuple[int, ...]


# mmpretrain's arch_zoo entry for S4, the variant MMAction2 publishes as a TSM.
MOBILEONE_ARCHS: dict[str, MobileOneArch] = {
    "s4": MobileOneArch((2, 8, 10, 1), (3.0, 3.5, 3.5, 4.0), (1, 1, 1, 1), (0, 0, 5, 1)),
}
_BASE_CHANNELS = (64, 128, 256, 512)


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``, never below 90%)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv(in_channels: int, out_channels: int, bias: bool = True) -> nn.Sequential:
    """A 1x1 conv stored as ``conv`` (mmcv's ConvModule without norm: ``conv1.conv.weight``)."""
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 1, bias=bias)))


class SqueezeExcite(nn.Module):
    """x * sigmoid(conv2(relu(conv1(mean over H, W of x)))), squeezed to channels/16 (mmpretrain SELayer)."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        squeezed = _make_divisible(channels // ratio)
        self.conv1 = _conv(channels, squeezed)
        self.conv2 = _conv(squeezed, channels)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(weight)


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int
) -> nn.Sequential:
    conv = nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
    )
    return nn.Sequential(OrderedDict(conv=conv, norm=nn.BatchNorm2d(out_channels)))


def _fuse(conv_weight: Tensor, norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The weight and bias of one conv equal to conv (no bias) followed by ``norm`` (eval mode)."""
    scale = norm.weight / (norm.running_var + norm.eps).sqrt()
    return conv_weight * scale.reshape(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class MobileOneBlock(nn.Module):
    """ReLU(SE(sum of branches)): ``num_convs`` kxk conv+BN, a 1x1 conv+BN when k > 1, a BN alone
    when the shape is kept; or, reparameterized, one kxk conv with bias (``branch_reparam``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_convs: int,
        stride: int = 1,
        groups: int = 1,
        se: bool = False,
        reparameterized: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.se = SqueezeExcite(out_channels) if se else nn.Identity()
        self.act = nn.ReLU()
        if reparameterized:
            self._add_reparam()
            return
        self.branch_reparam = None
        keeps_shape = in_channels == out_channels and stride == 1
        self.branch_norm = nn.BatchNorm2d(in_channels) if keeps_shape else None
        self.branch_scale = (
            _conv_bn(in_channels, out_channels, 1, stride, groups) if kernel_size > 1 else None
        )
        self.branch_conv_list = nn.ModuleList(
            _conv_bn(in_channels, out_channels, kernel_size, stride, groups) for _ in range(num_convs)
        )

    def _add_reparam(self) -> None:
        self.branch_reparam = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.kernel_size // 2,
            groups=self.groups,
            bias=True,
        )

    @property
    def reparameterized(self) -> bool:
        return self.branch_reparam is not None

    def _branches(self, x: Tensor) -> Tensor:
        if self.branch_reparam is not None:
            return self.branch_reparam(x)
        out = self.branch_norm(x) if self.branch_norm is not None else 0
        if self.branch_scale is not None:
            out = out + self.branch_scale(x)
        for branch in self.branch_conv_list:
            out = out + branch(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.se(self._branches(x)))

    @torch.no_grad()
    def fused_weight_and_bias(self) -> tuple[Tensor, Tensor]:
        """The kxk conv weight and bias that equal the sum of the branches in eval mode."""
        weight = torch.zeros_like(self.branch_conv_list[0].conv.weight)
        bias = torch.zeros(self.out_channels, dtype=weight.dtype, device=weight.device)
        centre = self.kernel_size // 2
        for branch in self.branch_conv_list:
            branch_weight, branch_bias = _fuse(branch.conv.weight, branch.norm)
            weight += branch_weight
            bias += branch_bias
        if self.branch_scale is not None:  # the 1x1 kernel sits at the centre of the kxk one
            scale_weight, scale_bias = _fuse(self.branch_scale.conv.weight, self.branch_scale.norm)
            weight += F.pad(scale_weight, [centre] * 4)
            bias += scale_bias
        if self.branch_norm is not None:  # identity = a kxk kernel with 1 at the centre of its own channel
            identity = torch.zeros_like(weight)
            per_group = self.in_channels // self.groups
            channels = torch.arange(self.in_channels, device=weight.device)
            identity[channels, channels % per_group, centre, centre] = 1
            norm_weight, norm_bias = _fuse(identity, self.branch_norm)
            weight += norm_weight
            bias += norm_bias
        return weight, bias

    def reparameterize(self) -> None:
        """Fuse the branches into ``branch_reparam`` (uses the BatchNorm running statistics)."""
        if self.reparameterized:
            return
        weight, bias = self.fused_weight_and_bias()
        device = weight.device
        self._add_reparam()
        self.branch_reparam.to(device=device, dtype=weight.dtype)
        self.branch_reparam.weight.data.copy_(weight)
        self.branch_reparam.bias.data.copy_(bias)
        del self.branch_conv_list, self.branch_scale, self.branch_norm

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, groups={self.groups}"


class MobileOne(nn.Module):
    """MobileOne image classifier: images (B, 3, H, W) -> logits (B, num_classes).

    The classifier is ``head.fc`` (mmpretrain's ``LinearClsHead``) after global average pooling;
    tsm replaces ``head`` to take the pooled features.
    """

    def __init__(
        self, arch: str | MobileOneArch = "s4", num_classes: int = 1000, reparameterized: bool = False
    ) -> None:
        super().__init__()
        if isinstance(arch, str):
            if arch not in MOBILEONE_ARCHS:
                raise ValueError(f"unknown MobileOne arch {arch!r}: known are {', '.join(MOBILEONE_ARCHS)}")
            arch = MOBILEONE_ARCHS[arch]
        self.arch = arch
        channels = min(64, int(_BASE_CHANNELS[0] * arch.width_factors[0]))
        self.stage0 = MobileOneBlock(3, channels, 3, 1, stride=2, reparameterized=reparameterized)
        for index, (base, factor) in enumerate(zip(_BASE_CHANNELS, arch.width_factors, strict=True)):
            planes = int(base * factor)
            blocks = []
            count, with_se = arch.num_blocks[index], arch.num_se_blocks[index]
            branches = arch.num_conv_branches[index]
            for block in range(count):
                se = block >= count - with_se
                stride = 2 if block == 0 else 1
                blocks.append(  # depthwise
                    MobileOneBlock(channels, channels, 3, branches, stride, channels, se, reparameterized)
                )
                blocks.append(  # pointwise
                    MobileOneBlock(channels, planes, 1, branches, 1, 1, se, reparameterized)
                )
                channels = planes
            self.add_module(f"stage{index + 1}", nn.Sequential(*blocks))
        self.head = nn.Sequential(OrderedDict(fc=nn.Linear(channels, num_classes)))

    @property
    def stages(self) -> list[nn.Sequential]:
        """stage1 to stage4 (stage0 is the stem block)."""
        return [self.stage1, self.stage2, self.stage3, self.stage4]

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage4(self.stage3(self.stage2(self.stage1(self.stage0(x)))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def reparameterize(self) -> MobileOne:
        """Fuse every block for inference, in place (mmpretrain's ``switch_to_deploy``); returns self."""
        for module in self.modules():
            if isinstance(module, MobileOneBlock):
                module.reparameterize()
        return self

"""Turn torchvision ResNets and MobileNetV2 into TSM networks by inserting temporal shifts."""

from __future__ import annotations

from typing import Literal

import torchvision
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from tsm.ops import ShiftMode, TemporalPool, TemporalShift

Placement = Literal["blockres", "block"]
PLACEMENTS: tuple[str, ...] = ("blockres", "block")

SUPPORTED_NETWORKS = "torchvision ResNet-18/34/50/101/152 (torchvision.models.ResNet) and MobileNetV2"


def is_temporal(net: nn.Module) -> bool:
    """True when ``net`` already contains temporal shifts or temporal pooling."""
    return any(isinstance(m, TemporalShift | TemporalPool) for m in net.modules())


def shifted_modules(net: nn.Module) -> list[TemporalShift]:
    """The temporal shifts inside ``net``, in forward order."""
    return [m for m in net.modules() if isinstance(m, TemporalShift)]


def _shift_resnet(
    net: torchvision.models.ResNet,
    segments_per_stage: list[int],
    fold_div: int,
    place: str,
    mode: ShiftMode,
) -> None:
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    # Deep nets (ResNet-101/152, >= 23 blocks in layer3) shift every other block only.
    every = 2 if len(stages[2]) >= 23 else 1
    for stage, segments in zip(stages, segments_per_stage, strict=True):
        for index, block in enumerate(stage):
            if place == "block":
                stage[index] = TemporalShift(block, segments, fold_div, mode)
            elif index % every == 0:
                block.conv1 = TemporalShift(block.conv1, segments, fold_div, mode)


def _mobilenet_shift_positions(net: torchvision.models.MobileNetV2) -> list[int]:
    """Indices in ``features`` of the inverted residuals with a residual and an expansion layer."""
    return [
        index
        for index, block in enumerate(net.features)
        if isinstance(block, InvertedResidual) and block.use_res_connect and len(block.conv) == 4
    ]


def _shift_mobilenet(net: torchvision.models.MobileNetV2, num_segments: int, fold_div: int, mode) -> None:
    for index in _mobilenet_shift_positions(net):
        expansion = net.features[index].conv[0]  # Conv2dNormActivation: [0] is the 1x1 Conv2d
        expansion[0] = TemporalShift(expansion[0], num_segments, fold_div, mode)


def add_temporal_pool(net: nn.Module, num_segments: int) -> nn.Module:
    """Max-pool time before ``layer2`` of a torchvision ResNet (the reference's ``tpool``)."""
    if not isinstance(net, torchvision.models.ResNet):
        raise TypeError(f"temporal pooling supports torchvision ResNets only, not {type(net).__name__}")
    if isinstance(net.layer2, TemporalPool):
        raise ValueError("this network already has temporal pooling; adding it twice is refused")
    net.layer2 = TemporalPool(net.layer2, num_segments)
    return net


def make_temporal_shift(
    net: nn.Module,
    num_segments: int,
    fold_div: int = 8,
    place: Placement = "blockres",
    temporal_pool: bool = False,
    mode: ShiftMode = "bidirectional",
) -> nn.Module:
    """Insert temporal shifts into a torchvision 2D network, in place, and return it.

    ResNet: ``"blockres"`` shifts before each block's ``conv1`` (the identity path stays
    unshifted; every other block when layer3 has >= 23 blocks); ``"block"`` shifts the whole block
    input. ``temporal_pool`` max-pools time before ``layer2`` (later stages see T/2 frames).
    MobileNetV2: shifts before the expansion conv of the 10 inverted residuals that have a
    residual connection (``features`` 3, 5, 6, 8, 9, 10, 12, 13, 15, 16).
    """
    if place not in PLACEMENTS:
        raise ValueError(f"unknown shift placement {place!r}: use one of {', '.join(PLACEMENTS)}")
    if is_temporal(net):
        raise ValueError("this network already contains temporal shifts; converting it twice is refused")
    if isinstance(net, torchvision.models.ResNet):
        if temporal_pool:
            if num_segments < 2:
                raise ValueError("temporal_pool needs num_segments >= 2")
            pooled = (num_segments + 1) // 2
            segments = [num_segments, pooled, pooled, pooled]
        else:
            segments = [num_segments] * 4
        _shift_resnet(net, segments, fold_div, place, mode)
        return add_temporal_pool(net, num_segments) if temporal_pool else net
    if isinstance(net, torchvision.models.MobileNetV2):
        if place != "blockres" or temporal_pool:
            raise ValueError("MobileNetV2 supports place='blockres' without temporal_pool only")
        _shift_mobilenet(net, num_segments, fold_div, mode)
        return net
    raise TypeError(f"cannot add temporal shifts to {type(net).__name__}: supported are {SUPPORTED_NETWORKS}")

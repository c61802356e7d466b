"""One spec per backbone: how to build it, where its classifier is, where shifts go, whether it
supports temporal pooling, and how its weights reveal it. Adding a backbone touches this file only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torchvision
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from tsm.models.layouts import is_reference_mobilenet, reference_mobilenet_to_torchvision
from tsm.models.mobileone import MobileOne
from tsm.ops import ShiftMode, TemporalShift

Placement = Literal["blockres", "block"]
PLACEMENTS: tuple[str, ...] = ("blockres", "block")
StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Setting:
    """A configuration value and where it was read from (shown to the user)."""

    value: Any
    source: str


# insert_shifts(net, segments per stage, fold_div, place, mode): wrap layers in TemporalShift, in place.
ShiftInserter = Callable[[nn.Module, list[int], int, Placement, ShiftMode], None]
# reveal(state): the backbone's settings read from tsm-layout weights (base_model.*), or None.
Revealer = Callable[[StateDict], "dict[str, Setting] | None"]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything tsm needs to know about one 2D backbone.

    ``build`` makes the network with random weights and its ImageNet classifier (named ``head``),
    as torchvision's builders do; ``weights_name`` is the torchvision model name whose weights enum
    serves ``pretrained="imagenet"`` (None: no ImageNet weights through torchvision), else
    ``imagenet_url`` is the file that ``pretrained="imagenet"`` downloads.
    """

    name: str
    build: Callable[[], nn.Module]
    network_type: type[nn.Module]
    head: str
    insert_shifts: ShiftInserter
    placements: tuple[Placement, ...]
    supports_temporal_pool: bool
    reveal: Revealer
    weights_name: str | None = None
    # Renames another implementation's ImageNet weights to this backbone's keys (else unchanged).
    adapt_imagenet_state: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    imagenet_url: str | None = None

    def feature_dim(self, net: nn.Module) -> int:
        """Width of the features that the (removed) classifier took."""
        head = getattr(net, self.head)
        last = head[-1] if isinstance(head, nn.Sequential) else head
        return last.in_features


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add ``spec`` to the backbones every model factory and checkpoint loader knows."""
    if spec.name in BACKBONES:
        raise ValueError(f"backbone {spec.name!r} is registered already")
    BACKBONES[spec.name] = spec
    return spec


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of a registered backbone, or a ValueError listing the registered ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: supported are {', '.join(BACKBONES)}")
    return BACKBONES[name]


def spec_of_network(net: nn.Module) -> BackboneSpec | None:
    """The spec whose network type ``net`` is (the first such: ResNets share one type)."""
    return next((spec for spec in BACKBONES.values() if isinstance(net, spec.network_type)), None)


def reveal_backbone(state: StateDict) -> dict[str, Setting] | None:
    """The settings of the first backbone family that recognises ``state``'s keys."""
    for reveal in dict.fromkeys(spec.reveal for spec in BACKBONES.values()):
        settings = reveal(state)
        if settings is not None:
            return settings
    return None


# --- ResNet ----------------------------------------------------------------------------------------
_RESNET_BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
# A block's keys; ``block.`` is the wrapper of a block followed by a non-local block.
_RESNET_BLOCK_KEY = re.compile(r"^base_model\.layer(\d)\.(net\.)?(\d+)\.(?:block\.)?(.+)$")


def _shift_resnet(
    net: nn.Module, segments_per_stage: list[int], fold_div: int, place: Placement, mode: ShiftMode
) -> None:
    """``blockres``: shift before each block's conv1 (every other block once layer3 has >= 23
    blocks, the reference's n_round); ``block``: shift the whole block input."""
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    every = 2 if len(stages[2]) >= 23 else 1
    for stage, segments in zip(stages, segments_per_stage, strict=True):
        for index, block in enumerate(stage):
            if place == "block":
                stage[index] = TemporalShift(block, segments, fold_div, mode)
            elif index % every == 0:
                block.conv1 = TemporalShift(block.conv1, segments, fold_div, mode)


def _reveal_resnet(state: StateDict) -> dict[str, Setting] | None:
    """Depth, shift placement and temporal pooling of a ResNet from its block keys."""
    if not any(key.startswith("base_model.layer1.") for key in state):
        return None
    blocks: dict[int, set[int]] = {1: set(), 2: set(), 3: set(), 4: set()}
    wrapped_blocks, shifted_convs, pooled, bottleneck = set(), set(), False, False
    for key in state:
        match = _RESNET_BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, pool_wrapper, block, rest = match.groups()
        pooled |= bool(pool_wrapper) and stage == "2"
        blocks[int(stage)].add(int(block))
        bottleneck |= ".conv3." in f".{rest}"
        if rest.startswith("net."):
            wrapped_blocks.add((stage, block))
        elif rest.startswith("conv1.net."):
            shifted_convs.add((stage, block))
    counts = tuple(len(blocks[stage]) for stage in (1, 2, 3, 4))
    depth = next(
        (d for d, layout in _RESNET_BLOCKS.items() if layout == counts and (d >= 50) == bottleneck), None
    )
    layout = f"weights: {'-'.join(map(str, counts))} {'bottleneck' if bottleneck else 'basic'} blocks"
    settings = {
        # None: no torchvision ResNet has this layout; resolved later unless an argument names one.
        "backbone": Setting(None if depth is None else f"resnet{depth}", layout),
        "temporal_pool": Setting(
            pooled, "weights: " + ("layer2 wrapped by a temporal pool" if pooled else "no temporal pool")
        ),
    }
    if wrapped_blocks:
        settings["shift"] = Setting(True, f"weights: {len(wrapped_blocks)} shifted blocks")
        settings["place"] = Setting("block", "weights: whole blocks wrapped (in-place placement)")
    elif shifted_convs:
        settings["shift"] = Setting(True, f"weights: {len(shifted_convs)} shifted conv1 layers")
        settings["place"] = Setting("blockres", "weights: shifts wrap each block's conv1 (residual)")
    else:
        settings["shift"] = Setting(False, "weights: no shifted layers (TSN)")
    return settings


for _depth in _RESNET_BLOCKS:
    register_backbone(
        BackboneSpec(
            name=f"resnet{_depth}",
            build=getattr(torchvision.models, f"resnet{_depth}"),
            network_type=torchvision.models.ResNet,
            head="fc",
            insert_shifts=_shift_resnet,
            placements=("blockres", "block"),
            supports_temporal_pool=True,
            reveal=_reveal_resnet,
            weights_name=f"resnet{_depth}",
        )
    )


# --- MobileNetV2 -----------------------------------------------------------------------------------
def mobilenet_shift_positions(net: torchvision.models.MobileNetV2) -> list[int]:
    """Indices in ``features`` of the inverted residuals with a residual and an expansion layer
    (3, 5, 6, 8, 9, 10, 12, 13, 15, 16): the reference shifts before their expansion conv."""
    return [
        index
        for index, block in enumerate(net.features)
        if isinstance(block, InvertedResidual) and block.use_res_connect and len(block.conv) == 4
    ]


def _shift_mobilenet(
    net: nn.Module, segments_per_stage: list[int], fold_div: int, place: Placement, mode: ShiftMode
) -> None:
    for index in mobilenet_shift_positions(net):
        expansion = net.features[index].conv[0]  # Conv2dNormActivation: [0] is the 1x1 Conv2d
        expansion[0] = TemporalShift(expansion[0], segments_per_stage[0], fold_div, mode)


def _reveal_mobilenet(state: StateDict) -> dict[str, Setting] | None:
    if not any(key.startswith("base_model.features.") for key in state):
        return None
    shifted = {key.split(".")[2] for key in state if ".net." in key}
    settings = {
        "backbone": Setting("mobilenet_v2", "weights: MobileNetV2 features"),
        "temporal_pool": Setting(False, "weights: MobileNetV2 has no temporal pool"),
        "shift": Setting(
            bool(shifted),
            f"weights: {len(shifted)} shifted blocks" if shifted else "weights: no shifted layers (TSN)",
        ),
    }
    if shifted:
        settings["place"] = Setting("blockres", "weights: shifts wrap the expansion convs (residual)")
    return settings


register_backbone(
    BackboneSpec(
        name="mobilenet_v2",
        build=torchvision.models.mobilenet_v2,
        network_type=torchvision.models.MobileNetV2,
        head="classifier",
        insert_shifts=_shift_mobilenet,
        placements=("blockres",),
        supports_temporal_pool=False,
        reveal=_reveal_mobilenet,
        weights_name="mobilenet_v2",
        # The reference started from its own ImageNet file (mobilenetv2_1.0-f2a8633.pth.tar).
        adapt_imagenet_state=lambda state: (
            reference_mobilenet_to_torchvision(state) if is_reference_mobilenet(state) else state
        ),
    )
)


# --- MobileOne (MMAction2's MobileOneTSM) ----------------------------------------------------------
def _shift_mobileone(
    net: nn.Module, segments_per_stage: list[int], fold_div: int, place: Placement, mode: ShiftMode
) -> None:
    """Shift the input of every block of stage1-4 as a whole, so that its branches still fuse.

    MMAction2 also wraps ``stage0``, whose input is the 3 RGB channels: with fold_div >= 4 its
    fold is 3 // fold_div = 0 and that shift moves nothing, so here stage0 stays unwrapped.
    """
    if fold_div < 4:
        raise ValueError(
            f"MobileOne TSM needs fold_div >= 4 (got {fold_div}): with fewer divisions MMAction2's "
            "shift of the stem block would move RGB input channels, which tsm does not do"
        )
    for stage in net.stages:
        for index, block in enumerate(stage):
            stage[index] = TemporalShift(block, segments_per_stage[0], fold_div, mode)


# MobileOne-S4: 2 x [2, 8, 10, 1] blocks (depthwise + pointwise) in stage1-4, 2048 features.
_MOBILEONE_S4_BLOCKS, _MOBILEONE_S4_WIDTH = (4, 16, 20, 2), 2048
_MOBILEONE_SHIFTED_KEY = re.compile(r"^base_model\.stage[1-4]\.(\d+)\.net\.")


def _reveal_mobileone(state: StateDict) -> dict[str, Setting] | None:
    if not any(key.startswith("base_model.stage4.") for key in state):
        return None
    counts = tuple(
        len({key.split(".")[2] for key in state if key.startswith(f"base_model.stage{stage}.")})
        for stage in (1, 2, 3, 4)
    )
    width = state["new_fc.weight"].shape[1] if "new_fc.weight" in state else None
    if counts != _MOBILEONE_S4_BLOCKS or width != _MOBILEONE_S4_WIDTH:
        raise ValueError(
            f"the checkpoint's MobileOne ({'-'.join(map(str, counts))} blocks per stage, {width} features) "
            "is not a MobileOne-S4, the only MobileOne tsm builds"
        )
    shifted = len({key.rsplit(".net.", 1)[0] for key in state if _MOBILEONE_SHIFTED_KEY.match(key)})
    fused = any(".branch_reparam." in key for key in state)
    settings = {
        "backbone": Setting("mobileone_s4", "weights: MobileOne-S4 stages (stage0-stage4)"),
        "temporal_pool": Setting(False, "weights: MobileOne has no temporal pool"),
        "shift": Setting(
            bool(shifted),
            f"weights: {shifted} shifted blocks" if shifted else "weights: no shifted layers (TSN)",
        ),
        "reparameterized": Setting(
            fused, "weights: " + ("fused blocks (branch_reparam)" if fused else "multi-branch blocks")
        ),
    }
    if shifted:
        settings["place"] = Setting("block", "weights: whole blocks wrapped (in-place placement)")
    return settings


register_backbone(
    BackboneSpec(
        name="mobileone_s4",
        build=lambda: MobileOne("s4"),
        network_type=MobileOne,
        head="head",
        insert_shifts=_shift_mobileone,
        placements=("block",),
        supports_temporal_pool=False,
        reveal=_reveal_mobileone,
        # mmpretrain's ImageNet classifier (what MMAction2 starts from): backbone.* and head.fc.*
        adapt_imagenet_state=lambda state: {key.removeprefix("backbone."): v for key, v in state.items()},
        imagenet_url="https://download.openmmlab.com/mmclassification/v0/mobileone/"
        "mobileone-s4_8xb32_in1k_20221110-28d888cb.pth",
    )
)


def list_backbones() -> list[str]:
    """Names of the registered backbones, in registration order."""
    return list(BACKBONES)

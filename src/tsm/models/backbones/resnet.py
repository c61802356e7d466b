"""torchvision's ResNet-18/34/50/101/152: shifts, temporal pooling, non-local sites, how weights
reveal them, and the publishers' layouts (the reference keeps torchvision's names; MMAction2 wraps
conv + bn in ConvModules and names its non-local blocks after mmcv's)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
import torchvision
from torch import nn

from tsm.models.specs import (
    BackboneSpec,
    NonLocalSites,
    Placement,
    PublisherLayout,
    Setting,
    StateDict,
    register_backbone,
)
from tsm.ops import ShiftMode, TemporalShift

BLOCKS_PER_STAGE = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
# The reference's tpool max-pools time before layer2.
POOL_SITE = "layer2"
# A block's keys; ``block.`` is the wrapper of a block followed by a non-local block.
_BLOCK_KEY = re.compile(r"^base_model\.layer(\d)\.(net\.)?(\d+)\.(?:block\.)?(.+)$")


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


def _scan_blocks(state: StateDict) -> tuple[tuple[int, ...], bool, bool, set, set]:
    """Blocks per stage, bottleneck or not, pooled or not, and the shifted blocks / conv1 layers."""
    blocks: dict[int, set[int]] = {1: set(), 2: set(), 3: set(), 4: set()}
    wrapped_blocks, shifted_convs, pooled, bottleneck = set(), set(), False, False
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, pool_wrapper, block, rest = match.groups()
        pooled |= bool(pool_wrapper) and f"layer{stage}" == POOL_SITE
        blocks[int(stage)].add(int(block))
        bottleneck |= ".conv3." in f".{rest}"
        if rest.startswith("net."):
            wrapped_blocks.add((stage, block))
        elif rest.startswith("conv1.net."):
            shifted_convs.add((stage, block))
    counts = tuple(len(blocks[stage]) for stage in (1, 2, 3, 4))
    return counts, bottleneck, pooled, wrapped_blocks, shifted_convs


def _reveal_resnet(state: StateDict) -> dict[str, Setting] | None:
    """Depth, shift placement and temporal pooling of a ResNet from its block keys."""
    if not any(key.startswith("base_model.layer1.") for key in state):
        return None
    counts, bottleneck, pooled, wrapped_blocks, shifted_convs = _scan_blocks(state)
    depth = next(
        (d for d, layout in BLOCKS_PER_STAGE.items() if layout == counts and (d >= 50) == bottleneck), None
    )
    layout = f"weights: {'-'.join(map(str, counts))} {'bottleneck' if bottleneck else 'basic'} blocks"
    settings = {
        # None: no torchvision ResNet has this layout; resolved later unless an argument names one.
        "backbone": Setting(None if depth is None else f"resnet{depth}", layout),
        "temporal_pool": Setting(
            pooled,
            "weights: " + (f"{POOL_SITE} wrapped by a temporal pool" if pooled else "no temporal pool"),
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


def _block_output_channels(block: nn.Module) -> int:
    """Channels out of a torchvision BasicBlock / Bottleneck (shifted as a whole or not)."""
    if isinstance(block, TemporalShift):
        block = block.net
    last_norm = block.bn3 if hasattr(block, "bn3") else block.bn2
    return last_norm.num_features


# Both publishers put non-local blocks after blocks 0, 2 of layer2 and 0, 2, 4 of layer3.
NON_LOCAL_SITES = NonLocalSites({"layer2": (0, 2), "layer3": (0, 2, 4)}, _block_output_channels)


# --- the publishers' layouts -------------------------------------------------------------------------
def _is_resnet(keys: Iterable[str]) -> bool:
    """ResNet keys have layer1-layer4 and no layer5-7 (MMAction2's MobileNetV2 has layer1-7)."""
    stages = {key.split(".", 1)[0] for key in keys}
    return {"layer1", "layer4"} <= stages and "layer7" not in stages


# MMAction2 ResNet: ConvModule ``convK.conv`` / ``convK.bn`` -> torchvision ``convK`` / ``bnK``; the
# stem is ``conv1`` (ConvModule) -> ``conv1`` + ``bn1``; ``downsample.conv/bn`` -> ``downsample.0/1``.
_MM_RULES = (
    (re.compile(r"(^|\.)conv(\d)\.conv\."), r"\1conv\2."),
    (re.compile(r"(^|\.)conv(\d)\.bn\."), r"\1bn\2."),
    (re.compile(r"\.downsample\.conv\."), ".downsample.0."),
    (re.compile(r"\.downsample\.bn\."), ".downsample.1."),
)
# Non-local (mmcv NonLocal3d in MMAction2's NL3DWrapper): ``non_local_block`` -> ``nl``; ConvModules
# ``g[.0].conv`` / ``theta.conv`` / ``phi[.0].conv`` -> bare convs; ``conv_out.{conv,bn}`` -> ``W.{0,1}``.
_MM_NON_LOCAL_RULES = (
    (re.compile(r"\.non_local_block\."), ".nl."),
    (re.compile(r"\.nl\.conv_out\.conv\."), ".nl.W.0."),
    (re.compile(r"\.nl\.conv_out\.bn\."), ".nl.W.1."),
    (re.compile(r"\.nl\.(g|theta|phi)(\.0)?\.conv\."), r".nl.\1\2."),
)


def _mmaction2_key(key: str) -> str:
    rules = (*_MM_NON_LOCAL_RULES, *_MM_RULES) if ".non_local_block." in key else _MM_RULES
    for pattern, replacement in rules:
        key = pattern.sub(replacement, key)
    return key


def _mmaction2_to_tsm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_mmaction2_key(key): value for key, value in state.items()}


for _depth in BLOCKS_PER_STAGE:
    register_backbone(
        BackboneSpec(
            name=f"resnet{_depth}",
            build=getattr(torchvision.models, f"resnet{_depth}"),
            network_type=torchvision.models.ResNet,
            head="fc",
            insert_shifts=_shift_resnet,
            placements=("blockres", "block"),
            reveal=_reveal_resnet,
            temporal_pool_site=POOL_SITE,
            non_local_sites=NON_LOCAL_SITES,
            weights_name=f"resnet{_depth}",
            layouts={
                "reference": PublisherLayout((f"resnet{_depth}",), _is_resnet, dict),
                "mmaction2": PublisherLayout(
                    (f"r{_depth}",), _is_resnet, _mmaction2_to_tsm, config_types=("ResNetTSM",)
                ),
            },
        )
    )

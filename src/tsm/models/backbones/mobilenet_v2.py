"""torchvision's MobileNetV2: shifts before the expansion conv of the inverted residuals, how
weights reveal them, and the publishers' layouts.

The reference implementation (and its online demo) uses its own MobileNetV2, whose ImageNet
weights and TSM checkpoints hold the same tensors in the same order as torchvision's, under other
names; MMAction2 groups the 17 inverted residuals into ``layer1``-``layer7`` of ConvModules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
import torchvision
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from tsm.models.specs import (
    BackboneSpec,
    Placement,
    PublisherLayout,
    Setting,
    StateDict,
    register_backbone,
)
from tsm.ops import ShiftMode, TemporalShift


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


# --- the reference's MobileNetV2 -----------------------------------------------------------------------
# Reference block: conv = [pw conv, bn, relu6, dw conv, bn, relu6, pw-linear conv, bn] (expansion)
# or [dw conv, bn, relu6, pw-linear conv, bn] (expand ratio 1). torchvision groups conv + bn into
# Conv2dNormActivation, and keeps the last conv and bn bare.
_REFERENCE_MBV2_EXPANDED = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_REFERENCE_MBV2_FLAT = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_MBV2_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")
_REFERENCE_ONLY_KEY = re.compile(r"^features\.\d+\.conv\.[4-7]\.")  # torchvision stops at conv.3


def _expanded_blocks(keys: list[str]) -> set[str]:
    """Indices of ``features`` blocks with an expansion layer (they have a ``conv.7``)."""
    return {m.group(1) for k in keys if (m := _MBV2_BLOCK_KEY.match(k)) and m.group(2) == "7"}


def reference_mobilenet_to_torchvision(
    state: dict[str, torch.Tensor], shifted: tuple[int, ...] = ()
) -> dict[str, torch.Tensor]:
    """Rename the reference's MobileNetV2 keys (``features.*`` only) to torchvision's.

    ``shifted``: feature indices whose expansion conv gets tsm's ``.net`` wrapper (the online demo
    shifts inside ``forward`` and so has no ``.net`` in its keys).
    """
    expanded = _expanded_blocks(list(state))
    renamed = {}
    for key, value in state.items():
        match = _MBV2_BLOCK_KEY.match(key)
        if match is None:  # features.0.* and features.18.* are Sequential(conv, bn) in both
            renamed[key] = value
            continue
        block, index, rest = match.groups()
        table = _REFERENCE_MBV2_EXPANDED if block in expanded else _REFERENCE_MBV2_FLAT
        if index not in table:
            raise ValueError(f"unexpected key {key!r} for the reference's MobileNetV2 layout")
        if index == "0" and int(block) in shifted:
            rest = f"net.{rest}"
        renamed[f"features.{block}.conv.{table[index]}.{rest}"] = value
    return renamed


def is_reference_mobilenet(state: dict[str, torch.Tensor]) -> bool:
    """True for the reference's MobileNetV2 layout (its blocks have ``conv.4``-``conv.7``)."""
    return any(_REFERENCE_ONLY_KEY.match(key) for key in state)


# --- MMAction2's MobileNetV2 ---------------------------------------------------------------------------
# conv1 -> features.0, layer1..7 flattened -> features.1..17, conv2 -> features.18.
_MM_LAYER_SIZES = (1, 2, 3, 4, 3, 3, 1)
_MM_KEY = re.compile(r"^layer(\d)\.(\d+)\.conv\.(\d)\.(net\.)?(conv|bn)\.(.+)$")


def _mmaction2_key(key: str) -> str:
    if key.startswith(("conv1.", "conv2.")):
        index = "0" if key.startswith("conv1.") else "18"
        _, part, rest = key.split(".", 2)
        return f"features.{index}.{'0' if part == 'conv' else '1'}.{rest}"
    match = _MM_KEY.match(key)
    if match is None:
        raise ValueError(f"unexpected key {key!r} for MMAction2's MobileNetV2 layout")
    layer, block, module, net, part, rest = match.groups()
    feature = 1 + sum(_MM_LAYER_SIZES[: int(layer) - 1]) + int(block)
    last = "1" if layer == "1" else "2"  # ConvModule index of the linear 1x1 (no expansion in layer1)
    if module == last:  # the bare conv + bn at the end of a torchvision block
        target = str(int(last) + (0 if part == "conv" else 1))
    else:
        target = f"{module}.{'0' if part == 'conv' else '1'}"
        if net and part == "conv":  # MMAction2 wraps the whole ConvModule; tsm wraps the conv only
            target += ".net"
    return f"features.{feature}.conv.{target}.{rest}"


def _mmaction2_to_tsm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_mmaction2_key(key): value for key, value in state.items()}


def _has_prefix(prefix: str):
    def matches(keys: Iterable[str]) -> bool:
        return any(key.startswith(prefix) for key in keys)

    return matches


register_backbone(
    BackboneSpec(
        name="mobilenet_v2",
        build=torchvision.models.mobilenet_v2,
        network_type=torchvision.models.MobileNetV2,
        head="classifier",
        insert_shifts=_shift_mobilenet,
        placements=("blockres",),
        reveal=_reveal_mobilenet,
        weights_name="mobilenet_v2",
        # The reference started from its own ImageNet file (mobilenetv2_1.0-f2a8633.pth.tar).
        adapt_imagenet_state=lambda state: (
            reference_mobilenet_to_torchvision(state) if is_reference_mobilenet(state) else state
        ),
        layouts={
            "reference": PublisherLayout(
                ("mobilenetv2",), _has_prefix("features."), reference_mobilenet_to_torchvision
            ),
            "mmaction2": PublisherLayout(
                ("mobilenetv2",), _has_prefix("layer7."), _mmaction2_to_tsm, config_types=("MobileNetV2TSM",)
            ),
        },
    )
)

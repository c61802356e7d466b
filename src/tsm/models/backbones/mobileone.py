"""MobileOne-S4 (MMAction2's MobileOneTSM): every block shifted as a whole so that its branches
still fuse, how weights reveal it, its ImageNet file (mmpretrain's) and MMAction2's layout."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

from tsm.models.backbones.mobileone_network import MobileOne
from tsm.models.specs import (
    BackboneSpec,
    Placement,
    PublisherLayout,
    Setting,
    StateDict,
    register_backbone,
)
from tsm.ops import ShiftMode, TemporalShift


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
_S4_BLOCKS, _S4_WIDTH = (4, 16, 20, 2), 2048
_SHIFTED_KEY = re.compile(r"^base_model\.stage[1-4]\.(\d+)\.net\.")


def _reveal_mobileone(state: StateDict) -> dict[str, Setting] | None:
    if not any(key.startswith("base_model.stage4.") for key in state):
        return None
    counts = tuple(
        len({key.split(".")[2] for key in state if key.startswith(f"base_model.stage{stage}.")})
        for stage in (1, 2, 3, 4)
    )
    width = state["new_fc.weight"].shape[1] if "new_fc.weight" in state else None
    if counts != _S4_BLOCKS or width != _S4_WIDTH:
        raise ValueError(
            f"the checkpoint's MobileOne ({'-'.join(map(str, counts))} blocks per stage, {width} features) "
            "is not a MobileOne-S4, the only MobileOne tsm builds"
        )
    shifted = len({key.rsplit(".net.", 1)[0] for key in state if _SHIFTED_KEY.match(key)})
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


def _is_mobileone(keys: Iterable[str]) -> bool:
    return any(key.startswith("stage0.") for key in keys)


def _mmaction2_to_tsm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mmpretrain's MobileOne keys are tsm's; MMAction2 wraps stage0 in a shift that moves no
    channel (fold 3 // shift_div = 0), which tsm leaves out."""
    return {
        key.replace("stage0.net.", "stage0.", 1) if key.startswith("stage0.net.") else key: value
        for key, value in state.items()
    }


register_backbone(
    BackboneSpec(
        name="mobileone_s4",
        build=lambda: MobileOne("s4"),
        network_type=MobileOne,
        head="head",
        insert_shifts=_shift_mobileone,
        placements=("block",),
        reveal=_reveal_mobileone,
        reparameterize=lambda net: net.reparameterize(),
        # mmpretrain's ImageNet classifier (what MMAction2 starts from): backbone.* and head.fc.*
        adapt_imagenet_state=lambda state: {key.removeprefix("backbone."): v for key, v in state.items()},
        imagenet_url="https://download.openmmlab.com/mmclassification/v0/mobileone/"
        "mobileone-s4_8xb32_in1k_20221110-28d888cb.pth",
        layouts={
            "mmaction2": PublisherLayout(
                ("mobileone-s4",),
                _is_mobileone,
                _mmaction2_to_tsm,
                config_types=("MobileOneTSM",),
                # configs/_base_/models/tsm_mobileone_s4.py: the backbone's num_segments=8, whatever
                # the clip length (its 16-frame model shifts 8-frame windows)
                settings={
                    "backbone_segments": Setting(
                        8, "MMAction2's configs/_base_/models/tsm_mobileone_s4.py (backbone num_segments=8)"
                    )
                },
            )
        },
    )
)

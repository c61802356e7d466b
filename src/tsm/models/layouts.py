"""State-dict layouts of other MobileNetV2 implementations, renamed to torchvision's.

The reference implementation (and its online demo) uses its own MobileNetV2, whose ImageNet
weights and TSM checkpoints are laid out differently from torchvision's; the same tensors in the
same order, under other names.
"""

from __future__ import annotations

import re

import torch

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

"""Inference-time BatchNorm folding: a BatchNorm right after a convolution becomes part of the
convolution's weights and bias, computed in float32, so that a reduced-precision copy of the
network (bf16) neither runs the BatchNorm passes nor rounds its statistics."""

from __future__ import annotations

import copy
import itertools

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from tsm.ops import TemporalShift

# Modules whose forward applies ``convN`` then ``bnN`` directly, with nothing in between.
_CONV_THEN_NORM_BLOCKS = (BasicBlock, Bottleneck, ResNet)


def _conv_inside(module: nn.Module) -> nn.Conv2d | None:
    """The plain Conv2d ``module`` ends with: itself, or the ``net`` a temporal shift wraps (the
    shift only changes the conv's input)."""
    if type(module) is nn.Conv2d:
        return module
    if isinstance(module, TemporalShift) and type(module.net) is nn.Conv2d:
        return module.net
    return None


def _conv_norm_pairs(parent: nn.Module) -> list[tuple[str, str]]:
    """Names of (conv, norm) children of ``parent`` where the norm directly follows the conv."""
    names = list(parent._modules)
    if isinstance(parent, nn.Sequential):
        return list(itertools.pairwise(names))
    if isinstance(parent, _CONV_THEN_NORM_BLOCKS):
        pairs = [(name, "bn" + name[4:]) for name in names if name.startswith("conv")]
        return [(conv, norm) for conv, norm in pairs if norm in names]
    return []


def _fold_into(parent: nn.Module, conv_name: str, norm_name: str) -> bool:
    holder, norm = parent._modules[conv_name], parent._modules[norm_name]
    conv = _conv_inside(holder)
    if conv is None or type(norm) is not nn.BatchNorm2d or not norm.track_running_stats:
        return False
    fused = fuse_conv_bn_eval(conv, norm)
    if holder is conv:
        parent._modules[conv_name] = fused
    else:
        holder.net = fused
    parent._modules[norm_name] = nn.Identity()
    return True


def fold_batch_norms(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` whose BatchNorms that directly follow a convolution are
    folded into it (in float32), and how many were folded. The others stay as they are."""
    folded = copy.deepcopy(model).eval()
    count = 0
    for parent in list(folded.modules()):
        for conv_name, norm_name in _conv_norm_pairs(parent):
            count += _fold_into(parent, conv_name, norm_name)
    return folded, count

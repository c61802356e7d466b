"""Turn 2D backbones into TSM networks by inserting temporal shifts (and temporal pooling)."""

from __future__ import annotations

from torch import nn

from tsm.models.specs import BACKBONES, PLACEMENTS, BackboneSpec, Placement, spec_of_network
from tsm.ops import ShiftMode, TemporalPool, TemporalShift


def is_temporal(net: nn.Module) -> bool:
    """True when ``net`` already contains temporal shifts or temporal pooling."""
    return any(isinstance(m, TemporalShift | TemporalPool) for m in net.modules())


def shifted_modules(net: nn.Module) -> list[TemporalShift]:
    """The temporal shifts inside ``net``, in forward order."""
    return [m for m in net.modules() if isinstance(m, TemporalShift)]


def _spec_or_error(net: nn.Module, what: str) -> BackboneSpec:
    spec = spec_of_network(net)
    if spec is None:
        types = dict.fromkeys(s.network_type for s in BACKBONES.values())
        networks = ", ".join(f"{t.__module__.split('.')[0]} {t.__name__}" for t in types)
        raise TypeError(f"cannot add {what} to {type(net).__name__}: supported are {networks}")
    return spec


def add_temporal_pool(net: nn.Module, num_segments: int) -> nn.Module:
    """Max-pool time before the stage the backbone's spec names (``layer2`` of a ResNet: the
    reference's ``tpool``)."""
    spec = _spec_or_error(net, "temporal pooling")
    site = spec.temporal_pool_site
    if site is None:
        raise TypeError(f"temporal pooling is not supported by {type(net).__name__} ({spec.name})")
    if isinstance(getattr(net, site), TemporalPool):
        raise ValueError("this network already has temporal pooling; adding it twice is refused")
    setattr(net, site, TemporalPool(getattr(net, site), num_segments))
    return net


def make_temporal_shift(
    net: nn.Module,
    num_segments: int,
    fold_div: int = 8,
    place: Placement = "blockres",
    temporal_pool: bool = False,
    mode: ShiftMode = "bidirectional",
) -> nn.Module:
    """Insert temporal shifts into a 2D network of a registered backbone, in place, and return it.

    ResNet: ``"blockres"`` shifts before each block's ``conv1`` (the identity path stays
    unshifted; every other block when layer3 has >= 23 blocks); ``"block"`` shifts the whole block
    input. ``temporal_pool`` max-pools time before the spec's pool site (ResNet: ``layer2``; later
    stages see T/2 frames).
    MobileNetV2: shifts before the expansion conv of the 10 inverted residuals that have a
    residual connection (``features`` 3, 5, 6, 8, 9, 10, 12, 13, 15, 16).
    """
    if place not in PLACEMENTS:
        raise ValueError(f"unknown shift placement {place!r}: use one of {', '.join(PLACEMENTS)}")
    if is_temporal(net):
        raise ValueError("this network already contains temporal shifts; converting it twice is refused")
    spec = _spec_or_error(net, "temporal shifts")
    if place not in spec.placements or (temporal_pool and spec.temporal_pool_site is None):
        pooling = "" if spec.temporal_pool_site is not None else " without temporal_pool"
        allowed = " or ".join(repr(p) for p in spec.placements)
        raise ValueError(f"{spec.name} supports place={allowed}{pooling} only")
    if temporal_pool and num_segments < 2:
        raise ValueError("temporal_pool needs num_segments >= 2")
    pooled = (num_segments + 1) // 2 if temporal_pool else num_segments
    spec.insert_shifts(net, [num_segments, pooled, pooled, pooled], fold_div, place, mode)
    return add_temporal_pool(net, num_segments) if temporal_pool else net

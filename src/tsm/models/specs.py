"""What tsm knows about a 2D backbone, as one :class:`BackboneSpec`, and the registry of them.

Every per-backbone fact lives in its spec: how to build it and where its classifier is, where
shifts go, which stage temporal pooling wraps, where non-local blocks go, how multi-branch blocks
fuse, how its weights reveal it, where its ImageNet weights come from, and how each publisher
(the reference, MMAction2) names it and lays out its keys. The built-in backbones register one
module each under :mod:`tsm.models.backbones`; adding a backbone is adding one spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from tsm.ops import ShiftMode

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
class NonLocalSites:
    """Where non-local blocks go: after these blocks (indices) of these stages (attribute names),
    and how many channels a block puts out (the width of its non-local block)."""

    blocks: Mapping[str, tuple[int, ...]]
    output_channels: Callable[[nn.Module], int]


@dataclass(frozen=True)
class PublisherLayout:
    """How one publisher (the reference, MMAction2) stores this backbone.

    ``names``: how its file names call the backbone (``"r50"``, ``"mobilenetv2"``);
    ``matches(keys)``: whether backbone keys (the publisher's prefix removed) are this backbone's;
    ``to_tsm(state)``: those keys renamed to tsm's (``base_model.`` not yet added);
    ``config_types``: its configs' type names for the TSM backbone (``"ResNetTSM"``);
    ``settings``: model settings the publisher's own configs fix for this backbone (e.g.
    MMAction2's MobileOne-S4 shifts 8-frame windows).
    """

    names: tuple[str, ...]
    matches: Callable[[Iterable[str]], bool]
    to_tsm: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    config_types: tuple[str, ...] = ()
    settings: Mapping[str, Setting] = field(default_factory=dict)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything tsm needs to know about one 2D backbone.

    ``build`` makes the network with random weights and its ImageNet classifier (named ``head``),
    as torchvision's builders do. ``temporal_pool_site``: the stage temporal pooling wraps (None:
    not supported). ``non_local_sites``: where non-local blocks go (None: not supported).
    ``reparameterize(net)``: fuses a multi-branch network for inference, in place (None: nothing
    to fuse). ImageNet weights: ``weights_name`` is the torchvision model whose weights enum serves
    them, else ``imagenet_url`` is the file to download; ``adapt_imagenet_state`` renames another
    implementation's ImageNet keys to this backbone's. ``layouts``: per publisher (``"reference"``,
    ``"mmaction2"``), how it stores this backbone.
    """

    name: str
    build: Callable[[], nn.Module]
    network_type: type[nn.Module]
    head: str
    insert_shifts: ShiftInserter
    placements: tuple[Placement, ...]
    reveal: Revealer
    temporal_pool_site: str | None = None
    non_local_sites: NonLocalSites | None = None
    reparameterize: Callable[[nn.Module], None] | None = None
    weights_name: str | None = None
    imagenet_url: str | None = None
    adapt_imagenet_state: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    layouts: Mapping[str, PublisherLayout] = field(default_factory=dict)

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


def publisher_layout(publisher: str, keys: Iterable[str]) -> PublisherLayout | None:
    """The layout of the first backbone whose ``publisher`` layout matches these backbone keys
    (backbones of one family, such as the ResNet depths, share theirs)."""
    keys = list(keys)
    for spec in BACKBONES.values():
        layout = spec.layouts.get(publisher)
        if layout is not None and layout.matches(keys):
            return layout
    return None


def backbone_named_by(publisher: str, name: str) -> str | None:
    """The backbone that ``publisher`` calls ``name`` (in its file names or configs), if any."""
    return next(
        (
            spec.name
            for spec in BACKBONES.values()
            if publisher in spec.layouts and name in spec.layouts[publisher].names
        ),
        None,
    )


def publisher_names(publisher: str) -> tuple[str, ...]:
    """Every name ``publisher``'s file names have for a backbone tsm builds."""
    return tuple(name for spec in BACKBONES.values() for name in spec.layouts.get(publisher, _NONE).names)


def publisher_config_types(publisher: str) -> tuple[str, ...]:
    """Every type name ``publisher``'s configs give a TSM backbone tsm builds."""
    layouts = (spec.layouts.get(publisher, _NONE) for spec in BACKBONES.values())
    return tuple(dict.fromkeys(kind for layout in layouts for kind in layout.config_types))


_NONE = PublisherLayout((), lambda keys: False, dict)


def list_backbones() -> list[str]:
    """Names of the registered backbones, in registration order."""
    return list(BACKBONES)

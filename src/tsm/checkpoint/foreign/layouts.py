"""The foreign checkpoint layouts and their keys mapped onto tsm's.

Supported layouts (as the reference's ``main.py`` / ``ops/models.py`` and MMAction2's
``mmaction/models/backbones/resnet_tsm.py`` / ``mobilenet_v2_tsm.py`` write them):

* ``reference``: the reference's ``ckpt.pth.tar`` / published ``.pth`` (a dict with
  ``state_dict``), keys ``module.base_model.*`` and ``module.new_fc.*`` from DataParallel.
* ``reference-online``: the reference's online demo (``mobilenetv2_jester_online.pth.tar``): a
  plain state dict of its own MobileNetV2, ``features.N.conv.M.*`` and ``classifier.*``.
* ``mmaction2``: MMAction2's ``backbone.*`` and ``cls_head.fc_cls.*``.

The format decides the prefixes and the head; how the publisher names each backbone's own keys
is that backbone's fact (its spec's :class:`~tsm.models.PublisherLayout`). Non-local blocks:
both publishers' 1x1x1 Conv3d weights (O, I, 1, 1, 1) become tsm's 1x1 Conv2d weights
(O, I, 1, 1) (tsm runs the block's per-frame ops on frames, see :mod:`tsm.models.non_local`).
"""

from __future__ import annotations

import torch

from tsm.checkpoint.foreign.files import StateDict
from tsm.models.backbones.mobilenet_v2 import reference_mobilenet_to_torchvision
from tsm.models.specs import publisher_layout

REFERENCE = "reference"
REFERENCE_ONLINE = "reference-online"
MMACTION2 = "mmaction2"
FOREIGN_FORMATS: tuple[str, ...] = (REFERENCE, REFERENCE_ONLINE, MMACTION2)
# Whose layout each format is (a publisher of :class:`~tsm.models.PublisherLayout`).
PUBLISHER_OF = {REFERENCE: "reference", REFERENCE_ONLINE: "reference", MMACTION2: "mmaction2"}


def detect_format(state: StateDict) -> str:
    """Name the layout of a (prefix-stripped) foreign state dict, or raise listing its keys."""
    keys = list(state)
    if any(k.startswith("base_model.") for k in keys):
        return REFERENCE
    if any(k.startswith("backbone.") for k in keys) and any(k.startswith("cls_head.") for k in keys):
        return MMACTION2
    if any(k.startswith("features.") for k in keys) and "classifier.weight" in state:
        return REFERENCE_ONLINE
    shown = ", ".join(keys[:4])
    raise ValueError(
        f"unrecognised checkpoint layout (first keys: {shown}); supported are this project's "
        "safetensors files, the reference's (module.base_model.*, module.new_fc.*), its online "
        "demo's (features.*, classifier.*) and MMAction2's (backbone.*, cls_head.fc_cls.*)"
    )


# Blocks shifted by the online demo (its shift_block_idx 2, 4, 5, ... counted from features[1]).
ONLINE_DEMO_SHIFTED_FEATURES = (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)


def _as_2d_conv(key: str, value: torch.Tensor) -> torch.Tensor:
    """A non-local block's 1x1x1 Conv3d weight as the equal 1x1 Conv2d weight."""
    if value.dim() == 5:
        if value.shape[2:] != (1, 1, 1):
            raise ValueError(f"{key}: a non-local conv of kernel {tuple(value.shape[2:])}, expected 1x1x1")
        return value[:, :, 0]
    return value


def fold_non_local_bias(state: StateDict) -> StateDict:
    """The reference's ``nl.W.0`` conv has a bias, which its BatchNorm ``nl.W.1`` follows; tsm's
    has none. Moving the bias into the running mean keeps eval outputs equal (the bias shifts the
    normalised input exactly as the running mean does; in training the batch mean removes it)."""
    folded = dict(state)
    for key in [k for k in state if k.endswith(".nl.W.0.bias")]:
        mean_key = key.replace(".W.0.bias", ".W.1.running_mean")
        folded[mean_key] = state[mean_key] - folded.pop(key)
    return folded


def _backbone_to_tsm(publisher: str, backbone: StateDict) -> StateDict:
    """The publisher's backbone keys (prefix removed) renamed by the layout of the backbone they
    belong to; keys no backbone claims stay as they are (loading then names them)."""
    layout = publisher_layout(publisher, backbone)
    renamed = layout.to_tsm(backbone) if layout is not None else backbone
    return {f"base_model.{k}": _as_2d_conv(k, v) if ".nl." in k else v for k, v in renamed.items()}


def map_reference(state: StateDict) -> StateDict:
    """The reference's TSN/TSM keys (``module.`` already stripped) -> tsm's."""
    head = ("base_model.fc.", "base_model.classifier.")  # the head when the reference's dropout was 0
    mapped: StateDict = {}
    backbone: StateDict = {}
    for key, value in state.items():
        prefix = next((p for p in head if key.startswith(p)), None)
        if prefix is not None:
            mapped["new_fc." + key.removeprefix(prefix)] = value
        elif key.startswith("base_model."):
            backbone[key.removeprefix("base_model.")] = value
        else:
            mapped[key] = value
    mapped.update(_backbone_to_tsm("reference", backbone))
    return fold_non_local_bias(mapped)


def map_reference_online(state: StateDict) -> StateDict:
    """The online demo's plain MobileNetV2 keys -> tsm's uni-directional TSM MobileNetV2."""
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    mapped = {
        f"base_model.{k}": v
        for k, v in reference_mobilenet_to_torchvision(features, ONLINE_DEMO_SHIFTED_FEATURES).items()
    }
    return _add_head_and_rest(mapped, state, head="classifier.", backbone="features.")


def _add_head_and_rest(mapped: StateDict, state: StateDict, head: str, backbone: str) -> StateDict:
    """Rename the classifier (``head`` prefix) to ``new_fc``; keep keys outside the backbone as they
    are, so that loading lists them as unexpected."""
    for key, value in state.items():
        if key.startswith(head):
            mapped["new_fc." + key.removeprefix(head)] = value
        elif not key.startswith(backbone):
            mapped[key] = value
    return mapped


def map_mmaction2(state: StateDict) -> StateDict:
    """MMAction2's Recognizer2D keys (``backbone.*``, ``cls_head.fc_cls.*``) -> tsm's."""
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    mapped = _backbone_to_tsm("mmaction2", backbone)
    return _add_head_and_rest(mapped, state, head="cls_head.fc_cls.", backbone="backbone.")


MAPPERS = {REFERENCE: map_reference, REFERENCE_ONLINE: map_reference_online, MMACTION2: map_mmaction2}

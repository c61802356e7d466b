"""Foreign checkpoint files: safe reading, format detection and key mapping to tsm's layout.

Supported layouts (as the reference's ``main.py`` / ``ops/models.py`` and MMAction2's
``mmaction/models/backbones/resnet_tsm.py`` / ``mobilenet_v2_tsm.py`` write them):

* ``reference``: the reference's ``ckpt.pth.tar`` / published ``.pth`` (a dict with
  ``state_dict``), keys ``module.base_model.*`` and ``module.new_fc.*`` from DataParallel.
* ``reference-online``: the reference's online demo (``mobilenetv2_jester_online.pth.tar``): a
  plain state dict of its own MobileNetV2, ``features.N.conv.M.*`` and ``classifier.*``.
* ``mmaction2``: MMAction2's ``backbone.*`` (ConvModule conv + bn) and ``cls_head.fc_cls.*``.

Every layout is mapped onto the keys of :class:`tsm.Recognizer` (``base_model.*`` of a
torchvision ResNet / MobileNetV2 or of tsm's MobileOne, ``new_fc.*``). Non-local blocks: both
publishers' 1x1x1 Conv3d weights (O, I, 1, 1, 1) become tsm's 1x1 Conv2d weights (O, I, 1, 1)
(tsm runs the block's per-frame ops on frames, see :mod:`tsm.models.non_local`).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tsm.models.layouts import reference_mobilenet_to_torchvision

REFERENCE = "reference"
REFERENCE_ONLINE = "reference-online"
MMACTION2 = "mmaction2"
FOREIGN_FORMATS: tuple[str, ...] = (REFERENCE, REFERENCE_ONLINE, MMACTION2)

StateDict = dict[str, torch.Tensor]
_NOT_A_CHECKPOINT = (
    "cannot read {path} as a PyTorch checkpoint: it was not written by torch.save, or is damaged"
)


class UnsafeCheckpointError(ValueError):
    """The file stores Python objects that only full (code-executing) unpickling can read."""


def read_torch_file(path: str | Path, allow_pickle: bool = False) -> Any:
    """``torch.load`` a file on the CPU, safely (``weights_only=True``) unless ``allow_pickle``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        # The safe unpickler names each class or function it refuses "GLOBAL module.name".
        if allow_pickle or "GLOBAL " not in str(error):
            raise ValueError(_NOT_A_CHECKPOINT.format(path=path)) from None
        raise UnsafeCheckpointError(
            f"{path} stores Python objects besides tensors ({_unsafe_globals(path, error)}), which only full "
            "unpickling can read, and unpickling can run arbitrary code. If you trust the file's "
            "source, load it with allow_pickle=True (CLI: --allow-pickle)"
        ) from None
    except (ModuleNotFoundError, AttributeError) as error:  # allow_pickle: a class that is gone
        raise ValueError(
            f"unpickling {path} needs Python code that is not installed here ({error}); install the "
            "package that wrote it, or re-save just its state_dict with that package"
        ) from None
    except Exception as error:  # torch raises many types (KeyError, RuntimeError) for non-checkpoints
        raise ValueError(f"{_NOT_A_CHECKPOINT.format(path=path)} ({type(error).__name__}: {error})") from None


def _unsafe_globals(path: Path, error: Exception) -> str:
    """All classes/functions a zip checkpoint needs, or the first one the unpickler refused."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # legacy (non-zip) files cannot be inspected without unpickling
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))[:1]
    return ", ".join(names)


def state_dict_of(obj: Any, path: str | Path) -> tuple[StateDict, dict[str, Any]]:
    """Split a loaded checkpoint into its tensor state dict and the other top-level entries."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    extras: dict[str, Any] = {}
    state: Any = obj
    if isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
        extras = {key: value for key, value in obj.items() if key != "state_dict"}
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path} holds no tensors (top-level entries: {', '.join(map(str, obj))})")
    return tensors, extras


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


def map_reference(state: StateDict) -> StateDict:
    """The reference's TSN/TSM keys (``module.`` already stripped) -> tsm's."""
    head = {"base_model.fc.", "base_model.classifier."}  # the head when the reference's dropout was 0
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
    if any(k.startswith("features.") for k in backbone):
        backbone = reference_mobilenet_to_torchvision(backbone)
    mapped.update({f"base_model.{k}": _as_2d_conv(k, v) if ".nl." in k else v for k, v in backbone.items()})
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


# --- MMAction2 -> tsm -------------------------------------------------------------------------------
# ResNet: ConvModule ``convK.conv`` / ``convK.bn`` -> torchvision ``convK`` / ``bnK``; the stem is
# ``conv1`` (ConvModule) -> ``conv1`` + ``bn1``; ``downsample.conv/bn`` -> ``downsample.0/1``.
_MM_RESNET_RULES = (
    (re.compile(r"(^|\.)conv(\d)\.conv\."), r"\1conv\2."),
    (re.compile(r"(^|\.)conv(\d)\.bn\."), r"\1bn\2."),
    (re.compile(r"\.downsample\.conv\."), ".downsample.0."),
    (re.compile(r"\.downsample\.bn\."), ".downsample.1."),
)
# MobileNetV2: conv1 -> features.0, layer1..7 flattened -> features.1..17, conv2 -> features.18.
_MM_MBV2_LAYER_SIZES = (1, 2, 3, 4, 3, 3, 1)
_MM_MBV2_KEY = re.compile(r"^layer(\d)\.(\d+)\.conv\.(\d)\.(net\.)?(conv|bn)\.(.+)$")


def _mm_mobilenet_key(key: str) -> str:
    if key.startswith(("conv1.", "conv2.")):
        index = "0" if key.startswith("conv1.") else "18"
        _, part, rest = key.split(".", 2)
        return f"features.{index}.{'0' if part == 'conv' else '1'}.{rest}"
    match = _MM_MBV2_KEY.match(key)
    if match is None:
        raise ValueError(f"unexpected key {key!r} for MMAction2's MobileNetV2 layout")
    layer, block, module, net, part, rest = match.groups()
    feature = 1 + sum(_MM_MBV2_LAYER_SIZES[: int(layer) - 1]) + int(block)
    last = "1" if layer == "1" else "2"  # ConvModule index of the linear 1x1 (no expansion in layer1)
    if module == last:  # the bare conv + bn at the end of a torchvision block
        target = str(int(last) + (0 if part == "conv" else 1))
    else:
        target = f"{module}.{'0' if part == 'conv' else '1'}"
        if net and part == "conv":  # MMAction2 wraps the whole ConvModule; tsm wraps the conv only
            target += ".net"
    return f"features.{feature}.conv.{target}.{rest}"


# Non-local (mmcv NonLocal3d in MMAction2's NL3DWrapper): ``non_local_block`` -> ``nl``; ConvModules
# ``g[.0].conv`` / ``theta.conv`` / ``phi[.0].conv`` -> bare convs; ``conv_out.{conv,bn}`` -> ``W.{0,1}``.
_MM_NON_LOCAL_RULES = (
    (re.compile(r"\.non_local_block\."), ".nl."),
    (re.compile(r"\.nl\.conv_out\.conv\."), ".nl.W.0."),
    (re.compile(r"\.nl\.conv_out\.bn\."), ".nl.W.1."),
    (re.compile(r"\.nl\.(g|theta|phi)(\.0)?\.conv\."), r".nl.\1\2."),
)


def _mm_resnet_key(key: str) -> str:
    rules = (*_MM_NON_LOCAL_RULES, *_MM_RESNET_RULES) if ".non_local_block." in key else _MM_RESNET_RULES
    for pattern, replacement in rules:
        key = pattern.sub(replacement, key)
    return key


def _mm_mobileone_key(key: str) -> str:
    """mmpretrain's MobileOne keys are tsm's; MMAction2 wraps stage0 in a shift that moves no
    channel (fold 3 // shift_div = 0), which tsm leaves out."""
    return key.replace("stage0.net.", "stage0.", 1) if key.startswith("stage0.net.") else key


def map_mmaction2(state: StateDict) -> StateDict:
    """MMAction2's Recognizer2D keys (``backbone.*``, ``cls_head.fc_cls.*``) -> tsm's."""
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    if any(k.startswith("layer7.") for k in backbone):
        rename = _mm_mobilenet_key
    elif any(k.startswith("stage0.") for k in backbone):
        rename = _mm_mobileone_key
    else:
        rename = _mm_resnet_key
    mapped: StateDict = {}
    for key, value in backbone.items():
        key = rename(key)
        mapped[f"base_model.{key}"] = _as_2d_conv(key, value) if ".nl." in key else value
    return _add_head_and_rest(mapped, state, head="cls_head.fc_cls.", backbone="backbone.")


MAPPERS = {REFERENCE: map_reference, REFERENCE_ONLINE: map_reference_online, MMACTION2: map_mmaction2}

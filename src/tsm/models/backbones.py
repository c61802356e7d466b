"""torchvision 2D backbones for TSM, with ImageNet initialisation from the weights API or a file."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from tsm.models.layouts import is_reference_mobilenet, reference_mobilenet_to_torchvision

SUPPORTED_BACKBONES: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "mobilenet_v2",
)

# The weights the reference started from (torchvision's first ImageNet release).
IMAGENET_WEIGHTS = "IMAGENET1K_V1"
_FILE_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".safetensors", ".ckpt")


def _check_backbone(name: str) -> None:
    if name not in SUPPORTED_BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: supported are {', '.join(SUPPORTED_BACKBONES)}")


def _head_prefix(name: str) -> str:
    return "classifier." if name == "mobilenet_v2" else "fc."


def _weights_enum(name: str, weights: str | WeightsEnum) -> WeightsEnum:
    """Resolve ``weights`` (an enum member, ``"IMAGENET1K_V2"`` or ``"ResNet50_Weights.IMAGENET1K_V2"``)."""
    available = torchvision.models.get_model_weights(name)
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, available):
            raise ValueError(f"{weights} are weights of another model, not {name}: use {available.__name__}")
        return weights
    member = str(weights).split(".")[-1]
    if member not in available.__members__:
        choices = ", ".join(w.name for w in available)
        raise ValueError(f"{name} has no weights {weights!r}: choose one of {choices}")
    return available[member]


def imagenet_state_dict(name: str, weights: str | WeightsEnum = IMAGENET_WEIGHTS) -> dict[str, torch.Tensor]:
    """Download (or read from the torch hub cache) torchvision's ImageNet weights for ``name``."""
    _check_backbone(name)
    enum = _weights_enum(name, weights)
    try:
        return enum.get_state_dict(progress=True)
    except Exception as error:  # network errors come in many types (URLError, OSError, ...)
        raise RuntimeError(
            f"could not download torchvision weights {name}.{enum.name} ({error}). Without network "
            f"access, download {enum.url} elsewhere and pass its local path as pretrained=PATH"
        ) from error


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision-style state dict (``.pth``/``.pt`` or ``.safetensors``) safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that needs full unpickling
        raise ValueError(
            f"cannot read pretrained weights {path} safely ({type(error).__name__}); give a state-dict "
            "file written by torch.save(model.state_dict()) or safetensors"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _is_weights_file(pretrained: str | Path) -> bool:
    """Paths are files; names like "imagenet" or "ResNet50_Weights.IMAGENET1K_V2" are not."""
    text = str(pretrained)
    return isinstance(pretrained, Path) or "/" in text or "\\" in text or Path(text).suffix in _FILE_SUFFIXES


def _load_imagenet_weights(net: nn.Module, name: str, state: dict[str, torch.Tensor]) -> None:
    """Make ``state`` the weights of ``net`` (built on "meta") but for the ImageNet classifier;
    say briefly what does not fit."""
    head = _head_prefix(name)
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(head)}
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs {name} {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if mismatched or missing or unexpected:
        hint = (
            "; a TSM recognizer checkpoint is loaded with tsm.load_checkpoint instead"
            if any(k.startswith(("base_model.", "backbone.")) for k in unexpected)
            else ""
        )
        raise ValueError(
            f"pretrained weights do not fit {name}: {len(mismatched)} shapes differ (e.g. "
            f"{mismatched[:2]}), {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}){hint}"
        )
    net.load_state_dict(state, strict=False, assign=True)  # the classifier stays empty: it is dropped


def build_backbone(name: str, pretrained: str | Path | WeightsEnum | None = None) -> tuple[nn.Module, int]:
    """Build a torchvision backbone without its classifier; return it and its feature width.

    ``pretrained``: None (random init), ``"imagenet"`` (torchvision's IMAGENET1K_V1 weights, as
    the reference), a torchvision weights name (``"IMAGENET1K_V2"``,
    ``"ResNet50_Weights.IMAGENET1K_V2"``) or enum member, or a path to a state-dict file
    (``.pth``/``.pt``/``.safetensors``; for MobileNetV2 also the reference's own ImageNet file,
    ``mobilenetv2_1.0-f2a8633.pth.tar``). The ImageNet classifier (``fc`` / ``classifier``) is
    dropped.
    """
    _check_backbone(name)
    if pretrained is None:
        net = torchvision.models.get_model(name, weights=None)
    else:
        if not isinstance(pretrained, WeightsEnum) and _is_weights_file(pretrained):
            state = load_state_dict_file(pretrained)
        else:
            state = imagenet_state_dict(name, IMAGENET_WEIGHTS if pretrained == "imagenet" else pretrained)
        if name == "mobilenet_v2" and is_reference_mobilenet(state):  # the reference's ImageNet file
            state = reference_mobilenet_to_torchvision(state)
        with torch.device("meta"):  # no random init for weights that are replaced at once
            net = torchvision.models.get_model(name, weights=None)
        _load_imagenet_weights(net, name, state)
    if name == "mobilenet_v2":
        feature_dim = net.classifier[-1].in_features
        net.classifier = nn.Identity()
    else:
        feature_dim = net.fc.in_features
        net.fc = nn.Identity()
    return net, feature_dim

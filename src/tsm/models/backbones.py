"""torchvision 2D backbones for TSM, with ImageNet initialisation from the weights API or a file."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

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


def _check_backbone(name: str) -> None:
    if name not in SUPPORTED_BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: supported are {', '.join(SUPPORTED_BACKBONES)}")


def _head_prefix(name: str) -> str:
    return "classifier." if name == "mobilenet_v2" else "fc."


def imagenet_state_dict(name: str, weights: str = IMAGENET_WEIGHTS) -> dict[str, torch.Tensor]:
    """Download (or read from the torch hub cache) torchvision's ImageNet weights for ``name``."""
    _check_backbone(name)
    try:
        enum = torchvision.models.get_model_weights(name)[weights]
    except KeyError:
        choices = ", ".join(w.name for w in torchvision.models.get_model_weights(name))
        raise ValueError(f"{name} has no weights {weights!r}: choose one of {choices}") from None
    try:
        return enum.get_state_dict(progress=True)
    except Exception as error:  # network errors come in many types (URLError, OSError, ...)
        raise RuntimeError(
            f"could not download torchvision weights {name}.{weights} ({error}). Without network "
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
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {key.removeprefix("module."): value for key, value in state.items()}


def build_backbone(name: str, pretrained: str | Path | None = None) -> tuple[nn.Module, int]:
    """Build a torchvision backbone without its classifier; return it and its feature width.

    ``pretrained``: None (random init), ``"imagenet"`` (torchvision's IMAGENET1K_V1 weights), a
    torchvision weights name such as ``"IMAGENET1K_V2"``, or a path to a state-dict file. The
    ImageNet classifier (``fc`` / ``classifier``) is dropped.
    """
    _check_backbone(name)
    net = torchvision.models.get_model(name, weights=None)
    if pretrained is not None:
        if isinstance(pretrained, Path) or Path(str(pretrained)).suffix or "/" in str(pretrained):
            state = load_state_dict_file(pretrained)
        else:
            weights = IMAGENET_WEIGHTS if pretrained == "imagenet" else str(pretrained)
            state = imagenet_state_dict(name, weights)
        head = _head_prefix(name)
        state = {k: v for k, v in state.items() if not k.startswith(head)}
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as error:  # shape mismatches
            raise ValueError(f"pretrained weights do not fit {name}: {error}") from None
        missing = [k for k in missing if not k.startswith(head)]
        if missing or unexpected:
            raise ValueError(
                f"pretrained weights do not fit {name}: {len(missing)} missing keys "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
            )
    if name == "mobilenet_v2":
        feature_dim = net.classifier[-1].in_features
        net.classifier = nn.Identity()
    else:
        feature_dim = net.fc.in_features
        net.fc = nn.Identity()
    return net, feature_dim

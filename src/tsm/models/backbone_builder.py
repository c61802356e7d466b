"""Build a registered 2D backbone without its classifier, randomly initialised or from ImageNet
weights: torchvision's weights (by name or enum), the file its spec names, or a local file. Every
download goes through :mod:`tsm.download` (verified, cached in torch's hub cache, mirrors)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from tsm.download import download, sha256_prefix_in_name
from tsm.models.specs import BackboneSpec, backbone_spec
from tsm.models.state import state_dict_problems, strip_data_parallel

# The weights the reference started from (torchvision's first ImageNet release).
IMAGENET_WEIGHTS = "IMAGENET1K_V1"
_FILE_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".safetensors", ".ckpt")


def _weights_enum(name: str, weights: str | WeightsEnum) -> WeightsEnum:
    """Resolve ``weights`` (an enum member, ``"IMAGENET1K_V2"`` or ``"ResNet50_Weights.IMAGENET1K_V2"``)."""
    available = torchvision.models.get_model_weights(name)
    if isinstance(weights, WeightsEnum) and not isinstance(weights, available):
        raise ValueError(f"{weights} are weights of another model, not {name}: use {available.__name__}")
    try:
        return available.verify(weights)
    except (ValueError, KeyError):  # torchvision raises either, by version
        choices = ", ".join(w.name for w in available)
        raise ValueError(f"{name} has no weights {weights!r}: choose one of {choices}") from None


def _download_state_dict(url: str) -> dict[str, torch.Tensor]:
    """The state dict of an ImageNet weights file, downloaded (verified, once) into torch's hub cache."""
    filename = url.rsplit("/", 1)[1]
    path = download(url, filename, sha256_prefix=sha256_prefix_in_name(filename))
    return load_state_dict_file(path)


def imagenet_state_dict(name: str, weights: str | WeightsEnum = IMAGENET_WEIGHTS) -> dict[str, torch.Tensor]:
    """The ImageNet weights for ``name`` (torchvision's, or the file its spec names, e.g.
    mmpretrain's for MobileOne), from torch's hub cache or downloaded into it."""
    spec = backbone_spec(name)
    if spec.weights_name is not None:
        url = _weights_enum(spec.weights_name, weights).url
    elif spec.imagenet_url is not None:
        if weights != IMAGENET_WEIGHTS:
            raise ValueError(f"{name} has one set of ImageNet weights ({spec.imagenet_url}): use 'imagenet'")
        url = spec.imagenet_url
    else:
        raise ValueError(
            f"tsm knows no ImageNet weights for {name}: pass a weights file as backbone_weights=PATH"
        )
    return _download_state_dict(url)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision-style state dict (``.pth``/``.pt`` or ``.safetensors``) safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that needs full unpickling
        raise ValueError(
            f"cannot read backbone weights {path} safely ({type(error).__name__}); give a state-dict "
            "file written by torch.save(model.state_dict()) or safetensors"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return strip_data_parallel(state)


def _is_weights_file(weights: str | Path) -> bool:
    """Paths are files; names like "imagenet" or "ResNet50_Weights.IMAGENET1K_V2" are not."""
    text = str(weights)
    return isinstance(weights, Path) or "/" in text or "\\" in text or Path(text).suffix in _FILE_SUFFIXES


def _load_imagenet_weights(net: nn.Module, spec: BackboneSpec, state: dict[str, torch.Tensor]) -> None:
    """Make ``state`` the weights of ``net`` (built on "meta") but for the ImageNet classifier;
    say briefly what does not fit."""
    head = f"{spec.head}."
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(head)}
    problems = state_dict_problems(expected, state, names=("file", spec.name))
    if problems:
        hint = (
            "; a TSM recognizer checkpoint is loaded with tsm.load_checkpoint instead"
            if any(k.startswith(("base_model.", "backbone.")) for k in state)
            else ""
        )
        raise ValueError(f"backbone weights do not fit {spec.name}: {'; '.join(problems)}{hint}")
    net.load_state_dict(state, strict=False, assign=True)  # the classifier stays empty: it is dropped


def build_backbone(name: str, weights: str | Path | WeightsEnum | None = None) -> tuple[nn.Module, int]:
    """Build a torchvision backbone without its classifier; return it and its feature width.

    ``weights``: None (random init), ``"imagenet"`` (torchvision's IMAGENET1K_V1 weights, as
    the reference), a torchvision weights name (``"IMAGENET1K_V2"``,
    ``"ResNet50_Weights.IMAGENET1K_V2"``) or enum member, or a path to a state-dict file
    (``.pth``/``.pt``/``.safetensors``; for MobileNetV2 also the reference's own ImageNet file,
    ``mobilenetv2_1.0-f2a8633.pth.tar``; for MobileOne-S4 mmpretrain's, which ``"imagenet"``
    downloads). The ImageNet classifier (``fc`` / ``classifier`` / ``head``) is dropped.
    """
    spec = backbone_spec(name)
    if weights is None:
        net = spec.build()
    else:
        if not isinstance(weights, WeightsEnum) and _is_weights_file(weights):
            state = load_state_dict_file(weights)
        else:
            state = imagenet_state_dict(name, IMAGENET_WEIGHTS if weights == "imagenet" else weights)
        if spec.adapt_imagenet_state is not None:
            state = spec.adapt_imagenet_state(state)
        with torch.device("meta"):  # no random init for weights that are replaced at once
            net = spec.build()
        _load_imagenet_weights(net, spec, state)
    feature_dim = spec.feature_dim(net)
    setattr(net, spec.head, nn.Identity())
    return net, feature_dim

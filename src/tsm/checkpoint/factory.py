"""``create_model``: one way to name a model, as in timm, beside the registry of those names
(:mod:`tsm.checkpoint.registry`). ``ARCHITECTURE`` builds an architecture of
:func:`tsm.list_models`; ``ARCHITECTURE.TAG`` builds a published model's network
(:func:`tsm.list_pretrained`), and with ``pretrained=True`` loads its published weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchvision.models import WeightsEnum

from tsm.checkpoint.loader import load_pretrained
from tsm.checkpoint.registry import list_pretrained, model_config_of, published_name
from tsm.models import Recognizer


def create_model(
    name: str,
    *,
    pretrained: bool = False,
    backbone_weights: str | Path | WeightsEnum | None = None,
    **settings: Any,
) -> Recognizer:
    """Build the model ``name`` names; ``settings`` change its :class:`~tsm.models.ModelConfig`.

    ``name``: an architecture (``"tsm_resnet50"``: 400 classes, 8 frames unless ``settings`` say
    otherwise) or a published model (``"tsm_resnet50.reference_kinetics400_8f"``: its classes and
    frames). ``pretrained=True`` loads the published video weights of a tagged name (downloaded
    once, verified, cached). ``backbone_weights`` initialises the backbone alone (``"imagenet"``,
    a torchvision weights name, or a file), as training from scratch on video does.
    """
    if pretrained:
        if backbone_weights is not None:
            raise ValueError(
                "pretrained=True loads a whole trained model: backbone_weights would be overwritten"
            )
        if published_name(name) is None:
            tagged = list_pretrained(f"{name}.*")
            hint = f": {', '.join(tagged[:4])}" if tagged else f"; {name} has no published weights"
            raise ValueError(
                f"pretrained=True needs a published name ARCHITECTURE.TAG{hint} "
                "(tsm.list_pretrained() lists them)"
            )
        return load_pretrained(name, **settings)[0]
    return Recognizer(model_config_of(name).replace(**settings), backbone_weights=backbone_weights)

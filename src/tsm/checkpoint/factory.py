"""``create_model``: one way to name a model, as in timm, beside the registry of those names
(:mod:`tsm.checkpoint.registry`). ``ARCHITECTURE`` builds an architecture of
:func:`tsm.list_models`; ``ARCHITECTURE.TAG`` builds a published model's network
(:func:`tsm.list_pretrained`), and with ``pretrained=True`` loads its published weights;
``hf-hub:ORG/NAME`` does the same for a tsm model repo on the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchvision.models import WeightsEnum

from tsm.checkpoint.hub_names import hub_model_config, is_hub_name
from tsm.checkpoint.loader import load_checkpoint, load_pretrained
from tsm.checkpoint.registry import list_pretrained, published_name, registered_config
from tsm.models import ModelConfig, Recognizer


def model_config_of(name: str) -> ModelConfig:
    """The network ``name`` stands for: an architecture, a published ``ARCHITECTURE.TAG`` (its
    architecture with the published classes, frames and settings) or an ``hf-hub:`` repo (its config)."""
    return hub_model_config(name) if is_hub_name(name) else registered_config(name)


def create_model(
    name: str,
    *,
    pretrained: bool = False,
    backbone_weights: str | Path | WeightsEnum | None = None,
    **settings: Any,
) -> Recognizer:
    """Build the model ``name`` names; ``settings`` change its :class:`~tsm.models.ModelConfig`.

    ``name``: an architecture (``"tsm_resnet50"``: 400 classes, 8 frames unless ``settings`` say
    otherwise), a published model (``"tsm_resnet50.reference_kinetics400_8f"``: its classes and
    frames) or ``"hf-hub:ORG/NAME[@REVISION]"``, a tsm model repo on the Hugging Face Hub (its
    network, from its config). ``pretrained=True`` loads the published video weights of a tagged
    name, or a Hub repo's weights (downloaded once, verified, cached). ``backbone_weights``
    initialises the backbone alone (``"imagenet"``, a torchvision weights name, or a file), as
    training from scratch on video does.
    """
    if pretrained:
        if backbone_weights is not None:
            raise ValueError(
                "pretrained=True loads a whole trained model: backbone_weights would be overwritten"
            )
        if is_hub_name(name):
            return load_checkpoint(name, **settings)[0]
        if published_name(name) is None:
            tagged = list_pretrained(f"{name}.*")
            hint = f": {', '.join(tagged[:4])}" if tagged else f"; {name} has no published weights"
            raise ValueError(
                f"pretrained=True needs a published name ARCHITECTURE.TAG{hint} "
                "(tsm.list_pretrained() lists them)"
            )
        return load_pretrained(name, **settings)[0]
    return Recognizer(model_config_of(name).replace(**settings), backbone_weights=backbone_weights)

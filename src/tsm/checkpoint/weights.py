"""Putting checkpoint weights into models: a fresh Recognizer built around them, or the weights of
one trained model copied into another (fine-tuning)."""

from __future__ import annotations

import torch

from tsm.models import ModelConfig, Recognizer, load_weights
from tsm.models.state import summarise


def recognizer_with_weights(config: ModelConfig, state: dict[str, torch.Tensor]) -> Recognizer:
    """Build ``Recognizer(config)`` with ``state`` as its weights, skipping the random init.

    The model is built on the meta device (no memory, no init: a ResNet-101 builds in a fraction
    of the time) and then takes the checkpoint's tensors as its own.
    """
    with torch.device("meta"):
        model = Recognizer(config)
    load_weights(model, state, assign=True)
    left_on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:  # a tensor outside the state dict (e.g. a non-persistent buffer) would be empty
        raise RuntimeError(f"tensors not set by the checkpoint: {summarise(left_on_meta)}")
    return model


def copy_matching_weights(model: Recognizer, source: Recognizer, name: str = "") -> None:
    """Copy the weights of the trained ``source`` into ``model``; a classifier (``new_fc``) of
    another shape keeps its fresh initialisation (fine-tuning on a new label set).

    Both must be the same network (every :meth:`ModelConfig.architecture_settings` but the number
    of classes): same keys and shapes but another computation is refused rather than left to
    mispredict. ``name`` names the source in errors.
    """
    theirs, ours = source.config.architecture(), model.config.architecture()
    differing = {
        key: (theirs[key], ours[key]) for key in theirs if key != "num_classes" and theirs[key] != ours[key]
    }
    if differing:
        details = ", ".join(
            f"{key}: checkpoint {theirs!r} vs model {ours!r}" for key, (theirs, ours) in differing.items()
        )
        raise ValueError(
            f"{name or 'the checkpoint'} was trained as a different network ({details}); set those model "
            "settings to the checkpoint's values"
        )
    state = source.state_dict()
    target = model.state_dict()
    for key in ("new_fc.weight", "new_fc.bias"):
        if state[key].shape != target[key].shape:
            state[key] = target[key]  # another label set: keep the fresh classifier
    load_weights(model, state)

"""Putting checkpoint weights into models: a fresh Recognizer built around them, or the weights of
one trained model copied into another (fine-tuning)."""

from __future__ import annotations

import torch

from tsm.models import ModelConfig, Recognizer, load_weights
from tsm.models.state import summarise

# Why a reload used to change the logits (by 1.2e-6 on an AMD EPYC): PyTorch's CPU allocator aligns
# every tensor to 64 bytes, the alignment oneMKL asks for to give the same results from run to run (its
# developer guide, "Obtaining Numerically Reproducible Results"). safetensors' load_file maps the file
# and hands out tensors at the file's offsets, mostly 8 bytes past a 64-byte boundary, and assign=True
# kept them there. Kernels whose summation order follows the address then round the same weights
# differently: forced onto oneMKL's SSE4.2 path (MKL_ENABLE_INSTRUCTIONS=SSE4_2) an Intel CPU shows it
# too (its default AVX-512 and its AVX2 paths there do not). In allocator memory a loaded model's
# weights have the layout and alignment of one built in memory, so the two run the same kernels on the
# same addresses modulo 64 and agree bit for bit on any CPU.
WEIGHT_ALIGNMENT = 64


def in_aligned_memory(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` itself when contiguous and 64-byte aligned, else a contiguous copy that is."""
    if tensor.is_contiguous() and tensor.data_ptr() % WEIGHT_ALIGNMENT == 0:
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def recognizer_with_weights(config: ModelConfig, state: dict[str, torch.Tensor]) -> Recognizer:
    """Build ``Recognizer(config)`` with ``state`` as its weights, skipping the random init.

    The model is built on the meta device (no memory, no init: a ResNet-101 builds in a fraction
    of the time) and then takes the checkpoint's tensors as its own.
    """
    with torch.device("meta"):
        model = Recognizer(config)
    load_weights(model, {key: in_aligned_memory(value) for key, value in state.items()}, assign=True)
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

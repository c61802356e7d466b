"""Online TSM: run a uni-directional Recognizer on live streams, one frame at a time.

A uni-directional shift gives frame t the first ``C // fold_div`` channels of frame t-1 (zeros at
t = 0). On a stream, each shifted layer therefore only has to remember those channels of the
previous frame: a cache of 1/fold_div of one frame's activations. Frame t then costs one pass of
the 2D network, and its logits equal the offline model's per-frame logits of frame t on frames
0..t (the offline model's zero padding at t = 0 is an all-zero cache).

:class:`StreamingStep` is the pure function ``(frames, *caches) -> (logits, *new_caches)``
(what the exports write). ``tsm.inference.StreamingRecognizer`` keeps the caches between calls,
one row per stream, with full or partial resets, on the engine of one's choice.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from tsm.models.recognizer import Recognizer
from tsm.ops import TemporalShift

# What an engine or an exported file runs: the clip model (``Recognizer.forward`` on whole clips)
# or one step of the streaming model (one frame per stream, with caches). Spelled this way everywhere.
ModelKind = Literal["clip", "stream"]
MODEL_KINDS: tuple[str, ...] = ("clip", "stream")


class _CacheSlots:
    """Caches handed to the shifted layers during one step: ``inputs`` read, ``outputs`` written."""

    def __init__(self, count: int) -> None:
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor | None] = [None] * count


class CachedShift(nn.Module):
    """One frame of a uni-directional shift: channels ``[0, fold)`` come from the cached frame.

    Replaces a :class:`~tsm.ops.TemporalShift` in a streaming copy of the network; the wrapped
    module ``net`` (and so its weights) is shared with the original model.
    """

    def __init__(self, net: nn.Module, fold_div: int, slots: _CacheSlots, index: int) -> None:
        super().__init__()
        self.net = net
        self.fold_div = fold_div
        self.index = index
        self._slots = slots

    def forward(self, x: Tensor) -> Tensor:
        fold = x.shape[1] // self.fold_div
        current = x[:, :fold]
        # A copy, so that no later in-place op on ``x`` can change what the next frame sees.
        self._slots.outputs[self.index] = current.clone()
        # No caches given: the first frame of new streams, which sees zeros (offline zero padding).
        previous = self._slots.inputs[self.index] if self._slots.inputs else torch.zeros_like(current)
        return self.net(torch.cat([previous, x[:, fold:]], dim=1))

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}, cache={self.index}"


def check_streamable(model: nn.Module) -> None:
    """Raise ``ValueError`` explaining why ``model`` cannot run frame by frame, if it cannot."""
    if not isinstance(model, Recognizer):
        raise TypeError(f"streaming needs a tsm.Recognizer, got {type(model).__name__}")
    config = model.config
    if config.temporal_pool:
        raise ValueError(
            "a model with temporal pooling cannot stream: it max-pools over neighbouring frames "
            "(including the next one) and halves the frame rate; use a model built with temporal_pool=False"
        )
    if config.non_local:
        raise ValueError(
            "a model with non-local blocks cannot stream: each block relates every position to every "
            "position of the whole clip, future frames included; use a model built without non_local"
        )
    if config.backbone_segments:
        raise ValueError(
            f"a model whose backbone works on {config.backbone_segments}-frame windows cannot stream: its "
            "shift restarts (zeros) at every window boundary, which a stream does not have"
        )
    if config.shift and config.mode != "unidirectional":
        raise ValueError(
            f"a {config.mode} TSM model cannot stream: its shift gives every frame channels of "
            "the NEXT frame, which a live stream does not have yet. Use an online (uni-directional) "
            "model, e.g. tsm.create_model('tsm_online_mobilenet_v2', ...) or mode='unidirectional'"
        )


class StreamingStep(nn.Module):
    """The streaming network as a pure function: ``(frames, *caches) -> (logits, *new_caches)``.

    ``frames``: (B, 3, H, W), one new frame per stream. ``caches``: one (B, C_i // fold_div, H_i,
    W_i) tensor per shifted layer, in forward order (zeros at the start of a stream). Shares its
    weights with ``model``; the model itself is left unchanged.
    """

    def __init__(self, model: Recognizer) -> None:
        super().__init__()
        check_streamable(model)
        # Copy the module tree but not the tensors: parameters and buffers stay shared.
        shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
        network = copy.deepcopy(model, memo=shared)
        shifts = [(name, m) for name, m in network.named_modules() if isinstance(m, TemporalShift)]
        self._slots = _CacheSlots(len(shifts))
        for index, (name, shift) in enumerate(shifts):
            network.set_submodule(name, CachedShift(shift.net, shift.fold_div, self._slots, index))
        self.base_model = network.base_model
        self.new_fc = network.new_fc
        self.num_caches = len(shifts)
        self.eval()

    def forward(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        """One frame per stream; no ``caches`` means new streams (all caches zero)."""
        if caches and len(caches) != self.num_caches:
            raise ValueError(f"expected {self.num_caches} caches (one per shifted layer), got {len(caches)}")
        self._slots.inputs = list(caches)
        try:
            logits = self.new_fc(self.base_model(frames))
            new_caches = list(self._slots.outputs)
        finally:
            self._slots.inputs = []
            self._slots.outputs = [None] * self.num_caches
        return (logits, *new_caches)

    @torch.no_grad()
    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Shapes of the caches for frames of ``frame_shape`` (B, 3, H, W), found by one step."""
        weight = next(self.parameters())
        _, *caches = self(torch.zeros(*frame_shape, device=weight.device, dtype=weight.dtype))
        return [tuple(cache.shape) for cache in caches]

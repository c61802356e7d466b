"""The JSON replies of the stream protocol (docs/serving.md), built from one frame's logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor


def recognition(logits: Tensor, class_names: Sequence[str], topk: int, with_logits: bool) -> dict[str, Any]:
    """Label, score, the top-k classes with their softmax probabilities, and optionally all logits."""
    probabilities = logits.softmax(dim=0)
    top = probabilities.topk(min(topk, len(class_names)))
    ranked = [[class_names[i], p] for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)]
    result: dict[str, Any] = {"label": ranked[0][0], "score": ranked[0][1], "top": ranked}
    if with_logits:
        result["logits"] = logits.tolist()
    return result


# What a window model says before its first window is full.
NO_RECOGNITION: dict[str, Any] = {"label": None, "score": None, "top": [], "model_ms": None}


def frame_reply(
    frame: int, result: dict[str, Any], fresh: bool, dropped: int, batch: int | None
) -> dict[str, Any]:
    """The reply to one frame: ``result`` (label, score, top, model_ms...) plus the stream's counters.

    ``fresh`` is False when the frame did not get its own recognition (a window model between two
    recognitions repeats its latest, or says nothing yet).
    """
    return {"frame": frame, **result, "fresh": fresh, "batch": batch, "dropped": dropped}


def error_reply(message: str, frame: int | None = None) -> dict[str, Any]:
    """``{"error": ...}``, with the frame number when the error is about a frame."""
    return {"error": message} if frame is None else {"error": message, "frame": frame}


def switch_reply(info: dict[str, Any]) -> dict[str, Any]:
    """``{"switched": info}``: the server now serves another model (``info`` is its ``GET /info``);
    the stream starts afresh on it, and the replies after this one are that model's."""
    return {"switched": info}

"""Multi-view testing: every view of a clip through the model in one batch, scores averaged."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

ViewAverage = Literal["logits", "softmax"]
VIEW_AVERAGES: tuple[str, ...] = ("logits", "softmax")


def average_views(scores: Tensor, how: ViewAverage = "logits") -> Tensor:
    """Average per-view scores (N, V, K) into clip scores (N, K): mean logits, or mean softmax."""
    if how not in VIEW_AVERAGES:
        raise ValueError(f"unknown view average {how!r}: use one of {', '.join(VIEW_AVERAGES)}")
    if scores.dim() != 3:
        raise ValueError(f"expected per-view scores shaped (N, V, K), got {tuple(scores.shape)}")
    return (scores.softmax(dim=-1) if how == "softmax" else scores).mean(dim=1)


def multi_view_scores(model: nn.Module, clips: Tensor, how: ViewAverage = "logits") -> Tensor:
    """Clip scores (N, K) from clips (N, T, C, H, W) or multi-view clips (N, V, T, C, H, W).

    All views go through ``model`` in one batch, so the result does not depend on how views or
    clips are batched (one of the reference's user complaints).
    """
    if clips.dim() == 5:
        return model(clips)
    if clips.dim() != 6:
        raise ValueError(
            f"expected clips shaped (N, T, C, H, W) or (N, V, T, C, H, W), got {tuple(clips.shape)}"
        )
    batch, views = clips.shape[:2]
    scores = model(clips.flatten(0, 1)).reshape(batch, views, -1)
    return average_views(scores, how)

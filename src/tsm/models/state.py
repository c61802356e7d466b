"""Strict state-dict loading with short errors: which keys are missing, unexpected or misshapen."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present


def summarise(items: list[str], limit: int = 5) -> str:
    """The first ``limit`` items and how many there are in all."""
    shown = ", ".join(items[:limit])
    return f"{shown}, ... ({len(items)} in all)" if len(items) > limit else shown


def state_dict_problems(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    names: tuple[str, str] = ("checkpoint", "model"),
) -> list[str]:
    """What stops ``state`` from loading into a module whose state dict is ``expected``; empty if
    nothing. ``names`` call the two sides in the messages (e.g. "file" and "resnet18")."""
    mismatched = [
        f"{key}: {names[0]} {tuple(value.shape)} vs {names[1]} {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and expected[key].shape != value.shape
    ]
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    problems = []
    if mismatched:
        problems.append(f"shapes differ: {summarise(mismatched, 3)}")
    if missing:
        problems.append(f"missing keys: {summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {summarise(unexpected)}")
    return problems


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], assign: bool = False) -> None:
    """Load ``state`` strictly, raising one short ValueError that names every kind of mismatch.

    ``assign=True`` makes the tensors of ``state`` the model's own (for models built on "meta").
    """
    problems = state_dict_problems(model.state_dict(), state)
    if problems:
        raise ValueError("checkpoint does not match the model; " + "; ".join(problems))
    model.load_state_dict(state, assign=assign)


def strip_data_parallel(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefixes that (Distributed)DataParallel adds, however nested."""
    stripped = dict(state)
    while any(key.startswith("module.") for key in stripped):
        consume_prefix_in_state_dict_if_present(stripped, "module.")
    return stripped

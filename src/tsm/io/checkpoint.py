"""This project's self-describing checkpoint: safetensors weights plus the model configuration,
class names and data (test pipeline) configuration as JSON metadata, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tsm.models import Recognizer
from tsm.version import __version__

FORMAT_NAME = "tsm"
FORMAT_VERSION = 1


@dataclass
class CheckpointInfo:
    """What a checkpoint said about itself, and how each setting was obtained."""

    format: str
    model_config: dict[str, Any]
    class_names: list[str] | None = None
    data_config: dict[str, Any] = field(default_factory=dict)
    written_by: str | None = None
    notes: list[str] = field(default_factory=list)
    # Where each model setting came from (e.g. "weights: 3-4-6-3 bottleneck blocks", "argument").
    sources: dict[str, str] = field(default_factory=dict)


def atomic_write(path: str | Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_checkpoint(
    path: str | Path,
    model: Recognizer,
    class_names: list[str] | None = None,
    data_config: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as one self-describing ``.safetensors`` file (atomically)."""
    if not isinstance(model, Recognizer):
        raise TypeError(f"save_checkpoint expects a tsm.Recognizer, got {type(model).__name__}")
    if class_names is not None and len(class_names) != model.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} classes")
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "tsm_version": __version__,
        "model_config": json.dumps(model.config),
        "class_names": json.dumps(class_names),
        "data_config": json.dumps(data_config or {}),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_native_metadata(path: str | Path) -> dict[str, str] | None:
    """The metadata of a tsm safetensors checkpoint, or None when the file is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    return metadata if metadata.get("format") == FORMAT_NAME else None


def load_native_checkpoint(path: str | Path, **overrides: Any) -> tuple[Recognizer, CheckpointInfo]:
    """Rebuild the Recognizer stored by :func:`save_checkpoint`; ``overrides`` change its config."""
    metadata = read_native_metadata(path)
    if metadata is None:
        raise ValueError(f"{path} is not a tsm checkpoint (safetensors with tsm metadata)")
    config = json.loads(metadata["model_config"])
    sources = dict.fromkeys(config, "checkpoint metadata")
    notes = [f"model configuration read from the checkpoint: {config}"]
    if overrides:
        notes.append(f"overridden by arguments: {overrides}")
    config.update(overrides)
    sources.update(dict.fromkeys(overrides, "argument"))
    model = recognizer_with_weights(config, load_file(str(path)))
    info = CheckpointInfo(
        format=FORMAT_NAME,
        model_config=config,
        class_names=json.loads(metadata.get("class_names", "null")),
        data_config=json.loads(metadata.get("data_config", "{}")),
        written_by=metadata.get("tsm_version"),
        notes=notes,
        sources=sources,
    )
    return model, info


def _summarise(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def recognizer_with_weights(config: dict[str, Any], state: dict[str, torch.Tensor]) -> Recognizer:
    """Build ``Recognizer(**config)`` with ``state`` as its weights, skipping the random init.

    The model is built on the meta device (no memory, no init: a ResNet-101 builds in a fraction
    of the time) and then takes the checkpoint's tensors as its own.
    """
    with torch.device("meta"):
        model = Recognizer(**config)
    load_weights(model, state, assign=True)
    left_on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:  # a tensor outside the state dict (e.g. a non-persistent buffer) would be empty
        raise RuntimeError(f"tensors not set by the checkpoint: {_summarise(left_on_meta)}")
    return model


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], assign: bool = False) -> None:
    """Load ``state`` strictly, with short errors naming missing/unexpected keys and bad shapes.

    ``assign=True`` makes the tensors of ``state`` the model's own (for models built on "meta").
    """
    expected = model.state_dict()
    mismatched = [
        f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and expected[key].shape != value.shape
    ]
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    problems = []
    if mismatched:
        problems.append(f"shapes differ: {_summarise(mismatched, 3)}")
    if missing:
        problems.append(f"missing keys: {_summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summarise(unexpected)}")
    if problems:
        raise ValueError("checkpoint does not match the model; " + "; ".join(problems))
    model.load_state_dict(state, assign=assign)

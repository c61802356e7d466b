"""This project's self-describing checkpoint: safetensors weights plus the model configuration,
class names and data (test pipeline) configuration as JSON metadata, written atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from tsm.checkpoint.info import CheckpointInfo
from tsm.checkpoint.weights import recognizer_with_weights
from tsm.data import DataConfig, as_data_config
from tsm.fileio import atomic_write
from tsm.models import VIEW_AVERAGES, ModelConfig, Recognizer, ViewAverage
from tsm.version import __version__

FORMAT_NAME = "tsm"
FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    model: Recognizer,
    class_names: list[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    view_average: ViewAverage = CheckpointInfo.view_average,
) -> Path:
    """Write ``model`` as one self-describing ``.safetensors`` file (atomically), with its class
    names, test pipeline (``data_config``, its num_segments set to the model's) and how its test
    views are averaged (``"softmax"`` for MMAction2's models)."""
    if not isinstance(model, Recognizer):
        raise TypeError(f"save_checkpoint expects a tsm.Recognizer, got {type(model).__name__}")
    if class_names is not None and len(class_names) != model.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} classes")
    if view_average not in VIEW_AVERAGES:
        raise ValueError(f"view_average must be one of {', '.join(VIEW_AVERAGES)}, got {view_average!r}")
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "tsm_version": __version__,
        "model_config": json.dumps(model.config.to_dict()),
        "class_names": json.dumps(class_names),
        "data_config": json.dumps(as_data_config(data_config, num_segments=model.num_segments).to_dict()),
        "view_average": view_average,
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_native_metadata(path: str | Path) -> dict[str, str] | None:
    """The metadata of a tsm safetensors checkpoint, or None when the file is not one."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    return metadata if metadata.get("format") == FORMAT_NAME else None


def native_model_config(metadata: Mapping[str, str]) -> ModelConfig:
    """The model config a tsm checkpoint's metadata stores (older files lack newer settings)."""
    return ModelConfig.from_dict(json.loads(metadata["model_config"]))


def native_view_average(metadata: Mapping[str, str]) -> ViewAverage:
    """How a tsm checkpoint's test views are averaged (files written before it was stored: logits)."""
    return metadata.get("view_average", CheckpointInfo.view_average)  # type: ignore[return-value]


def load_native_checkpoint(path: str | Path, **overrides: Any) -> tuple[Recognizer, CheckpointInfo]:
    """Rebuild the Recognizer stored by :func:`save_checkpoint`; ``overrides`` change its config."""
    metadata = read_native_metadata(path)
    if metadata is None:
        raise ValueError(f"{path} is not a tsm checkpoint (safetensors with tsm metadata)")
    stored = native_model_config(metadata)
    notes = [f"model configuration read from the checkpoint: {stored}"]
    if overrides:
        notes.append(f"overridden by arguments: {overrides}")
    config = stored.replace(**overrides)
    sources = dict.fromkeys(stored.to_dict(), "checkpoint metadata")
    sources.update(dict.fromkeys(overrides, "argument"))
    model = recognizer_with_weights(config, load_file(str(path)))
    info = CheckpointInfo(
        format=FORMAT_NAME,
        model_config=config,
        class_names=json.loads(metadata.get("class_names", "null")),
        data_config=as_data_config(
            json.loads(metadata.get("data_config", "{}")), num_segments=model.num_segments
        ),
        written_by=metadata.get("tsm_version"),
        notes=notes,
        sources=sources,
        view_average=native_view_average(metadata),
    )
    return model, info

"""What inference runs on: a checkpoint (any format ``tsm.load_checkpoint`` reads, or a published
name) or an exported file (any suffix an engine runtime runs), which carries its own classes and
test pipeline."""

from __future__ import annotations

from pathlib import Path

from tsm.checkpoint import CheckpointInfo, load_checkpoint
from tsm.data import as_data_config
from tsm.export import read_export_metadata
from tsm.inference.engines import is_exported_file
from tsm.models import Recognizer


def exported_info(path: str | Path) -> CheckpointInfo:
    """The class names, test pipeline and model settings an exported file records."""
    metadata = read_export_metadata(path)
    notes = ["int8 (quantized) export"] if metadata.get("int8") else []
    return CheckpointInfo(
        format=Path(path).suffix.lstrip(".").lower(),
        model_config=metadata["model_config"],
        class_names=metadata["class_names"],
        data_config=as_data_config(metadata["data_config"], num_segments=metadata["num_segments"]),
        notes=notes,
    )


def open_model(checkpoint: str | Path) -> tuple[Recognizer | Path, CheckpointInfo]:
    """``(model, info)``: the Recognizer of a checkpoint, or the path of an exported file."""
    if is_exported_file(checkpoint):
        return Path(checkpoint), exported_info(checkpoint)
    return load_checkpoint(checkpoint)

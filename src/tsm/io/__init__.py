"""Checkpoints (this project's format), conversion of foreign checkpoints, export."""

from tsm.io.checkpoint import CheckpointInfo, load_native_checkpoint, save_checkpoint
from tsm.io.export import ExportCheck, export_model, read_export_metadata, verify_export


def load_checkpoint(path, **overrides):
    """Load a checkpoint into a :class:`tsm.Recognizer`; returns ``(model, info)``."""
    return load_native_checkpoint(path, **overrides)


__all__ = [
    "CheckpointInfo",
    "ExportCheck",
    "export_model",
    "load_checkpoint",
    "read_export_metadata",
    "save_checkpoint",
    "verify_export",
]

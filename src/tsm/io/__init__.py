"""Checkpoints (this project's format), conversion of foreign checkpoints, export."""

from tsm.io.checkpoint import CheckpointInfo, load_native_checkpoint, save_checkpoint


def load_checkpoint(path, **overrides):
    """Load a checkpoint into a :class:`tsm.Recognizer`; returns ``(model, info)``."""
    return load_native_checkpoint(path, **overrides)


__all__ = ["CheckpointInfo", "load_checkpoint", "save_checkpoint"]

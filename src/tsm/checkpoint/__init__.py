"""Checkpoints: this project's self-describing format, the reference's and MMAction2's files
(reading, layout detection, key mapping, settings inference), conversion, and weight copying."""

from tsm.checkpoint.convert import Conversion, convert_checkpoint
from tsm.checkpoint.formats import FOREIGN_FORMATS, UnsafeCheckpointError
from tsm.checkpoint.loader import init_from_checkpoint, load_checkpoint
from tsm.checkpoint.native import CheckpointInfo, read_native_metadata, save_checkpoint
from tsm.checkpoint.weights import ARCHITECTURE_SETTINGS, copy_matching_weights, recognizer_with_weights

__all__ = [
    "ARCHITECTURE_SETTINGS",
    "FOREIGN_FORMATS",
    "CheckpointInfo",
    "Conversion",
    "UnsafeCheckpointError",
    "convert_checkpoint",
    "copy_matching_weights",
    "init_from_checkpoint",
    "load_checkpoint",
    "read_native_metadata",
    "recognizer_with_weights",
    "save_checkpoint",
]

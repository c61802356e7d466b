"""Checkpoints: this project's self-describing format, the reference's and MMAction2's files
(reading, layout detection, key mapping, settings inference), conversion, weight copying, and the
published models by name (verified download into torch's hub cache)."""

from tsm.checkpoint.convert import Conversion, convert_checkpoint
from tsm.checkpoint.formats import FOREIGN_FORMATS, UnsafeCheckpointError
from tsm.checkpoint.hub import MIRROR_VARIABLE, DownloadError
from tsm.checkpoint.loader import checkpoint_test_protocol, init_from_checkpoint, load_checkpoint
from tsm.checkpoint.native import CheckpointInfo, read_native_metadata, save_checkpoint
from tsm.checkpoint.published import (
    PretrainedInfo,
    download_pretrained,
    list_pretrained,
    load_pretrained,
    pretrained_info,
    resolve_checkpoint,
)
from tsm.checkpoint.weights import ARCHITECTURE_SETTINGS, copy_matching_weights, recognizer_with_weights

__all__ = [
    "ARCHITECTURE_SETTINGS",
    "FOREIGN_FORMATS",
    "MIRROR_VARIABLE",
    "CheckpointInfo",
    "Conversion",
    "DownloadError",
    "PretrainedInfo",
    "UnsafeCheckpointError",
    "checkpoint_test_protocol",
    "convert_checkpoint",
    "copy_matching_weights",
    "download_pretrained",
    "init_from_checkpoint",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "pretrained_info",
    "read_native_metadata",
    "recognizer_with_weights",
    "resolve_checkpoint",
    "save_checkpoint",
]

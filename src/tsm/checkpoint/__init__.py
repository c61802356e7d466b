"""Checkpoints and model names, one job a module, imports one way: ``info`` and ``weights``
(putting weights into models) at the bottom; ``native`` (this project's self-describing format);
``foreign`` (the reference's and MMAction2's files); ``registry`` (the one model registry:
architectures and their published tags, ``register_model``, ``list_models``), ``pretrained``
(a tag's record) and ``zoo`` (the built-in names as data); ``loader`` (``load_checkpoint`` /
``load_pretrained``: any file or published name in, a model out; downloads go through
:mod:`tsm.download`); ``factory`` (``create_model``, beside the registry); ``convert``."""

from tsm.checkpoint import zoo  # noqa: F401 (registers the built-in architectures and published tags)
from tsm.checkpoint.convert import Conversion, convert_checkpoint
from tsm.checkpoint.factory import create_model
from tsm.checkpoint.foreign import FOREIGN_FORMATS, UnsafeCheckpointError
from tsm.checkpoint.info import CheckpointInfo
from tsm.checkpoint.loader import (
    checkpoint_test_protocol,
    download_pretrained,
    init_from_checkpoint,
    is_cached,
    is_published_name,
    load_checkpoint,
    load_pretrained,
    resolve_checkpoint,
)
from tsm.checkpoint.native import read_native_metadata, save_checkpoint
from tsm.checkpoint.pretrained import PretrainedInfo
from tsm.checkpoint.registry import (
    PUBLISHED,
    list_models,
    list_pretrained,
    matching_names,
    model_config,
    model_config_of,
    pretrained_info,
    published_name,
    register_model,
    register_pretrained,
    unregister_model,
)
from tsm.checkpoint.weights import copy_matching_weights, recognizer_with_weights
from tsm.download import MIRROR_VARIABLE, DownloadError

__all__ = [
    "FOREIGN_FORMATS",
    "MIRROR_VARIABLE",
    "PUBLISHED",
    "CheckpointInfo",
    "Conversion",
    "DownloadError",
    "PretrainedInfo",
    "UnsafeCheckpointError",
    "checkpoint_test_protocol",
    "convert_checkpoint",
    "copy_matching_weights",
    "create_model",
    "download_pretrained",
    "init_from_checkpoint",
    "is_cached",
    "is_published_name",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "matching_names",
    "model_config",
    "model_config_of",
    "pretrained_info",
    "published_name",
    "read_native_metadata",
    "recognizer_with_weights",
    "register_model",
    "register_pretrained",
    "resolve_checkpoint",
    "save_checkpoint",
    "unregister_model",
]

"""Checkpoints and model names, one job a module, imports one way: ``info`` and ``weights``
(putting weights into models) at the bottom; ``native`` (this project's self-describing format);
``foreign`` (the reference's and MMAction2's files); ``registry`` (the one model registry:
architectures and their published tags, ``register_model``, ``list_models``), ``pretrained``
(a tag's record) and ``zoo`` (the built-in names as data); ``hub_config`` / ``hub_names`` /
``hub_mirror`` (tsm model repos on the Hugging Face Hub: their ``config.json``, ``hf-hub:`` names
resolved through huggingface_hub's cache, ``TSM_HUB_MIRROR``); ``loader`` (``load_checkpoint`` /
``load_pretrained``: any file or name in, a model out; downloads go through :mod:`tsm.download`
or huggingface_hub); ``factory`` (``create_model``, beside the registry); ``convert``."""

from tsm.checkpoint import zoo  # noqa: F401 (registers the built-in architectures and published tags)
from tsm.checkpoint.convert import Conversion, convert_checkpoint
from tsm.checkpoint.factory import create_model, model_config_of
from tsm.checkpoint.foreign import FOREIGN_FORMATS, UnsafeCheckpointError
from tsm.checkpoint.hub_config import (
    HUB_CONFIG_FILE,
    HUB_LIBRARY,
    HUB_WEIGHTS_FILE,
    ORIGINAL_FOLDER,
    HubConfig,
    HubError,
    PublishedRecord,
)
from tsm.checkpoint.hub_mirror import (
    HUB_MIRROR_VARIABLE,
    file_from_hub_mirror,
    mirror_repo,
    verify_published_file,
)
from tsm.checkpoint.hub_names import (
    HUB_PREFIX,
    HubName,
    huggingface_hub,
    is_hub_name,
    parse_hub_name,
    read_hub_config,
    resolve_hub_name,
)
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
    architecture_of,
    list_models,
    list_pretrained,
    matching_names,
    model_config,
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
    "HUB_CONFIG_FILE",
    "HUB_LIBRARY",
    "HUB_MIRROR_VARIABLE",
    "HUB_PREFIX",
    "HUB_WEIGHTS_FILE",
    "MIRROR_VARIABLE",
    "ORIGINAL_FOLDER",
    "PUBLISHED",
    "CheckpointInfo",
    "Conversion",
    "DownloadError",
    "HubConfig",
    "HubError",
    "HubName",
    "PretrainedInfo",
    "PublishedRecord",
    "UnsafeCheckpointError",
    "architecture_of",
    "checkpoint_test_protocol",
    "convert_checkpoint",
    "copy_matching_weights",
    "create_model",
    "download_pretrained",
    "file_from_hub_mirror",
    "huggingface_hub",
    "init_from_checkpoint",
    "is_cached",
    "is_hub_name",
    "is_published_name",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "matching_names",
    "mirror_repo",
    "model_config",
    "model_config_of",
    "parse_hub_name",
    "pretrained_info",
    "published_name",
    "read_hub_config",
    "read_native_metadata",
    "recognizer_with_weights",
    "register_model",
    "register_pretrained",
    "resolve_checkpoint",
    "resolve_hub_name",
    "save_checkpoint",
    "unregister_model",
    "verify_published_file",
]

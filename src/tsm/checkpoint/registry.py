"""The one model registry, as timm's: every model name tsm knows, architectures and their
published tags together, and :func:`tsm.create_model` (:mod:`tsm.checkpoint.factory`) beside it.

* An architecture (``tsm_resnet50``) stands for a :class:`~tsm.models.ModelConfig` (400 classes
  and 8 frames unless changed). Every registered backbone gives three without registering them:
  ``tsm_X`` (TSM at the backbone's first shift placement), ``tsn_X`` (no shift) and
  ``tsm_online_X`` (uni-directional TSM, for streams). :func:`register_model` adds others (non-local,
  temporal pooling, ...).
* A tag (``tsm_resnet50.reference_kinetics400_8f``) is a published checkpoint of an architecture:
  a :class:`~tsm.checkpoint.pretrained.PretrainedInfo` (file, dataset, test protocol, settings),
  added with :func:`register_pretrained`. The built-in architectures and tags are in
  :mod:`tsm.checkpoint.zoo`.

Why at the checkpoint layer: a tag holds its test protocol (a :class:`tsm.DataConfig`, from
``tsm.data``) and ``create_model(pretrained=True)`` loads it with the checkpoint loader, and the
layers below reach neither (``tsm.models`` imports only ``tsm.ops``). Backbones stay in
:mod:`tsm.models.specs`: they are parts of networks, not model names, and lookups here read them
each time, so a backbone registered after import (from outside the package) is listed at once.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from tsm.checkpoint.pretrained import PretrainedInfo
from tsm.models import ModelConfig, backbone_spec, list_backbones

_ARCHITECTURES: dict[str, ModelConfig] = {}  # registered with register_model
_TAGS: dict[str, PretrainedInfo] = {}  # ARCHITECTURE.TAG: its published checkpoint
PUBLISHED: Mapping[str, PretrainedInfo] = MappingProxyType(_TAGS)  # a live, read-only view
_LEGACY_NAMES: dict[str, str] = {}  # tsm 0.1 name: ARCHITECTURE.TAG


def _standard_architectures() -> dict[str, ModelConfig]:
    """``tsm_X``, ``tsn_X`` and ``tsm_online_X`` of every registered backbone ``X``."""
    standard = {}
    for name in list_backbones():
        place = backbone_spec(name).placements[0]
        standard[f"tsm_{name}"] = ModelConfig(backbone=name, shift=True, place=place)
        standard[f"tsn_{name}"] = ModelConfig(backbone=name, shift=False)
        standard[f"tsm_online_{name}"] = ModelConfig(
            backbone=name, shift=True, place=place, mode="unidirectional"
        )
    return standard


def _architectures() -> dict[str, ModelConfig]:
    return {**_standard_architectures(), **_ARCHITECTURES}


def register_model(name: str, config: ModelConfig | None = None, /, **settings: Any) -> ModelConfig:
    """Add the architecture ``name``: ``config``, or a :class:`ModelConfig` of ``settings``
    (``register_model("tsm_resnet50_nl", backbone="resnet50", non_local="gaussian")``). Its
    classes and frames are defaults that :func:`tsm.create_model` callers change."""
    if "." in name or not name:
        raise ValueError(f"model name {name!r}: an architecture name is not empty and has no '.' (tags do)")
    if name in _architectures():
        raise ValueError(f"model {name!r} is registered already (tsm.unregister_model removes it)")
    config = ModelConfig(**settings) if config is None else config.replace(**settings)
    _ARCHITECTURES[name] = config
    return config


def register_pretrained(info: PretrainedInfo) -> PretrainedInfo:
    """Add a published checkpoint as a tag (``info.name``: ``ARCHITECTURE.TAG``) of a registered
    architecture."""
    if info.name in _TAGS or info.legacy_name in _LEGACY_NAMES:
        raise ValueError(f"model {info.name!r} is registered already (tsm.unregister_model removes it)")
    if "." not in info.name or info.architecture not in _architectures():
        raise ValueError(
            f"cannot register {info.name!r}: a published model is named ARCHITECTURE.TAG, with an "
            "ARCHITECTURE of tsm.list_models()"
        )
    _TAGS[info.name] = info
    if info.legacy_name:
        _LEGACY_NAMES[info.legacy_name] = info.name
    return info


def unregister_model(name: str) -> None:
    """Remove a model added by :func:`register_model` (with its tags) or :func:`register_pretrained`
    (one tag). A backbone's standard architectures go with their backbone."""
    resolved = published_name(name)
    if resolved is not None:
        info = _TAGS.pop(resolved)
        _LEGACY_NAMES.pop(info.legacy_name, None)
    elif name in _ARCHITECTURES:
        del _ARCHITECTURES[name]
        for tag in list_pretrained(f"{name}.*"):
            unregister_model(tag)
    elif name in _standard_architectures():
        raise ValueError(f"{name!r} is the standard architecture of a registered backbone: it goes with it")
    else:
        raise ValueError(f"unknown model {name!r}: nothing to unregister")


def matching_names(names: Iterable[str], pattern: str | None = None) -> list[str]:
    """``names`` that match ``pattern`` (a glob such as ``"*r50*"``, or else a substring), sorted."""
    if pattern is None:
        return sorted(names)
    glob = pattern if any(character in pattern for character in "*?[") else f"*{pattern}*"
    return sorted(name for name in names if fnmatch.fnmatchcase(name, glob))


def list_models(pattern: str | None = None) -> list[str]:
    """Architecture names accepted by :func:`tsm.create_model`, sorted; ``pattern``: a glob or a substring."""
    return matching_names(_architectures(), pattern)


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names (``ARCHITECTURE.TAG``) of the published checkpoints, sorted; ``pattern``: a glob
    (``"tsm_resnet50.*"``, ``"*kinetics400*"``) or a substring."""
    return matching_names(_TAGS, pattern)


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` an architecture name stands for (400 classes and 8 frames unless
    changed with :meth:`ModelConfig.replace`)."""
    architectures = _architectures()
    if name not in architectures:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(architectures))}")
    return architectures[name]


def published_name(name: str) -> str | None:
    """The ``ARCHITECTURE.TAG`` name of a published checkpoint given by that name or its tsm 0.1
    name, else None."""
    return name if name in _TAGS else _LEGACY_NAMES.get(name)


def pretrained_info(name: str) -> PretrainedInfo:
    """What is known about the published checkpoint ``name`` (see :func:`list_pretrained`)."""
    resolved = published_name(name)
    if resolved is None:
        close = difflib.get_close_matches(name, [*_TAGS, *_LEGACY_NAMES], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown pretrained model {name!r}{hint} (`tsm models --pretrained` lists them)")
    return _TAGS[resolved]


def registered_config(name: str) -> ModelConfig:
    """The network a registered name stands for: an architecture, or a published
    ``ARCHITECTURE.TAG`` (its architecture with the published classes, frames and settings)."""
    if "." in name or published_name(name) is not None:
        return pretrained_info(name).model_config
    return model_config(name)


def architecture_of(config: ModelConfig) -> str | None:
    """The first :func:`tsm.list_models` name whose network ``config`` is, whatever its classes,
    frames and backbone window; None for a network no name stands for."""
    own = config.architecture()
    for name in list_models():
        try:
            candidate = model_config(name).replace(
                num_classes=config.num_classes,
                num_segments=config.num_segments,
                backbone_segments=config.backbone_segments,
            )
        except ValueError:  # e.g. temporal pooling of a one-frame clip: not this network
            continue
        if candidate.architecture() == own:
            return name
    return None

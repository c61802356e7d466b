"""The architectures by name, as in timm: each name stands for a :class:`ModelConfig`.

Published weights are tags of these names (``tsm_resnet50.reference_kinetics400_8f``: see
:mod:`tsm.checkpoint.zoo`); :func:`tsm.create_model` builds either.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from types import MappingProxyType

from tsm.models.config import ModelConfig

_MODELS: dict[str, ModelConfig] = {}


def _register(name: str, **settings: object) -> None:
    _MODELS[name] = ModelConfig(**settings)


for _depth in (18, 34, 50, 101, 152):
    _register(f"tsm_resnet{_depth}", backbone=f"resnet{_depth}", shift=True)
    _register(f"tsn_resnet{_depth}", backbone=f"resnet{_depth}", shift=False)
    _register(f"tsm_online_resnet{_depth}", backbone=f"resnet{_depth}", shift=True, mode="unidirectional")
_register("tsm_resnet50_tpool", backbone="resnet50", shift=True, temporal_pool=True)
_register("tsm_mobilenet_v2", backbone="mobilenet_v2", shift=True)
_register("tsn_mobilenet_v2", backbone="mobilenet_v2", shift=False)
_register("tsm_online_mobilenet_v2", backbone="mobilenet_v2", shift=True, mode="unidirectional")
# Non-local TSM: the reference's (embedded gaussian) and MMAction2's other two modes; TSN-NL baseline.
_register("tsm_resnet50_nl", backbone="resnet50", shift=True, non_local="embedded_gaussian")
_register("tsm_resnet50_nl_gaussian", backbone="resnet50", shift=True, non_local="gaussian")
_register("tsm_resnet50_nl_dot_product", backbone="resnet50", shift=True, non_local="dot_product")
_register("tsn_resnet50_nl", backbone="resnet50", shift=False, non_local="embedded_gaussian")
# MMAction2's MobileOne-S4 TSM: every block shifted as a whole, so that its branches fuse.
_register("tsm_mobileone_s4", backbone="mobileone_s4", shift=True, place="block")
_register("tsn_mobileone_s4", backbone="mobileone_s4", shift=False)
MODELS = MappingProxyType(_MODELS)


def matching_names(names: Iterable[str], pattern: str | None = None) -> list[str]:
    """``names`` that match ``pattern`` (a glob such as ``"*r50*"``, or else a substring), sorted."""
    if pattern is None:
        return sorted(names)
    glob = pattern if any(character in pattern for character in "*?[") else f"*{pattern}*"
    return sorted(name for name in names if fnmatch.fnmatchcase(name, glob))


def list_models(pattern: str | None = None) -> list[str]:
    """Architecture names accepted by :func:`tsm.create_model`, sorted; ``pattern``: a glob or a substring."""
    return matching_names(_MODELS, pattern)


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` an architecture name stands for (400 classes and 8 frames unless
    changed with :meth:`ModelConfig.replace`)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]

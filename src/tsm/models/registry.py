"""One registry of named models, as in timm: ``create_model(name, **overrides)``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from tsm.models.recognizer import Recognizer

_MODELS: dict[str, dict[str, Any]] = {}


def _register(name: str, **config: Any) -> None:
    _MODELS[name] = config


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


def matching_names(names: Iterable[str], pattern: str | None = None) -> list[str]:
    """``names`` that match ``pattern`` (a glob such as ``"*r50*"``, or else a substring), sorted."""
    if pattern is None:
        return sorted(names)
    glob = pattern if any(character in pattern for character in "*?[") else f"*{pattern}*"
    return sorted(name for name in names if fnmatch.fnmatchcase(name, glob))


def list_models(pattern: str | None = None) -> list[str]:
    """Names accepted by :func:`create_model`, sorted; ``pattern``: a glob or a substring."""
    return matching_names(_MODELS, pattern)


def model_config(name: str) -> dict[str, Any]:
    """The Recognizer arguments a registered name stands for."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return dict(_MODELS[name])


def create_model(name: str, num_classes: int = 400, **overrides: Any) -> Recognizer:
    """Build a registered model; keyword arguments override its defaults (see :class:`Recognizer`)."""
    return Recognizer(num_classes=num_classes, **{**model_config(name), **overrides})

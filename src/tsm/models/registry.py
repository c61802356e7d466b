"""One registry of named models, as in timm: ``create_model(name, **overrides)``."""

from __future__ import annotations

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


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_MODELS)


def model_config(name: str) -> dict[str, Any]:
    """The Recognizer arguments a registered name stands for."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return dict(_MODELS[name])


def create_model(name: str, num_classes: int = 400, **overrides: Any) -> Recognizer:
    """Build a registered model; keyword arguments override its defaults (see :class:`Recognizer`)."""
    return Recognizer(num_classes=num_classes, **{**model_config(name), **overrides})

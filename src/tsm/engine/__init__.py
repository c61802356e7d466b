"""Deprecated: ``tsm.engine`` is :mod:`tsm.training` (its name in tsm 0.1; renamed because "engine"
now means only what runs a model: :mod:`tsm.inference`'s runtimes). This alias goes in the next
release.

``import tsm.engine``, ``tsm.engine.NAME`` and ``tsm.engine.SUBMODULE`` still work and give
:mod:`tsm.training`'s objects themselves (``tsm.engine.module is tsm.training.module``), with a
:class:`DeprecationWarning` on the first import of each.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

import tsm.training

_OLD, _NEW = __name__, tsm.training.__name__


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: import {new} instead", DeprecationWarning, stacklevel=3)


class _TrainingSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tsm.engine.X`` as the module ``tsm.training.X`` (one module object, not a copy)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(f"{_OLD}."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = _NEW + spec.name[len(_OLD) :]
        _warn(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module ran when ``tsm.training`` imported it."""


if not any(isinstance(finder, _TrainingSubmodules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _TrainingSubmodules())
_warn(_OLD, _NEW)


def __getattr__(name: str) -> Any:
    return getattr(tsm.training, name)


__all__ = tsm.training.__all__

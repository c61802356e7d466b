"""Reading foreign checkpoint files safely: ``torch.load(weights_only=True)`` unless the user opts
out, a one-line error for what is not a checkpoint, and the tensors split from the rest."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]
_NOT_A_CHECKPOINT = (
    "cannot read {path} as a PyTorch checkpoint: it was not written by torch.save, or is damaged"
)


class UnsafeCheckpointError(ValueError):
    """The file stores Python objects that only full (code-executing) unpickling can read."""


def read_torch_file(path: str | Path, allow_pickle: bool = False) -> Any:
    """``torch.load`` a file on the CPU, safely (``weights_only=True``) unless ``allow_pickle``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        # The safe unpickler names each class or function it refuses "GLOBAL module.name".
        if allow_pickle or "GLOBAL " not in str(error):
            raise ValueError(_NOT_A_CHECKPOINT.format(path=path)) from None
        raise UnsafeCheckpointError(
            f"{path} stores Python objects besides tensors ({_unsafe_globals(path, error)}), which only full "
            "unpickling can read, and unpickling can run arbitrary code. If you trust the file's "
            "source, load it with allow_pickle=True (CLI: --allow-pickle)"
        ) from None
    except (ModuleNotFoundError, AttributeError) as error:  # allow_pickle: a class that is gone
        raise ValueError(
            f"unpickling {path} needs Python code that is not installed here ({error}); install the "
            "package that wrote it, or re-save just its state_dict with that package"
        ) from None
    except Exception as error:  # torch raises many types (KeyError, RuntimeError) for non-checkpoints
        raise ValueError(f"{_NOT_A_CHECKPOINT.format(path=path)} ({type(error).__name__}: {error})") from None


def _unsafe_globals(path: Path, error: Exception) -> str:
    """All classes/functions a zip checkpoint needs, or the first one the unpickler refused."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # legacy (non-zip) files cannot be inspected without unpickling
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))[:1]
    return ", ".join(names)


def state_dict_of(obj: Any, path: str | Path) -> tuple[StateDict, dict[str, Any]]:
    """Split a loaded checkpoint into its tensor state dict and the other top-level entries."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    extras: dict[str, Any] = {}
    state: Any = obj
    if isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
        extras = {key: value for key, value in obj.items() if key != "state_dict"}
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path} holds no tensors (top-level entries: {', '.join(map(str, obj))})")
    return tensors, extras

"""Load the reference's and MMAction2's checkpoints into a :class:`tsm.Recognizer`.

Precedence, highest first: explicit arguments, the weights (architecture), the checkpoint's own
metadata, its file name, facts of the format (e.g. the online demo shifts 1/8 of the channels).
Every setting used is reported in ``CheckpointInfo.sources``; disagreements between the file name
and the weights are reported in ``CheckpointInfo.notes`` (the weights win).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tsm.checkpoint.formats import (
    MAPPERS,
    MMACTION2,
    REFERENCE,
    REFERENCE_ONLINE,
    StateDict,
    detect_format,
    read_torch_file,
    state_dict_of,
)
from tsm.checkpoint.infer import (
    THETA_PHI_MODES,
    infer_architecture,
    mmaction2_settings,
    reference_name_settings,
)
from tsm.checkpoint.native import CheckpointInfo
from tsm.checkpoint.weights import recognizer_with_weights
from tsm.data import DataConfig, dataset_class_names
from tsm.models import Recognizer, Setting, strip_data_parallel

# Datasets whose classes depend on direction: the reference trains them without flips.
_NO_FLIP_DATASETS = ("something", "sthv", "jester")
# Settings that only the weights may decide; file names merely cross-check them.
_ARCHITECTURE = ("backbone", "num_classes", "shift", "place", "temporal_pool")
_HOW_TO_PASS = {
    "num_segments": "num_segments=T (tsm convert: --num-segments T; the published models use 8 or 16)",
    "fold_div": "fold_div=D (tsm convert: --fold-div D; every published model uses 8)",
}


def _format_settings(fmt: str, path: Path, extras: dict[str, Any]) -> dict[str, Setting]:
    """What the format, its metadata and its file-name convention say beyond the weights."""
    if fmt == REFERENCE:
        settings = reference_name_settings(path)
    elif fmt == MMACTION2:
        settings = mmaction2_settings(path, extras)
    else:  # the online demo: one fixed network
        fact = "the reference's online demo (fixed: 1/8 of the channels from the previous frame)"
        settings = {"mode": Setting("unidirectional", fact), "fold_div": Setting(8, fact)}
        settings["num_segments"] = Setting(
            8, "default: per-frame outputs of an online model do not depend on the clip length"
        )
    if fmt != REFERENCE_ONLINE:
        settings["mode"] = Setting("bidirectional", f"{fmt} models are offline (bi-directional) TSM")
    if fmt == REFERENCE:  # what theta/phi blocks are when the file name does not say
        settings["non_local_mode"] = Setting(
            "embedded_gaussian", "the reference's only non-local mode (ops/non_local.py)"
        )
    return settings


def _resolve_non_local(weights: Setting, hints: dict[str, Setting], notes: list[str]) -> Setting:
    """The non-local mode: the weights tell gaussian from theta/phi blocks, metadata tells which."""
    hint = hints.get("non_local")
    if weights.value == THETA_PHI_MODES:
        if hint is not None and hint.value in THETA_PHI_MODES:
            return Setting(hint.value, f"{hint.source}; {weights.source}")
        fact = hints.get("non_local_mode")
        if fact is None or (hint is not None and hint.value is not None):
            said = f"; {hint.source} says non_local={hint.value!r}" if hint is not None else ""
            raise ValueError(
                f"the checkpoint has non-local blocks with theta/phi weights ({' or '.join(THETA_PHI_MODES)},"
                f" which weights cannot tell apart) but its config and file name do not say which{said}; "
                "pass non_local='embedded_gaussian' or non_local='dot_product'"
            )
        if hint is not None:
            notes.append(f"{hint.source} has no non-local mark but the weights have non-local blocks")
        return fact
    if hint is not None and hint.value != weights.value:
        notes.append(
            f"{hint.source} says non_local={hint.value!r} but the weights say {weights.value!r}; "
            "the weights are used"
        )
    return weights


def _resolve(
    architecture: dict[str, Setting], hints: dict[str, Setting], overrides: dict[str, Any]
) -> tuple[dict[str, Setting], list[str]]:
    """Combine arguments, weights and hints into Recognizer settings; list disagreements."""
    notes: list[str] = []
    settings = dict(architecture)
    weights_non_local = architecture.get("non_local", Setting(None, "weights: no non-local blocks"))
    if "non_local" not in overrides:
        settings["non_local"] = _resolve_non_local(weights_non_local, hints, notes)
    for name, hint in hints.items():
        if name in _ARCHITECTURE:
            weights = architecture.get(name)
            if weights is not None and weights.value != hint.value:
                notes.append(
                    f"{hint.source} says {name}={hint.value!r} but the weights say {weights.value!r}; "
                    "the weights are used"
                )
        elif name in ("num_segments", "fold_div", "mode", "backbone_segments"):
            settings[name] = hint
    if not settings["shift"].value:
        settings.setdefault("fold_div", Setting(8, "unused: the model has no shift"))
        settings.setdefault("place", Setting("blockres", "unused: the model has no shift"))
    settings.update({name: Setting(value, "argument") for name, value in overrides.items()})
    if settings["backbone"].value is None:
        raise ValueError(
            f"the checkpoint's ResNet ({settings['backbone'].source}) is not a torchvision "
            "ResNet-18/34/50/101/152; pass backbone=NAME if you know which one it is"
        )
    missing = [name for name in ("num_segments", "fold_div") if name not in settings]
    if missing:
        raise ValueError(
            f"the checkpoint does not say its {' and '.join(missing)} (not in its weights, metadata or "
            f"file name); pass {' and '.join(_HOW_TO_PASS[name] for name in missing)}, or convert the "
            "file once with tsm convert so that every command can read them"
        )
    window = settings.pop("backbone_segments", None)
    if window is not None and window.value not in (None, settings["num_segments"].value):
        settings["backbone_segments"] = window
        notes.append(
            f"loaded as MMAction2 runs it: {settings['num_segments'].value}-frame clips whose backbone "
            f"shifts {window.value}-frame windows ({window.source}; num_segments from "
            f"{settings['num_segments'].source})"
        )
    return settings, notes


def _fill_batch_counters(state: StateDict) -> list[str]:
    """Old PyTorch (< 0.4.1) wrote no BatchNorm ``num_batches_tracked``; they do not affect outputs."""
    running_means = [k for k in state if k.endswith(".running_mean")]
    absent = [
        counter
        for key in running_means
        if (counter := key.removesuffix("running_mean") + "num_batches_tracked") not in state
    ]
    if not absent:
        return []
    state.update({key: torch.zeros((), dtype=torch.long) for key in absent})
    return [f"{len(absent)} BatchNorm num_batches_tracked counters were absent (older PyTorch); set to 0"]


def _written_by(fmt: str, extras: dict[str, Any]) -> str:
    if fmt == REFERENCE:
        details = {k: extras[k] for k in ("arch", "epoch", "best_prec1") if k in extras}
        return f"reference implementation {details}" if details else "reference implementation"
    if fmt == MMACTION2:
        meta = extras.get("meta") if isinstance(extras.get("meta"), dict) else {}
        versions = {k: meta[k] for k in ("mmaction2_version", "mmengine_version", "epoch") if k in meta}
        return f"MMAction2 {versions}" if versions else "MMAction2"
    return "the reference's online demo"


def load_foreign_checkpoint(
    path: str | Path, allow_pickle: bool = False, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """Load a reference or MMAction2 checkpoint; ``overrides`` are :class:`Recognizer` arguments."""
    path = Path(path)
    state, extras = state_dict_of(read_torch_file(path, allow_pickle), path)
    state = strip_data_parallel(state)
    fmt = detect_format(state)
    folded = [key for key in state if key.endswith(".nl.W.0.bias")]
    state = MAPPERS[fmt](state)
    hints = _format_settings(fmt, path, extras)
    settings, notes = _resolve(infer_architecture(state), hints, overrides)
    if folded:
        notes.append(
            f"{len(folded)} non-local W convs had a bias (the reference's); each is folded into the "
            "running mean of the BatchNorm that follows, which gives the same outputs"
        )
    config = {name: setting.value for name, setting in settings.items()}
    notes += _fill_batch_counters(state)
    model = recognizer_with_weights(config, state)
    if "dataset" in hints:
        notes.append(f"trained on {hints['dataset'].value!r} ({hints['dataset'].source})")
    dataset = str(hints["dataset"].value) if "dataset" in hints else ""
    data_config = DataConfig(
        num_segments=model.num_segments,
        sampling="dense" if "dense" in hints and hints["dense"].value else "uniform",
        flip=not dataset.startswith(_NO_FLIP_DATASETS) and fmt != REFERENCE_ONLINE,
    )
    info = CheckpointInfo(
        format=fmt,
        model_config=model.config,
        # The online demo prints the 27 Jester classes in sorted order (the reference's order).
        class_names=(
            dataset_class_names("jester", "reference")
            if fmt == REFERENCE_ONLINE and model.num_classes == 27
            else None
        ),
        data_config=data_config,
        written_by=_written_by(fmt, extras),
        notes=notes,
        sources={name: setting.source for name, setting in settings.items()},
        # MMAction2's TSM configs test with average_clips='prob' (mean of the views' softmax).
        view_average="softmax" if fmt == MMACTION2 else "logits",
    )
    return model, info

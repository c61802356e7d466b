"""Load the reference's and MMAction2's checkpoints into a :class:`tsm.Recognizer`.

Precedence, highest first: explicit arguments, the weights (architecture), the checkpoint's own
metadata, its file name, facts of the format (e.g. the online demo shifts 1/8 of the channels)
and of the publisher's configs for the backbone. Every setting used is reported in
``CheckpointInfo.sources``; disagreements between the file name and the weights are reported in
``CheckpointInfo.notes`` (the weights win).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tsm.checkpoint.foreign.architecture import THETA_PHI_MODES, infer_architecture
from tsm.checkpoint.foreign.files import StateDict, read_torch_file, state_dict_of
from tsm.checkpoint.foreign.hints import FileHints, mmaction2_hints, reference_name_hints
from tsm.checkpoint.foreign.layouts import (
    MAPPERS,
    MMACTION2,
    PUBLISHER_OF,
    REFERENCE,
    REFERENCE_ONLINE,
    detect_format,
)
from tsm.checkpoint.info import CheckpointInfo
from tsm.checkpoint.weights import recognizer_with_weights
from tsm.data import PUBLIC_DATASETS, DataConfig, dataset_class_names, public_dataset
from tsm.models import ModelConfig, Recognizer, Setting, backbone_spec, strip_data_parallel

_HOW_TO_PASS = {
    "num_segments": "num_segments=T (tsm convert: --num-segments T; the published models use 8 or 16)",
    "fold_div": "fold_div=D (tsm convert: --fold-div D; every published model uses 8)",
}


def _format_hints(fmt: str, path: Path, extras: dict[str, Any]) -> FileHints:
    """What the format, its metadata and its file-name convention say beyond the weights."""
    if fmt == REFERENCE:
        hints = reference_name_hints(path)
        # what theta/phi blocks are when the file name does not say
        hints.theta_phi_mode = Setting(
            "embedded_gaussian", "the reference's only non-local mode (ops/non_local.py)"
        )
    elif fmt == MMACTION2:
        hints = mmaction2_hints(path, extras)
    else:  # the online demo: one fixed network
        fact = "the reference's online demo (fixed: 1/8 of the channels from the previous frame)"
        hints = FileHints({"mode": Setting("unidirectional", fact), "fold_div": Setting(8, fact)})
        hints.settings["num_segments"] = Setting(
            8, "default: per-frame outputs of an online model do not depend on the clip length"
        )
    if fmt != REFERENCE_ONLINE:
        hints.settings["mode"] = Setting("bidirectional", f"{fmt} models are offline (bi-directional) TSM")
    return hints


def _resolve_non_local(weights: Setting, hints: FileHints, notes: list[str]) -> Setting:
    """The non-local mode: the weights tell gaussian from theta/phi blocks, metadata tells which."""
    hint = hints.settings.get("non_local")
    if weights.value == THETA_PHI_MODES:
        if hint is not None and hint.value in THETA_PHI_MODES:
            return Setting(hint.value, f"{hint.source}; {weights.source}")
        fact = hints.theta_phi_mode
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


def _cross_check(architecture: dict[str, Setting], hints: FileHints, notes: list[str]) -> None:
    """Note where the file name disagrees with what the weights say (the weights win)."""
    for name in ModelConfig.settings_in_weights():
        hint, weights = hints.settings.get(name), architecture.get(name)
        if name != "non_local" and hint is not None and weights is not None and weights.value != hint.value:
            notes.append(
                f"{hint.source} says {name}={hint.value!r} but the weights say {weights.value!r}; "
                "the weights are used"
            )


def _resolve(
    architecture: dict[str, Setting], hints: FileHints, overrides: dict[str, Any]
) -> tuple[dict[str, Setting], list[str]]:
    """Combine arguments, weights and hints into model settings; list disagreements."""
    notes: list[str] = []
    settings = dict(architecture)
    weights_non_local = architecture.get("non_local", Setting(None, "weights: no non-local blocks"))
    if "non_local" not in overrides:
        settings["non_local"] = _resolve_non_local(weights_non_local, hints, notes)
    _cross_check(architecture, hints, notes)
    settings.update({k: v for k, v in hints.settings.items() if k in ModelConfig.settings_beyond_weights()})
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
    window = settings.get("backbone_segments")
    if window is not None and window.value == settings["num_segments"].value:
        del settings["backbone_segments"]  # whole clips: a later num_segments change keeps them whole
    return settings, notes


def _publisher_defaults(fmt: str, settings: dict[str, Setting], hints: FileHints) -> None:
    """Settings the publisher's configs fix for the revealed backbone, where nothing else said."""
    layout = backbone_spec(settings["backbone"].value).layouts.get(PUBLISHER_OF[fmt])
    for name, default in (layout.settings if layout is not None else {}).items():
        hints.settings.setdefault(name, default)


def _window_note(settings: dict[str, Setting]) -> list[str]:
    window = settings.get("backbone_segments")
    if window is None or window.value in (None, settings["num_segments"].value):
        return []
    return [
        f"loaded as MMAction2 runs it: {settings['num_segments'].value}-frame clips whose backbone "
        f"shifts {window.value}-frame windows ({window.source}; num_segments from "
        f"{settings['num_segments'].source})"
    ]


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


def _data_config(fmt: str, hints: FileHints, num_segments: int) -> DataConfig:
    """The training-time data settings the file implies: dense clips, the publisher's flips."""
    dataset = hints.dataset.value if hints.dataset is not None else None
    if fmt == REFERENCE_ONLINE:
        dataset = "jester"  # the online demo's gestures
    known = dataset in PUBLIC_DATASETS
    flips = public_dataset(dataset).training_flips(PUBLISHER_OF[fmt]) if known else {"flip": True}
    dense = hints.dense is not None and bool(hints.dense.value)
    return DataConfig(num_segments=num_segments, sampling="dense" if dense else "uniform", **flips)


def load_foreign_checkpoint(
    path: str | Path, allow_pickle: bool = False, **overrides: Any
) -> tuple[Recognizer, CheckpointInfo]:
    """Load a reference or MMAction2 checkpoint; ``overrides`` are :class:`ModelConfig` settings."""
    path = Path(path)
    state, extras = state_dict_of(read_torch_file(path, allow_pickle), path)
    state = strip_data_parallel(state)
    fmt = detect_format(state)
    folded = [key for key in state if key.endswith(".nl.W.0.bias")]
    state = MAPPERS[fmt](state)
    hints = _format_hints(fmt, path, extras)
    architecture = infer_architecture(state)
    if architecture["backbone"].value is not None:
        _publisher_defaults(fmt, architecture, hints)
    settings, notes = _resolve(architecture, hints, overrides)
    notes += _window_note(settings)
    if folded:
        notes.append(
            f"{len(folded)} non-local W convs had a bias (the reference's); each is folded into the "
            "running mean of the BatchNorm that follows, which gives the same outputs"
        )
    config = ModelConfig(**{name: setting.value for name, setting in settings.items()})
    notes += _fill_batch_counters(state)
    model = recognizer_with_weights(config, state)
    if hints.dataset is not None:
        notes.append(f"trained on {hints.dataset.value!r} ({hints.dataset.source})")
    info = CheckpointInfo(
        format=fmt,
        model_config=model.config,
        # The online demo prints the 27 Jester classes in sorted order (the reference's order).
        class_names=(
            dataset_class_names("jester", "reference")
            if fmt == REFERENCE_ONLINE and model.num_classes == 27
            else None
        ),
        data_config=_data_config(fmt, hints, model.num_segments),
        written_by=_written_by(fmt, extras),
        notes=notes,
        sources={name: setting.source for name, setting in settings.items()},
        # MMAction2's TSM configs test with average_clips='prob' (mean of the views' softmax).
        view_average="softmax" if fmt == MMACTION2 else "logits",
    )
    return model, info

"""``tsm.save_pretrained``: a trained tsm model as the folder of a Hugging Face Hub repo.

The folder holds ``model.safetensors`` (the tsm checkpoint as ``tsm.save_checkpoint`` writes it,
self-describing), ``config.json`` (:class:`tsm.checkpoint.HubConfig`), ``README.md`` (the model
card) and, when asked, ``exports/`` (ONNX, int8, web...). It is built beside its destination and
moved into place when complete, so a refused export or a failed check leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsm.checkpoint import (
    HUB_CONFIG_FILE,
    HUB_LIBRARY,
    HUB_WEIGHTS_FILE,
    HubConfig,
    PublishedRecord,
    load_checkpoint,
    save_checkpoint,
)
from tsm.data import DataConfig, as_data_config
from tsm.fileio import replace_folder
from tsm.hub.card import CardDetails, TestMetrics, write_model_card
from tsm.hub.exports import ExportJob, ExportSettings, HubExport, check_export_names, write_exports
from tsm.models import Recognizer

CARD_FILE = "README.md"


@dataclass(frozen=True)
class RepoContents:
    """What a repo holds besides the network: classes, pipeline, card, exports, a mirror's original."""

    class_names: tuple[str, ...]
    data_config: DataConfig
    view_average: str
    card: CardDetails
    exports: tuple[HubExport, ...] = ()
    export_settings: ExportSettings = field(default_factory=ExportSettings)
    published: PublishedRecord | None = None
    original_file: Path | None = None  # a mirror's copy of the published file


def _checked_pipeline(
    data_config: DataConfig | Mapping[str, Any] | None, model: Recognizer, what: str
) -> DataConfig:
    """The test pipeline as the repo will store it, or a one-line error when it cannot be written."""
    try:
        config = as_data_config(data_config, num_segments=model.num_segments)
        json.dumps(config.to_dict())
    except (TypeError, ValueError) as error:
        raise ValueError(f"the test pipeline of {what} cannot be written to a Hub repo: {error}") from None
    return config


def _checked_class_names(names: Sequence[str] | None, model: Recognizer, what: str) -> tuple[str, ...]:
    if names is None:
        raise ValueError(
            f"{what} has no class names, and a Hub repo must say what its logits mean: give them "
            "(class_names=[...], or --class-names FILE with one name per line)"
        )
    if len(names) != model.num_classes:
        raise ValueError(f"{len(names)} class names for {what}, which has {model.num_classes} classes")
    return tuple(str(name) for name in names)


def describe_model(
    model_or_checkpoint: Recognizer | str | Path,
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    view_average: str | None = None,
) -> tuple[Recognizer, tuple[str, ...], DataConfig, str]:
    """``(model, class names, test pipeline, view averaging)`` of a Recognizer or of any checkpoint
    :func:`tsm.load_checkpoint` reads; the arguments given win over what the checkpoint says."""
    if isinstance(model_or_checkpoint, Recognizer):
        model, what = model_or_checkpoint, "the model"
        stored_names, stored_config, stored_average = None, None, "logits"
    else:
        model, info = load_checkpoint(model_or_checkpoint)
        what = str(model_or_checkpoint)
        stored_names, stored_config, stored_average = info.class_names, info.data_config, info.view_average
    names = _checked_class_names(class_names if class_names is not None else stored_names, model, what)
    config = _checked_pipeline(data_config if data_config is not None else stored_config, model, what)
    return model, names, config, view_average or stored_average


def _refuse_other_folders(folder: Path) -> None:
    """A repo folder replaces only an earlier one (or an empty folder), never other files."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    config = folder / HUB_CONFIG_FILE
    try:
        earlier = json.loads(config.read_text(encoding="utf-8")).get("library_name") == HUB_LIBRARY
    except (OSError, ValueError, AttributeError):
        earlier = False
    if not earlier:
        raise ValueError(f"{folder} exists and is not a tsm model folder: choose a new or empty folder")


def write_repo_folder(folder: str | Path, model: Recognizer, contents: RepoContents) -> Path:
    """Write the repo folder of ``model`` (atomically: built beside ``folder``, then moved in)."""
    folder = Path(folder)
    _refuse_other_folders(folder)

    def build(staging: Path) -> None:
        save_checkpoint(
            staging / HUB_WEIGHTS_FILE,
            model,
            list(contents.class_names),
            contents.data_config,
            contents.view_average,
        )
        if contents.original_file is not None and contents.published is not None:
            original = staging / contents.published.path_in_repo
            original.parent.mkdir(parents=True)
            shutil.copyfile(contents.original_file, original)
        job = ExportJob(
            model, contents.class_names, contents.data_config, folder.name, contents.export_settings
        )
        written = write_exports(job, staging, contents.exports)
        config = HubConfig(
            model_config=model.config,
            data_config=contents.data_config,
            label_names=contents.class_names,
            view_average=contents.view_average,
            published=contents.published,
            exports={name: path for name, (path, _) in written.items()},
        )
        config.write(staging / HUB_CONFIG_FILE)
        checks = {name: check for name, (_, check) in written.items()}
        write_model_card(
            staging / CARD_FILE, config, dataclasses.replace(contents.card, export_checks=checks)
        )

    replace_folder(folder, build)
    return folder


def save_pretrained(
    model_or_checkpoint: Recognizer | str | Path,
    folder: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    view_average: str | None = None,
    repo_id: str | None = None,
    metrics: str | Path | TestMetrics | None = None,
    dataset: str | None = None,
    license: str | None = None,
    base_model: str | None = None,
    exports: Sequence[str] = (),
    export_settings: ExportSettings | None = None,
) -> Path:
    """Write a tsm model as the folder of a Hugging Face Hub repo (``push_to_hub`` uploads it).

    Args:
        model_or_checkpoint: a :class:`tsm.Recognizer`, or any checkpoint :func:`tsm.load_checkpoint`
            reads (a file, a published name, an ``hf-hub:`` name), with its class names and pipeline.
        class_names, data_config, view_average: override (or, for a bare Recognizer, give) the
            classes, the test pipeline and how test views are averaged. A repo without class
            names, or with a pipeline that cannot be written, is refused.
        repo_id: ``ORG/NAME`` the card's examples name (default ``ORG/<folder name>``).
        metrics: a ``tsm test`` ``metrics.json`` (or :class:`TestMetrics`): the card's results and
            ``model-index``; ``dataset``: what the model was trained and tested on.
        license: an SPDX id as the Hub spells it (``"mit"``); ``base_model``: the Hub repo it was
            fine-tuned from (``ORG/NAME`` or ``hf-hub:ORG/NAME``).
        exports: names of :func:`tsm.hub.hub_exports` (``"onnx"``, ``"int8"``, ``"web"``, ...),
            made as ``export_settings`` say and checked as ``tsm export`` checks them.

    Returns:
        The folder.
    """
    model, names, config, average = describe_model(
        model_or_checkpoint, class_names, data_config, view_average
    )
    results = TestMetrics.read(metrics) if isinstance(metrics, str | Path) else metrics
    card = CardDetails(repo_id or f"ORG/{Path(folder).name}", dataset, license, base_model, results)
    contents = RepoContents(
        names, config, average, card, tuple(check_export_names(exports)), export_settings or ExportSettings()
    )
    return write_repo_folder(folder, model, contents)

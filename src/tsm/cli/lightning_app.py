"""The LightningCLI behind ``tsm fit`` / ``tsm validate`` / ``tsm test`` (imported only when they run)."""

from __future__ import annotations

import json
import sys
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from tsm.checkpoint import checkpoint_test_protocol, init_from_checkpoint, is_published_name, model_config_of
from tsm.engine import ExportNativeCheckpoints, RecognizerModule, TrainingSpeed, VideoDataModule
from tsm.inference import PRECISIONS, resolve_precision

RUNS = "runs"


def best_checkpoint_callback() -> ModelCheckpoint:
    """Keep the best epoch by validation top-1 and the last one (Lightning writes them atomically)."""
    return ModelCheckpoint(
        monitor="val/top1",
        mode="max",
        save_last=True,
        filename="best-epoch{epoch:03d}-top1{val/top1:.2f}",
        auto_insert_metric_name=False,
    )


def trainer_defaults(subcommand: str) -> dict[str, Any]:
    """Trainer settings of ``tsm SUBCOMMAND``: TensorBoard and CSV logs of a run share one folder,
    ``runs/<subcommand>/version_N`` (checkpoints go in it too; see :func:`share_run_folder`)."""
    run_folder = {"save_dir": RUNS, "name": subcommand}
    loggers = [
        {"class_path": f"lightning.pytorch.loggers.{name}", "init_args": dict(run_folder)}
        for name in ("TensorBoardLogger", "CSVLogger")
    ]
    callbacks = [best_checkpoint_callback(), LearningRateMonitor(), TrainingSpeed()]
    callbacks.append(ExportNativeCheckpoints())
    return {"gradient_clip_val": 20.0, "default_root_dir": RUNS, "logger": loggers, "callbacks": callbacks}


def share_run_folder(trainer: pl.Trainer) -> None:
    """Give the TensorBoard and CSV loggers of a run the same ``version_N`` folder.

    Each picks the next free version when first asked; asked together before either has made its
    folder, they pick the same. The CSV writer then opens while the folder is empty (it warns
    about, and deletes, the files of a folder that is not, such as LightningCLI's config.yaml).
    """
    loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger | CSVLogger)]
    folders = {logger.log_dir for logger in loggers}  # log_dir asks for the version
    if len(folders) == 1:
        for logger in loggers:
            if isinstance(logger, CSVLogger):
                logger.experiment  # noqa: B018 (creates the writer and its folder)


def is_model_file(path: str | None) -> bool:
    """A trained model's weights (tsm, reference, MMAction2, a published name), not a Lightning
    training checkpoint."""
    if not path:
        return False
    return str(path).endswith((".safetensors", ".pth", ".pth.tar", ".pt")) or is_published_name(path)


class TSMLightningCLI(LightningCLI):
    """LightningCLI with the data/model links that make each setting live in one place."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_segments", "model.num_segments")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.data_config", "model.data_config", apply_on="instantiate")
        parser.add_argument(
            "--init_from",
            default=None,
            help="start from the weights of a trained model (tsm .safetensors, reference or MMAction2 "
            "checkpoint, or a published name: tsm models --pretrained), all but a classifier of another "
            "size: fine-tuning, e.g. Kinetics -> UCF101",
        )

    def _prepare_run(self) -> None:
        """Load checkpoints with ``weights_only=True`` unless asked otherwise; ``--init_from`` sets
        the weights only; the loggers share one run folder."""
        config = self.config_init[self.subcommand]
        if config.get("weights_only") is None:
            config["weights_only"] = True
        if config.get("init_from"):
            init_from_checkpoint(self.model.model, config["init_from"])
        share_run_folder(self.trainer)

    before_fit = before_validate = before_test = _prepare_run


def _option_values(arguments: list[str], option: str) -> list[tuple[int, str, bool]]:
    """(index, value, joined) of each ``option VALUE`` / ``option=VALUE`` in ``arguments``."""
    found = []
    for index, arg in enumerate(arguments):
        name, equals, value = arg.partition("=")
        if name == option and equals:
            found.append((index, value, True))
        elif name == option and index + 1 < len(arguments):
            found.append((index + 1, arguments[index + 1], False))
    return found


def _expand_model_names(arguments: list[str]) -> list[str]:
    """``--model.model NAME`` as the network's settings, so that later ``--model.model.FIELD``
    overrides change that network rather than the defaults (classes and frames come from the data)."""
    arguments = list(arguments)
    for index, value, joined in _option_values(arguments, "--model.model"):
        if value.lstrip().startswith(("{", "[")):
            continue  # already settings (JSON / YAML flow mapping)
        settings = model_config_of(value).to_dict()
        for linked in ("num_classes", "num_segments"):
            settings.pop(linked)
        text = json.dumps(settings)
        arguments[index] = f"--model.model={text}" if joined else text
    return arguments


# tsm test / validate --precision: Lightning's precision for each (auto: bf16 on a CPU run where the
# CPU computes bf16 natively, as tsm predict's --precision auto).
LIGHTNING_PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def _runs_on_cpu(arguments: list[str]) -> bool:
    accelerators = [value for _, value, _ in _option_values(arguments, "--trainer.accelerator")]
    if accelerators:
        return accelerators[-1] == "cpu"
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def precision_arguments(arguments: list[str]) -> list[str]:
    """``--precision fp32|bf16|auto`` (tsm's option, as tsm predict's) as Lightning's
    ``--trainer.precision``; ``auto`` is bf16 only for a run on a CPU with AMX or AVX-512 BF16.
    The choice goes to stderr."""
    found = _option_values(arguments, "--precision")
    if not found:
        return arguments
    if _option_values(arguments, "--trainer.precision"):
        raise ValueError("give --precision or --trainer.precision, not both")
    index, value, joined = found[-1]
    if value not in PRECISIONS:
        raise ValueError(f"unknown --precision {value!r}: use one of {', '.join(PRECISIONS)}")
    device = torch.device("cpu" if _runs_on_cpu(arguments) else "cuda")
    chosen, why = resolve_precision(value, device)
    if value == "auto" and device.type != "cpu":
        why = "fp32 (auto: bf16 is for runs on a CPU with AMX or AVX-512 BF16)"
    print(f"precision: {LIGHTNING_PRECISIONS[chosen]}, {why}", file=sys.stderr, flush=True)
    start = index if joined else index - 1
    return [*arguments[:start], "--trainer.precision", LIGHTNING_PRECISIONS[chosen], *arguments[index + 1 :]]


def lightning_arguments(argv: list[str], subcommand: str = "fit") -> list[str]:
    """``argv`` as LightningCLI reads it: ``--print-config`` is its ``--print_config``; a model
    name (``--model.model NAME``) becomes that network's settings; and a model file as
    ``--ckpt_path`` (not a Lightning ``.ckpt``, which holds a training state) becomes
    ``--model.checkpoint``: the network is built from the file. ``tsm test`` / ``tsm validate``
    then also take the file's frames per clip and test pipeline, before the user's arguments and
    configs, which win. ``tsm test`` / ``tsm validate`` take ``--precision`` (see
    :func:`precision_arguments`)."""
    arguments = _expand_model_names(["--print_config" if arg == "--print-config" else arg for arg in argv])
    if subcommand in ("test", "validate"):
        arguments = precision_arguments(arguments)
    model_file = None
    for index, value, joined in _option_values(arguments, "--ckpt_path"):
        if is_model_file(value):
            position = index if joined else index - 1
            arguments[position] = arguments[position].replace("--ckpt_path", "--model.checkpoint", 1)
            model_file = value
    if model_file is not None and subcommand in ("test", "validate"):
        config, view_average = checkpoint_test_protocol(model_file)
        protocol = ["--data.num_segments", str(config.num_segments)]
        protocol += ["--data.data_config", json.dumps(config.to_dict()), "--model.view_average", view_average]
        arguments = [*protocol, *arguments]
    return arguments


def run_lightning(subcommand: str, argv: list[str]) -> int:
    """Run one Lightning subcommand with ``argv`` as its arguments."""
    # LightningCLI reads the command line itself, like Lightning's DDP launcher when it starts the
    # other processes: sys.argv holds this subcommand and its arguments while it runs.
    command_line = sys.argv
    sys.argv = [command_line[0], subcommand, *lightning_arguments(argv, subcommand)]
    try:
        TSMLightningCLI(
            RecognizerModule,
            VideoDataModule,
            trainer_defaults=trainer_defaults(subcommand),
            seed_everything_default=0,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": f"tsm {subcommand}"},
        )
    finally:
        sys.argv = command_line
    return 0

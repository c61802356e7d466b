"""The LightningCLI behind ``tsm fit`` / ``tsm validate`` / ``tsm test`` (imported only when they run)."""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from tsm.checkpoint import checkpoint_test_protocol
from tsm.cli.ckpt_path import check_ckpt_path
from tsm.cli.lightning_parser import PrintConfig, TSMArgumentParser
from tsm.inference import PRECISIONS, resolve_precision
from tsm.training import (
    GRADIENT_CLIP_VAL,
    ExportNativeCheckpoints,
    RecognizerModule,
    TrainingSpeed,
    VideoDataModule,
)

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
    return {
        "gradient_clip_val": GRADIENT_CLIP_VAL,
        "default_root_dir": RUNS,
        "logger": loggers,
        "callbacks": callbacks,
    }


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


def protocol_defaults(model_file: str) -> dict[str, Any]:
    """Defaults for ``tsm test`` / ``tsm validate`` of a model file: its frames per clip, test
    pipeline and view averaging (the publisher's, for a published name)."""
    config, view_average = checkpoint_test_protocol(model_file)
    protocol = {"data.data_config": config.to_dict(), "data.num_segments": config.num_segments}
    return {**protocol, "model.view_average": view_average}


class TSMLightningCLI(LightningCLI):
    """LightningCLI with the data/model links that make each setting live in one place, and a
    model file's test protocol as defaults of ``tsm test`` / ``tsm validate``."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        parser = super().init_parser(print_config=None, **kwargs)  # ours runs after the protocol
        parser.add_argument("--print_config", "--print-config", action=PrintConfig)
        parser.add_argument(
            "--precision",
            choices=PRECISIONS,
            help="fp32, bf16 or auto (bf16 only on a CPU with AMX or AVX-512 BF16), as tsm predict's: "
            "sets trainer.precision (32-true or bf16-mixed)",
        )
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_segments", "model.num_segments")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.data_config", "model.data_config", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; then parse again with what the first parse decides as defaults, which the user's
        arguments and configs override: for ``test`` / ``validate`` of a model file
        (``model.init.checkpoint``) its test protocol, and for ``--precision`` (not with
        ``--trainer.precision``) Lightning's precision. Then print the config if asked."""
        super().parse_arguments(parser, args)
        subcommand = self.config.subcommand
        config = self.config[subcommand]
        check_ckpt_path(config.get("ckpt_path"))
        defaults: dict[str, Any] = {}
        model_file = config.get("model.init.checkpoint")
        if subcommand in ("test", "validate") and model_file:
            defaults |= protocol_defaults(model_file)
        if config.get("precision"):
            if config.get("trainer.precision") != self._parser(subcommand).get_defaults().get(
                "trainer.precision"
            ):
                raise ValueError("give --precision or --trainer.precision, not both")
            defaults["trainer.precision"] = lightning_precision(
                config["precision"], config.get("trainer.accelerator")
            )
        if defaults:
            self._parser(subcommand).set_defaults(defaults)
            super().parse_arguments(parser, args)
        subparser = self._parser(subcommand)
        if subparser.print_config_requested:
            sys.stdout.write(subparser.dump(self.config[subcommand], skip_unset=False))
            parser.exit()

    def _prepare_run(self) -> None:
        """Load checkpoints with ``weights_only=True`` unless asked otherwise; the loggers share
        one run folder."""
        config = self.config_init[self.subcommand]
        if config.get("weights_only") is None:
            config["weights_only"] = True
        share_run_folder(self.trainer)

    before_fit = before_validate = before_test = _prepare_run


# tsm test / validate --precision: Lightning's precision for each (auto: bf16 on a CPU run where the
# CPU computes bf16 natively, as tsm predict's --precision auto).
LIGHTNING_PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def lightning_precision(value: str, accelerator: object) -> str:
    """``--precision fp32|bf16|auto`` (tsm's option, as tsm predict's) as Lightning's
    ``trainer.precision``; ``auto`` is bf16 only for a run on a CPU with AMX or AVX-512 BF16.
    The choice goes to stderr."""
    if value not in PRECISIONS:
        raise ValueError(f"unknown --precision {value!r}: use one of {', '.join(PRECISIONS)}")
    if isinstance(accelerator, str) and accelerator != "auto":
        on_cpu = accelerator == "cpu"
    else:
        mps = getattr(torch.backends, "mps", None)
        on_cpu = not torch.cuda.is_available() and not (mps is not None and mps.is_available())
    device = torch.device("cpu" if on_cpu else "cuda")
    chosen, why = resolve_precision(value, device)
    if value == "auto" and not on_cpu:
        why = "fp32 (auto: bf16 is for runs on a CPU with AMX or AVX-512 BF16)"
    print(f"precision: {LIGHTNING_PRECISIONS[chosen]}, {why}", file=sys.stderr, flush=True)
    return LIGHTNING_PRECISIONS[chosen]


def run_lightning(subcommand: str, argv: list[str]) -> int:
    """Run one Lightning subcommand with ``argv`` as its arguments."""
    # LightningCLI reads the command line itself, like Lightning's DDP launcher when it starts the
    # other processes: sys.argv holds this subcommand and its arguments while it runs.
    command_line = sys.argv
    sys.argv = [command_line[0], subcommand, *argv]
    try:
        TSMLightningCLI(
            RecognizerModule,
            VideoDataModule,
            trainer_defaults=trainer_defaults(subcommand),
            seed_everything_default=0,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": f"tsm {subcommand}"},
            parser_class=TSMArgumentParser,
        )
    finally:
        sys.argv = command_line
    return 0

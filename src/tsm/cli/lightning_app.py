"""The LightningCLI behind ``tsm fit`` / ``tsm validate`` / ``tsm test`` (imported only when they run)."""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from tsm.checkpoint import init_from_checkpoint
from tsm.checkpoint.published import is_published_name
from tsm.engine import ExportNativeCheckpoints, RecognizerModule, VideoDataModule


def best_checkpoint_callback() -> ModelCheckpoint:
    """Keep the best epoch by validation top-1 and the last one (Lightning writes them atomically)."""
    return ModelCheckpoint(
        monitor="val/top1",
        mode="max",
        save_last=True,
        filename="best-epoch{epoch:03d}-top1{val/top1:.2f}",
        auto_insert_metric_name=False,
    )


TRAINER_DEFAULTS: dict[str, Any] = {
    "gradient_clip_val": 20.0,
    "default_root_dir": "runs",
    "logger": [
        {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": "runs"}},
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
    ],
}


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

    def _parse_ckpt_path(self) -> None:
        """LightningCLI reads hyperparameters from ``--ckpt_path`` with ``torch.load``: a model file
        (safetensors, a reference checkpoint) has none, and torch before 2.14 cannot read safetensors."""
        subcommand = self.config.get("subcommand")
        if subcommand and is_model_file(self.config[subcommand].get("ckpt_path")):
            return
        super()._parse_ckpt_path()

    def _prepare_run(self) -> None:
        """Load checkpoints with ``weights_only=True`` unless asked otherwise; ``--init_from`` and a
        ``--ckpt_path`` that is a model file (not a Lightning ``.ckpt``) set the weights only."""
        config = self.config_init[self.subcommand]
        if config.get("weights_only") is None:
            config["weights_only"] = True
        if config.get("init_from"):
            init_from_checkpoint(self.model.model, config["init_from"])
        ckpt_path = config.get("ckpt_path")
        if is_model_file(ckpt_path):
            init_from_checkpoint(self.model.model, ckpt_path, strict=True)
            config["ckpt_path"] = None

    before_fit = before_validate = before_test = _prepare_run


def run_lightning(subcommand: str, argv: list[str]) -> int:
    """Run one Lightning subcommand with ``argv`` as its arguments."""
    argv = ["--print_config" if arg == "--print-config" else arg for arg in argv]
    # `tsm` parsed sys.argv already and hands LightningCLI the rest as `args` on purpose.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    TSMLightningCLI(
        RecognizerModule,
        VideoDataModule,
        args=[subcommand, *argv],
        trainer_defaults={
            **TRAINER_DEFAULTS,
            "callbacks": [best_checkpoint_callback(), LearningRateMonitor(), ExportNativeCheckpoints()],
        },
        seed_everything_default=0,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": f"tsm {subcommand}"},
    )
    return 0

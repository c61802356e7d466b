"""The LightningCLI behind ``tsm fit`` / ``tsm validate`` / ``tsm test`` (imported only when they run)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from tsm.engine import RecognizerModule, VideoDataModule
from tsm.io.checkpoint import load_weights, read_native_metadata
from tsm.io.training import ExportNativeCheckpoints

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


class TSMLightningCLI(LightningCLI):
    """LightningCLI with the data/model links that make each setting live in one place."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_segments", "model.num_segments")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.data_config", "model.data_config", apply_on="instantiate")

    def _prepare_run(self) -> None:
        """Load checkpoints with ``weights_only=True`` unless asked otherwise; accept tsm checkpoints."""
        config = self.config_init[self.subcommand]
        if config.get("weights_only") is None:
            config["weights_only"] = True
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and read_native_metadata(ckpt_path) is not None:
            from safetensors.torch import load_file

            load_weights(self.model.model, load_file(str(ckpt_path)))
            config["ckpt_path"] = None

    before_fit = before_validate = before_test = _prepare_run


def run_lightning(subcommand: str, argv: list[str]) -> int:
    """Run one Lightning subcommand with ``argv`` as its arguments."""
    argv = ["--print_config" if arg == "--print-config" else arg for arg in argv]
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


"""The argument parser of ``tsm fit`` / ``validate`` / ``test`` (Lightning's, with one-line errors
for an unknown model name and for the options tsm 0.1 had, saying what to write instead) and its
``--print_config`` / ``--print-config`` action."""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser

RENAMED_OPTIONS = {  # tsm 0.1's option: what to write instead
    "init_from": "model.init.finetune_from",
    "model.checkpoint": "model.init.checkpoint",
    "model.backbone_weights": "model.init.backbone_weights",
}


class PrintConfig(argparse.Action):
    """``--print_config`` / ``--print-config``: print the resolved config (YAML) and exit, after the
    model file's test protocol is applied (:class:`~tsm.cli.lightning_app.TSMLightningCLI`)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="print the full resolved config (YAML) and exit",
        )

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        parser.print_config_requested = True


class TSMArgumentParser(LightningArgumentParser):
    """Lightning's parser, with one-line errors for what a user of tsm 0.1 may write: an option it
    had (from the command line or a config file) and a model name that is none."""

    print_config_requested = False

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        for old, new in RENAMED_OPTIONS.items():
            if re.search(rf"(?<![\w.]){re.escape(old)}\b", message):
                raise ValueError(
                    f"{old} is now {new}: --{new} VALUE on the command line, nested keys in a config "
                    "file (docs/training.md)"
                ) from ex
        unknown_name = re.search(r"Not of type ModelName: (.*)", message)
        if unknown_name:
            raise ValueError(unknown_name[1]) from ex
        super().error(message, ex)

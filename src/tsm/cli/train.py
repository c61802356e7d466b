"""``tsm fit`` / ``tsm validate`` / ``tsm test``: Lightning training and evaluation from YAML configs.

Everything after the subcommand goes to a :class:`lightning.pytorch.cli.LightningCLI`: ``--config
FILE.yaml`` (repeatable), dotted overrides such as ``--model.optimizer.lr 0.02 --data.batch_size 16
--trainer.max_epochs 50``, a network by name (``--model.model tsm_online_resnet18``, then changed
field by field: ``--model.model.dropout 0``), where its weights start (``--model.init.backbone_weights
imagenet``, ``--model.init.finetune_from FILE``, or ``--model.init.checkpoint FILE``: a trained model
that is the network), ``--ckpt_path`` (Lightning's: a training state to resume), ``--print-config``
and ``--help``.
"""

from __future__ import annotations

import argparse

SUBCOMMANDS = {
    "fit": "train a model (YAML config + overrides; resume with --ckpt_path last)",
    "validate": "evaluate a model on the validation split",
    "test": "multi-view test: top-1/top-5/mean class accuracy, confusion matrix, predictions",
}


def _run(subcommand: str, args: argparse.Namespace) -> int:
    from tsm.cli.lightning_app import run_lightning  # Lightning loads only when needed

    return run_lightning(subcommand, args.extra)


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, summary in SUBCOMMANDS.items():
        parser = subparsers.add_parser(
            name,
            help=summary,
            add_help=False,  # --help goes to LightningCLI, which knows every option
            description=__doc__,
        )
        parser.set_defaults(handler=lambda args, name=name: _run(name, args))
        parser.set_defaults(accepts_extra=True)

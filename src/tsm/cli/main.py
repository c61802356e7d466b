"""``tsm``: one command with subcommands; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tsm.version import __version__

# Each module defines ``register(subparsers)``, which adds its parser and sets ``handler``.
COMMAND_MODULES = (
    "tsm.cli.train",
    "tsm.cli.demo",
    "tsm.cli.data",
    "tsm.cli.convert",
    "tsm.cli.predict",
    "tsm.cli.stream",
    "tsm.cli.serve",
    "tsm.cli.export",
    "tsm.cli.models",
    "tsm.cli.download",
    "tsm.cli.hub",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsm",
        description="Temporal Shift Module: train, evaluate, stream and export TSM video models.",
    )
    parser.add_argument("--version", action="version", version=f"tsm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Subcommands that set ``accepts_extra`` (fit/test, run by LightningCLI) get the arguments
    # argparse does not know as ``args.extra``; for the others they are an error.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except Exception as error:
        if not is_bad_input(error):
            raise  # a bug: its traceback is what a report needs
        print(f"tsm {args.command}: error: {error}", file=sys.stderr)
        return 1


def is_bad_input(error: BaseException) -> bool:
    """An error the user can fix, worth one line: ValueError, FileNotFoundError or one of the
    project's own error types (``VideoReadError``, ``TrainingDiverged``, ``UnsafeCheckpointError``...)."""
    return isinstance(error, ValueError | FileNotFoundError) or type(error).__module__.startswith("tsm.")


if __name__ == "__main__":
    sys.exit(main())

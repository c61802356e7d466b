"""``tsm demo``: TSM beats TSN on a task that needs time, trained and tested on the CPU in minutes.

Generates the synthetic reversed-motion dataset (pairs of classes that are each other's time
reverse), trains TSN, bi-directional TSM and uni-directional (online) TSM with the same small
budget, tests each on the held-out split and writes metrics, curves, confusion matrices and a README.
"""

from __future__ import annotations

import argparse
from typing import Any

from tsm.apps.demo import HELP, QUICK, DemoSettings, run_demo


def run(args: argparse.Namespace) -> int:
    run_demo(DemoSettings(**{**(QUICK if args.quick else {}), **_overrides(args)}), args.out)
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    fields = DemoSettings.__dataclass_fields__
    return {key: value for key, value in vars(args).items() if key in fields and value is not None}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train TSN, TSM and online TSM on a synthetic temporal task and compare them (CPU, minutes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks the pipeline")
    defaults = DemoSettings()
    for name in DemoSettings.__dataclass_fields__:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=type(getattr(defaults, name)),
            default=None,
            help=f"{HELP[name]} (default {getattr(defaults, name)}"
            + (f"; --quick: {QUICK[name]})" if name in QUICK else ")"),
        )
    parser.set_defaults(handler=run)

"""The label smoothing options of the commands that show live labels (``tsm stream``, ``tsm serve``):
the reference demo's rule, on by default in both, as on the live page and in the web export."""

from __future__ import annotations

import argparse

from tsm.models import DEMO_AGREE, DEMO_SMOOTH_WINDOW


def add_smoothing_options(parser: argparse.ArgumentParser) -> None:
    """``--smooth-window`` and ``--agree`` (see :class:`tsm.LabelSmoother`)."""
    parser.add_argument(
        "--smooth-window",
        type=int,
        default=DEMO_SMOOTH_WINDOW,
        help=f"label: sum the logits of the last K results (default {DEMO_SMOOTH_WINDOW}, the reference "
        "demo's; 1: no smoothing)",
    )
    parser.add_argument(
        "--agree",
        type=int,
        default=DEMO_AGREE,
        help=f"label: change it only when the last M candidates agree (default {DEMO_AGREE}; 1: at once)",
    )

"""The options that choose what runs a model (``tsm stream``, ``tsm predict``)."""

from __future__ import annotations

import argparse

from tsm.inference import ENGINES


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--device``."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="what runs the model: torch, onnxruntime (a checkpoint is exported once into the ONNX "
        "cache, $TSM_ONNX_CACHE or ~/.cache/tsm/onnx), or auto (default: onnxruntime on the CPU when "
        "it is installed and the model exports, else torch; the choice is printed)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device (default cpu); cuda: torch, or "
        "onnxruntime's CUDA provider where onnxruntime-gpu is installed",
    )

"""The options that choose what runs a model (``tsm stream``, ``tsm predict``, ``tsm serve``)."""

from __future__ import annotations

import argparse

from tsm.inference import DEFAULT_ENGINE, ENGINE_RUNTIMES, PRECISIONS, engine_names

PRECISION_HELP = (
    "what the torch engine computes in: fp32, bf16 (a bf16 copy of the model, BatchNorms folded, "
    "channels_last), or auto (the default: bf16 only on a CPU that reports AMX or AVX-512 BF16, "
    "where it takes 0.4-0.5x the time; the choice and its reason are printed). Exported files run "
    "in their own precision"
)


def add_precision_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--precision fp32|bf16|auto``."""
    parser.add_argument("--precision", choices=PRECISIONS, default=default, help=PRECISION_HELP)


def _engine_help() -> str:
    def described(name: str) -> str:
        row = ENGINE_RUNTIMES[name]
        files = "/".join(row.suffixes)
        if not files:
            return name
        return f"{name} (runs {files} files; a checkpoint is exported once into the export cache)"

    return (
        f"what runs the model: {', '.join(map(described, ENGINE_RUNTIMES))}, or auto (the default: the "
        f"first of {', '.join(ENGINE_RUNTIMES)} that is installed, runs on the device and, for a checkpoint, "
        "exports it; the choice and its reason are printed). The export cache is $TSM_EXPORT_CACHE, "
        "else ~/.cache/tsm/exports"
    )


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--device``, ``--threads`` and ``--precision``."""
    parser.add_argument("--engine", choices=engine_names(), default=DEFAULT_ENGINE, help=_engine_help())
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device (default cpu); cuda: torch, or onnxruntime's CUDA provider where "
        "onnxruntime-gpu is installed (openvino and executorch run on the CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads of the engine (default: the runtime's own choice; 1 is steadier when busy)",
    )
    add_precision_option(parser)

"""The options that choose what runs a model (``tsm stream``, ``tsm predict``, ``tsm serve``)."""

from __future__ import annotations

import argparse

from tsm.inference import DEFAULT_ENGINE, ENGINE_RUNTIMES, engine_names


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
    """``--engine``, ``--device`` and ``--threads``."""
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

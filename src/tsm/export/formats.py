"""The export formats tsm writes: one row each (name, file suffixes, writer, metadata reader,
runner). A format is added here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from tsm.export.onnx import onnx_runner, read_onnx_metadata, write_onnx
from tsm.export.torchscript import read_torchscript_metadata, torchscript_runner, write_torchscript

Runner = Callable[[Sequence[Tensor]], list[Tensor]]


@dataclass(frozen=True)
class ExportFormat:
    """How one file format is written, described and run.

    ``write(network, example_inputs, path, (input_names, output_names), metadata, **options)``;
    ``read_metadata(path)`` returns the string metadata; ``runner(path)`` a function on tensors
    (what the export check runs). ``packages``: the Python packages whose versions decide what
    ``write`` produces (part of the export cache's key).
    """

    name: str
    suffixes: tuple[str, ...]
    runtime: str
    write: Callable[..., None]
    read_metadata: Callable[[Path], dict[str, str]]
    runner: Callable[[Path], Runner]
    options: tuple[str, ...] = ()  # keyword options ``write`` takes
    packages: tuple[str, ...] = ()


FORMATS: dict[str, ExportFormat] = {
    spec.name: spec
    for spec in (
        ExportFormat(
            "onnx",
            (".onnx",),
            "onnxruntime (CPU)",
            write_onnx,
            read_onnx_metadata,
            onnx_runner,
            ("exporter",),
            ("onnx", "onnxscript"),
        ),
        ExportFormat(
            "torchscript",
            (".pt", ".ts", ".torchscript"),
            "TorchScript",
            write_torchscript,
            read_torchscript_metadata,
            torchscript_runner,
        ),
    )
}
EXPORT_FORMATS: tuple[str, ...] = tuple(FORMATS)


def _known_suffixes() -> str:
    return "; ".join(f"{', '.join(spec.suffixes)} ({spec.name})" for spec in FORMATS.values())


def format_for(path: str | Path, format: str | None = None) -> ExportFormat:
    """The format of ``path`` from its suffix; an explicit ``format`` must agree with it."""
    suffix = Path(path).suffix.lower()
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown export format {format!r}: use one of {', '.join(FORMATS)}")
        spec = FORMATS[format]
        if suffix not in spec.suffixes:
            raise ValueError(
                f"{Path(path).name}: a {spec.name} file must end in {' or '.join(spec.suffixes)}"
            )
        return spec
    spec = next((spec for spec in FORMATS.values() if suffix in spec.suffixes), None)
    if spec is None:
        raise ValueError(
            f"cannot tell the export format of {Path(path).name!r} from its suffix {suffix or '(none)'!r}: "
            f"use {_known_suffixes()}"
        )
    return spec


def write_options(spec: ExportFormat, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``spec.write`` takes."""
    return {name: value for name, value in options.items() if name in spec.options}

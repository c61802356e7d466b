"""The export formats tsm writes: one row each (name, file suffixes, writer, metadata reader,
runner, int8 writer). A format is added here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from tsm.export.executorch import executorch_runner, read_executorch_metadata, write_executorch
from tsm.export.executorch_int8 import quantize_executorch
from tsm.export.onnx import onnx_runner, read_onnx_metadata, write_onnx
from tsm.export.onnx_int8 import quantize_onnx
from tsm.export.quantize_api import Int8Job, QuantizedModel
from tsm.export.torchscript import read_torchscript_metadata, torchscript_runner, write_torchscript

Runner = Callable[[Sequence[Tensor]], list[Tensor]]


@dataclass(frozen=True)
class ExportFormat:
    """How one file format is written, described and run.

    ``write(network, example_inputs, path, (input_names, output_names), metadata, **options)``;
    ``read_metadata(path)`` returns the string metadata; ``runner(path)`` a function on tensors
    (what the export check runs). ``packages``: the Python packages whose versions decide what
    ``write`` produces (part of the export cache's key). ``quantize(job) -> QuantizedModel``: its
    int8 writer (:mod:`tsm.export.quantize_api`), None when it has none.
    """

    name: str
    suffixes: tuple[str, ...]
    runtime: str
    write: Callable[..., None]
    read_metadata: Callable[[Path], dict[str, str]]
    runner: Callable[[Path], Runner]
    options: tuple[str, ...] = ()  # keyword options ``write`` takes
    packages: tuple[str, ...] = ()
    quantize: Callable[[Int8Job], QuantizedModel] | None = None


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
            quantize_onnx,
        ),
        ExportFormat(
            "executorch",
            (".pte",),
            "ExecuTorch (XNNPACK)",
            write_executorch,
            read_executorch_metadata,
            executorch_runner,
            packages=("executorch", "torchao"),
            quantize=quantize_executorch,
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

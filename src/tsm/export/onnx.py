"""ONNX: writing through ``torch.onnx.export``, metadata in the model's properties, onnxruntime."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tsm.errors import one_line
from tsm.fileio import atomic_write

OnnxExporter = Literal["dynamo", "torchscript"]
ONNX_EXPORTERS: tuple[str, ...] = ("dynamo", "torchscript")
# The one default of every ONNX export (tsm export, the web and int8 exports, the export cache):
# PyTorch's TorchScript-based exporter. Measured (docs/benchmarks.md, "Inference engines"): its
# files ran as fast as the torch.export-based exporter's, it exported the MobileNetV2 step 15x
# faster (0.7 vs 10.5 s), it needs no onnxscript, and torch 2.4 (the oldest tsm supports) has no
# other. PyTorch has deprecated it; "dynamo" (onnxscript: the 'export' extra) is the alternative.
DEFAULT_ONNX_EXPORTER: OnnxExporter = "torchscript"
LEGACY_OPSET = 17  # for the TorchScript-based ONNX exporter


def require_export_extra(module: str) -> Any:
    """Import ``module`` (onnx, onnxruntime, onnxscript) or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeError(
            f"ONNX export and checking need the '{module}' package: pip install 'tsm[export]'"
        ) from None


def write_onnx(
    network: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    metadata: dict[str, str],
    exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
) -> None:
    """Export ``network`` with a dynamic batch dimension and ``metadata`` as model properties."""
    if exporter not in ONNX_EXPORTERS:
        raise ValueError(f"unknown ONNX exporter {exporter!r}: use one of {', '.join(ONNX_EXPORTERS)}")
    onnx = require_export_extra("onnx")
    input_names, output_names = names

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter deprecation notes and constant-folding chatter
            if exporter == "dynamo":
                require_export_extra("onnxscript")
                batch = {0: torch.export.Dim("batch")}
                # A clip model takes (clips,); a streaming step (frames, *caches): varargs as a tuple.
                dynamic = (batch,) if len(example) == 1 else (batch, tuple(batch for _ in example[1:]))
                program = torch.onnx.export(
                    network,
                    example,
                    dynamo=True,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_shapes=dynamic,
                    verbose=False,
                )
                program.save(tmp, external_data=False)
            else:
                torch.onnx.export(
                    network,
                    example,
                    tmp,
                    dynamo=False,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_axes={name: {0: "batch"} for name in input_names + output_names},
                    opset_version=LEGACY_OPSET,
                )
        proto = onnx.load(tmp)
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, tmp)

    atomic_write(path, write)


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The model properties of an ONNX file (without loading external weights)."""
    onnx = require_export_extra("onnx")
    from google.protobuf.message import DecodeError  # protobuf comes with onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except DecodeError as error:
        message = f"{path} is not a valid ONNX file ({error}); write it again with tsm export"
        raise ValueError(message) from None
    return {entry.key: entry.value for entry in proto.metadata_props}


def onnx_providers(device: str | torch.device) -> list[str]:
    """ONNX Runtime's execution providers for a torch device: CPU, or CUDA where it is installed."""
    device = torch.device(device)
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    ort = require_export_extra("onnxruntime")
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    available = ", ".join(ort.get_available_providers())
    raise ValueError(
        f"onnxruntime cannot run on {device}: its providers here are {available}; "
        "use --device cpu, the torch engine, or install onnxruntime-gpu for CUDA"
    )


def open_onnx_session(
    path: Path, device: str | torch.device = "cpu", threads: int | None = None, spinning: bool = False
) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path``: the one place tsm opens sessions (engines and
    export checks alike); an unloadable file is a one-line ValueError.

    ``spinning``: whether its threads spin between calls (ONNX Runtime's own default) rather than
    sleep. Spinning saves the wake-up on the next call when the engine runs alone, and takes a
    core from whatever runs beside it (a live pipeline's decoder); the engines choose per
    workload, by measurement (docs/benchmarks.md).
    """
    ort = require_export_extra("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no notes about unused initializers
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=onnx_providers(device))
    except Exception as error:  # onnxruntime's own error types derive from Exception only
        raise ValueError(
            f"onnxruntime cannot load {path}: {one_line(error)}; write it again with tsm export"
        ) from None


def onnx_runner(path: Path) -> Callable[[Sequence[Tensor]], list[Tensor]]:
    """A function running the ONNX file with onnxruntime (CPU) on tensors, returning tensors."""
    session = open_onnx_session(path)
    names = [node.name for node in session.get_inputs()]

    def run(inputs: Sequence[Tensor]) -> list[Tensor]:
        feeds = {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)}
        return [torch.from_numpy(output) for output in session.run(None, feeds)]

    return run

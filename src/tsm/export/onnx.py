"""ONNX: writing through ``torch.onnx.export``, metadata in the model's properties, onnxruntime."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tsm.fileio import atomic_write

OnnxExporter = Literal["dynamo", "torchscript"]
ONNX_EXPORTERS: tuple[str, ...] = ("dynamo", "torchscript")
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
    exporter: OnnxExporter = "dynamo",
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


def onnx_runner(path: Path):
    """A function running the ONNX file with onnxruntime (CPU) on tensors, returning tensors."""
    ort = require_export_extra("onnxruntime")
    options = ort.SessionOptions()
    # No spinning between runs: the checks interleave them with PyTorch, whose threads need the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]

    def run(inputs: Sequence[Tensor]) -> list[Tensor]:
        feeds = {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)}
        return [torch.from_numpy(output) for output in session.run(None, feeds)]

    return run

"""The OpenVINO runtime: ``.onnx`` files (fp32, and int8 QDQ run as int8) compiled for the CPU by
OpenVINO's CPU plugin (a Recognizer is exported into the export cache as ONNX).

The settings (measured: docs/benchmarks.md, "OpenVINO settings"): the LATENCY hint (one stream:
each call is one synchronous request, so streams beyond one would only split the cores), fp32
inference precision (on CPUs with AMX or AVX-512 BF16 the plugin's default is bf16, off by about
1e-2 on the logits), and ``threads`` as its thread count.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.errors import MissingExtra, one_line
from tsm.inference.engine_api import EngineOptions

OPENVINO = "openvino"
COMPILE_SETTINGS = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


def compile_settings(threads: int | None, **overrides: str) -> dict[str, str]:
    """The CPU plugin's settings of an engine: :data:`COMPILE_SETTINGS`, ``threads``, ``overrides``."""
    threads_setting = {"INFERENCE_NUM_THREADS": str(threads)} if threads else {}
    return {**COMPILE_SETTINGS, **threads_setting, **overrides}


def _core() -> Any:
    try:
        openvino = importlib.import_module("openvino")
    except ImportError:
        raise MissingExtra("the openvino engine", "openvino", "openvino") from None
    return openvino.Core()


class OpenVinoRunner:
    """An ``.onnx`` file compiled by OpenVINO for the CPU: torch tensors in, CPU torch tensors out."""

    def __init__(self, path: Path, options: EngineOptions, **overrides: str) -> None:
        if options.device.type != "cpu":
            raise ValueError(f"the openvino engine runs on the CPU, not {options.device}: use --device cpu")
        core = _core()
        try:
            self.model = core.compile_model(str(path), "CPU", compile_settings(options.threads, **overrides))
        except Exception as error:  # OpenVINO raises RuntimeError with a multi-line report
            raise ValueError(
                f"openvino cannot load {path}: {one_line(error)}; write it again with tsm export"
            ) from None
        self.request = self.model.create_infer_request()
        self.input_names = [node.get_any_name() for node in self.model.inputs]
        self.output_names = [node.get_any_name() for node in self.model.outputs]
        self.input_shapes = [
            tuple(int(d.get_length()) if d.is_static else "batch" for d in node.get_partial_shape())
            for node in self.model.inputs
        ]
        threads = self.model.get_property("INFERENCE_NUM_THREADS")
        self.description = f"{OPENVINO} (CPU, {COMPILE_SETTINGS['PERFORMANCE_HINT']}, {threads} threads)"

    def run(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        feeds = [tensor.detach().to("cpu", torch.float32).contiguous().numpy() for tensor in inputs]
        results = self.request.infer(feeds, share_inputs=True)  # outputs are copies (share_outputs=False)
        return [torch.from_numpy(results[output]) for output in self.model.outputs]

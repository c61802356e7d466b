"""The ONNX Runtime runtime: ``.onnx`` files (a Recognizer is exported into the export cache)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from tsm.export import open_onnx_session
from tsm.inference.engine_api import EngineOptions, Workload

ONNXRUNTIME = "onnxruntime"
# Whether the session's threads spin between calls, per workload (docs/benchmarks.md, "Engine
# settings by measurement"): spinning saves the wake-up when the engine runs alone, and costs the
# decoder running beside it its core.
SPINNING: dict[Workload, bool] = {"alone": True, "overlapped": False, "served": False}


class OnnxRuntimeRunner:
    """An ``.onnx`` file in an ONNX Runtime session (opened by :func:`tsm.export.open_onnx_session`,
    the one place sessions are opened): torch tensors in, CPU torch tensors out."""

    def __init__(self, path: Path, options: EngineOptions) -> None:
        spinning = SPINNING[options.workload]
        self.session = open_onnx_session(path, options.device, options.threads, spinning)
        inputs = self.session.get_inputs()
        self.input_names = [node.name for node in inputs]
        self.output_names = [node.name for node in self.session.get_outputs()]
        self.input_shapes = [tuple(node.shape) for node in inputs]
        self.description = f"{ONNXRUNTIME} ({', '.join(self.session.get_providers())}"
        self.description += ", spinning)" if spinning else ")"

    def run(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        feeds = {
            name: tensor.detach().to("cpu", torch.float32).contiguous().numpy()
            for name, tensor in zip(self.input_names, inputs, strict=True)
        }
        return [torch.from_numpy(output) for output in self.session.run(None, feeds)]

"""The ExecuTorch runtime: ``.pte`` programs (XNNPACK delegate) run by ExecuTorch's Python binding
of the C++ runtime a phone or board links (a Recognizer is exported into the export
cache; lowering takes a minute or more the first time, so ``auto`` never picks it for one)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from tsm.export.executorch import ExecuTorchProgram, runtime_binding
from tsm.inference.engine_api import EngineOptions

EXECUTORCH = "executorch"


class ExecuTorchRunner:
    """A ``.pte`` file's ``forward`` method: torch tensors in, CPU torch tensors out. ``threads``
    sizes XNNPACK's thread pool, which is one per process (the last engine opened sets it)."""

    input_names = output_names = None  # a program names neither: the file's tsm metadata does

    def __init__(self, path: Path, options: EngineOptions) -> None:
        if options.device.type != "cpu":
            raise ValueError(f"the executorch engine runs on the CPU, not {options.device}: use --device cpu")
        self.program = ExecuTorchProgram(path)
        if options.threads:
            runtime_binding()._unsafe_reset_threadpool(options.threads)
        self.input_shapes = [("batch", *shape[1:]) for shape in self.program.shapes]
        self.description = f"{EXECUTORCH} (XNNPACK)"

    def run(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        return [output.to(torch.float32) for output in self.program(inputs)]

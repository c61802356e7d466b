"""INT8 ExecuTorch programs: PyTorch 2's quantization flow (PT2E) with XNNPACK's quantizer.

The network is captured by ``torch.export``, annotated by ``XNNPACKQuantizer`` (int8 weights per
output channel, symmetric; int8 activations per tensor, affine; histogram observers), calibrated
by running the job's real inputs through it, converted, captured again and lowered to XNNPACK's
int8 kernels, as the fp32 programs are (:mod:`tsm.export.executorch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tsm.export.executorch import (
    batch_dim,
    batch_dynamic_shapes,
    lower_to_xnnpack,
    program_bytes,
    require_executorch,
)
from tsm.export.quantize_api import Int8Job
from tsm.fileio import atomic_write

EXECUTORCH_INT8_DETAILS = {
    "format": "PT2E, XNNPACKQuantizer",
    "weights": "int8 per channel, symmetric",
    "activations": "int8 per tensor, affine",
    "calibration": "Histogram",
}


@dataclass
class ExecuTorchInt8:
    """A quantized program lowered to XNNPACK; ``write`` emits it with the given metadata."""

    lowered: Any  # executorch.exir.EdgeProgramManager
    details: dict[str, str] = field(default_factory=lambda: dict(EXECUTORCH_INT8_DETAILS))

    def write(self, path: Path, metadata: dict[str, str]) -> None:
        data = program_bytes(self.lowered, metadata)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


@torch.no_grad()
def quantize_executorch(job: Int8Job) -> ExecuTorchInt8:
    """Annotate, calibrate on the job's inputs, convert and lower the job's network."""
    quantizer_module = require_executorch("executorch.backends.xnnpack.quantizer.xnnpack_quantizer")
    pt2e = require_executorch("torchao.quantization.pt2e.quantize_pt2e")
    batch = batch_dim()
    captured = torch.export.export(
        job.network, job.example, dynamic_shapes=batch_dynamic_shapes(job.example, batch)
    ).module()
    config = quantizer_module.get_symmetric_quantization_config(is_per_channel=True)
    prepared = pt2e.prepare_pt2e(captured, quantizer_module.XNNPACKQuantizer().set_global(config))
    for inputs in job.calibration:
        prepared(*inputs)
    converted = pt2e.convert_pt2e(prepared)
    # The converted graph takes its inputs flat: one dynamic batch per input.
    flat = tuple({0: batch} for _ in job.example)
    program = torch.export.export(converted, job.example, dynamic_shapes=flat)
    return ExecuTorchInt8(lower_to_xnnpack(program))

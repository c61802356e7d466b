"""INT8 ONNX: ONNX Runtime's static quantization of the fp32 export, in the QDQ format.

The fp32 export is pre-processed (``quant_pre_process``: shape inference, BatchNorm folded into
the convolutions) and quantized by ``quantize_static``: int8 weights per output channel, uint8
activations (the faster choice on x86 CPUs, as ONNX Runtime's guide says), ranges from MinMax
calibration on the job's real inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

from tsm.export.onnx import require_export_extra, write_onnx
from tsm.export.quantize_api import Int8Job
from tsm.fileio import atomic_write

ONNX_INT8_DETAILS = {
    "format": "QDQ",
    "weights": "int8 per channel",
    "activations": "uint8",
    "calibration": "MinMax",
}


class _Feeds:
    """ONNX Runtime's ``CalibrationDataReader`` (``get_next`` -> input dict or None) over tensors."""

    def __init__(self, inputs: Sequence[Sequence[Tensor]], names: Sequence[str]) -> None:
        self._feeds = (
            {name: tensor.numpy() for name, tensor in zip(names, tensors, strict=True)} for tensors in inputs
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


@dataclass
class OnnxInt8:
    """A quantized ONNX file in the job's folder; ``write`` copies it with the given metadata."""

    path: Path
    details: dict[str, str] = field(default_factory=lambda: dict(ONNX_INT8_DETAILS))

    def write(self, path: Path, metadata: dict[str, str]) -> None:
        onnx = require_export_extra("onnx")
        proto = onnx.load(str(self.path))
        onnx.helper.set_model_props(proto, metadata)
        atomic_write(path, lambda tmp: onnx.save(proto, tmp))


def quantize_onnx(job: Int8Job) -> OnnxInt8:
    """Export the job's network as fp32 ONNX, pre-process it and quantize it on the job's inputs."""
    ort = require_export_extra("onnxruntime")
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, prepared, int8 = (job.folder / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
    write_onnx(job.network, job.example, fp32, job.names, job.metadata, **job.options)
    ort.set_default_logger_severity(3)  # the optimizer's notes on every removed initializer
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(
        str(prepared),
        str(int8),
        _Feeds(job.calibration, job.names[0]),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibration_providers=["CPUExecutionProvider"],
        # MinMax keeps two reductions per tensor and input, so memory stays small without
        # CalibMaxIntermediateOutputs, which discards data in onnxruntime 1.32 (its issue #18893).
    )
    return OnnxInt8(int8)

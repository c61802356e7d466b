"""Export to ONNX and TorchScript (whole clips or one streaming step), checked against PyTorch,
int8 ONNX files calibrated on real video, and web folders that run the streaming step in a browser."""

from tsm.export.core import (
    CHECK_FACTOR,
    CHECK_FLOOR,
    ExportCheck,
    InputCheck,
    decoded_check_inputs,
    export_metadata,
    export_model,
    read_export_metadata,
    verify_export,
)
from tsm.export.formats import EXPORT_FORMATS, FORMATS, ExportFormat, format_for
from tsm.export.int8 import Int8Options, Int8Refused, Int8Report, export_int8
from tsm.export.onnx import (
    DEFAULT_ONNX_EXPORTER,
    ONNX_EXPORTERS,
    OnnxExporter,
    onnx_providers,
    open_onnx_session,
    require_export_extra,
)
from tsm.export.web import WebExport, export_web, write_web_folder

__all__ = [
    "CHECK_FACTOR",
    "CHECK_FLOOR",
    "DEFAULT_ONNX_EXPORTER",
    "EXPORT_FORMATS",
    "FORMATS",
    "ONNX_EXPORTERS",
    "ExportCheck",
    "ExportFormat",
    "InputCheck",
    "Int8Options",
    "Int8Refused",
    "Int8Report",
    "OnnxExporter",
    "WebExport",
    "decoded_check_inputs",
    "export_int8",
    "export_metadata",
    "export_model",
    "export_web",
    "format_for",
    "onnx_providers",
    "open_onnx_session",
    "read_export_metadata",
    "require_export_extra",
    "verify_export",
    "write_web_folder",
]

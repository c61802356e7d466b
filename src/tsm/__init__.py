"""tsm: the Temporal Shift Module (Lin, Gan & Han, ICCV 2019) for efficient video understanding."""

from tsm.data import (
    VideoDataset,
    build_pipeline,
    default_data_config,
    generate_synthetic_dataset,
    load_clip,
    probe,
    read_frames,
    segment_indices,
)
from tsm.io import CheckpointInfo, UnsafeCheckpointError, load_checkpoint, save_checkpoint
from tsm.io.convert import convert_checkpoint
from tsm.io.export import ExportCheck, export_model, read_export_metadata, verify_export
from tsm.io.predict import Prediction, Predictor, predict
from tsm.models import (
    LabelSmoother,
    Recognizer,
    StreamingRecognizer,
    create_model,
    list_models,
    make_temporal_shift,
)
from tsm.ops import TemporalPool, TemporalShift, temporal_pool, temporal_shift
from tsm.version import __version__

# The training engine needs Lightning, which takes seconds to import: load it on first use.
_ENGINE_NAMES = (
    "RecognizerModule",
    "VideoDataModule",
    "average_views",
    "multi_view_scores",
    "write_evaluation_report",
)


def __getattr__(name: str):
    if name in _ENGINE_NAMES:
        import tsm.engine

        return getattr(tsm.engine, name)
    raise AttributeError(f"module 'tsm' has no attribute {name!r}")


__all__ = [
    "CheckpointInfo",
    "ExportCheck",
    "LabelSmoother",
    "Prediction",
    "Predictor",
    "Recognizer",
    "RecognizerModule",
    "StreamingRecognizer",
    "TemporalPool",
    "TemporalShift",
    "UnsafeCheckpointError",
    "VideoDataModule",
    "VideoDataset",
    "__version__",
    "average_views",
    "build_pipeline",
    "convert_checkpoint",
    "create_model",
    "default_data_config",
    "export_model",
    "generate_synthetic_dataset",
    "list_models",
    "load_checkpoint",
    "load_clip",
    "make_temporal_shift",
    "multi_view_scores",
    "predict",
    "probe",
    "read_export_metadata",
    "read_frames",
    "save_checkpoint",
    "segment_indices",
    "temporal_pool",
    "temporal_shift",
    "verify_export",
    "write_evaluation_report",
]

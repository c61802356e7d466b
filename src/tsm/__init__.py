"""tsm: the Temporal Shift Module (Lin, Gan & Han, ICCV 2019) for efficient video understanding."""

from tsm.checkpoint import (
    CheckpointInfo,
    PretrainedInfo,
    UnsafeCheckpointError,
    convert_checkpoint,
    create_model,
    init_from_checkpoint,
    list_models,
    list_pretrained,
    load_checkpoint,
    load_pretrained,
    pretrained_info,
    register_model,
    register_pretrained,
    save_checkpoint,
    unregister_model,
)
from tsm.data import (
    DataConfig,
    VideoDataset,
    build_pipeline,
    dataset_class_names,
    generate_synthetic_dataset,
    load_clip,
    prepare_dataset,
    probe,
    read_class_names,
    read_frames,
    resize_videos,
    segment_indices,
)
from tsm.export import (
    ExportCheck,
    export_int8,
    export_model,
    export_web,
    read_export_metadata,
    verify_export,
)
from tsm.inference import (
    ClipEngine,
    Prediction,
    Predictor,
    StreamingEngine,
    StreamingRecognizer,
    clip_engine,
    predict,
    stream_predictions,
    streaming_engine,
)
from tsm.models import (
    LabelSmoother,
    ModelConfig,
    Recognizer,
    average_views,
    list_backbones,
    make_temporal_shift,
    multi_view_scores,
)
from tsm.ops import TemporalPool, TemporalShift, temporal_pool, temporal_shift
from tsm.version import __version__

# Training needs Lightning, which takes seconds to import: load it on first use.
_TRAINING_NAMES = (
    "RecognizerModule",
    "TrainingSpeed",
    "VideoDataModule",
    "write_evaluation_report",
)
_HUB_NAMES = ("save_pretrained", "push_to_hub", "mirror_published")


def __getattr__(name: str):
    if name in _TRAINING_NAMES:
        import tsm.training

        return getattr(tsm.training, name)
    if name in _HUB_NAMES:  # the Hub's publishing side: exports, web folders, huggingface_hub
        import tsm.hub

        return getattr(tsm.hub, name)
    raise AttributeError(f"module 'tsm' has no attribute {name!r}")


__all__ = [
    "CheckpointInfo",
    "ClipEngine",
    "DataConfig",
    "ExportCheck",
    "LabelSmoother",
    "ModelConfig",
    "Prediction",
    "Predictor",
    "PretrainedInfo",
    "Recognizer",
    "RecognizerModule",
    "StreamingEngine",
    "StreamingRecognizer",
    "TemporalPool",
    "TemporalShift",
    "TrainingSpeed",
    "UnsafeCheckpointError",
    "VideoDataModule",
    "VideoDataset",
    "__version__",
    "average_views",
    "build_pipeline",
    "clip_engine",
    "convert_checkpoint",
    "create_model",
    "dataset_class_names",
    "export_int8",
    "export_model",
    "export_web",
    "generate_synthetic_dataset",
    "init_from_checkpoint",
    "list_backbones",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "load_clip",
    "load_pretrained",
    "make_temporal_shift",
    "mirror_published",
    "multi_view_scores",
    "predict",
    "prepare_dataset",
    "pretrained_info",
    "probe",
    "push_to_hub",
    "read_class_names",
    "read_export_metadata",
    "read_frames",
    "register_model",
    "register_pretrained",
    "resize_videos",
    "save_checkpoint",
    "save_pretrained",
    "segment_indices",
    "stream_predictions",
    "streaming_engine",
    "temporal_pool",
    "temporal_shift",
    "unregister_model",
    "verify_export",
    "write_evaluation_report",
]

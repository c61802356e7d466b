"""Inference with trained models: top-k classes of whole videos, and online recognition of streams,
on any engine of the engine table (PyTorch, ONNX Runtime, ...): a Recognizer (exported on first
use into a cache for a runtime that runs files) or an exported file."""

from tsm.inference.engine_api import (
    DEFAULT_WORKLOAD,
    WORKLOADS,
    ClipEngine,
    EngineOptions,
    EngineRuntime,
    Runner,
    StreamingEngine,
    Workload,
)
from tsm.inference.engines import (
    DEFAULT_ENGINE,
    ENGINE_RUNTIMES,
    clip_engine,
    engine_names,
    file_runtime,
    file_runtimes,
    is_exported_file,
    make_engine,
    streaming_engine,
)
from tsm.inference.export_cache import CACHE_VARIABLE, CachedExport, cached_export, export_cache_dir
from tsm.inference.precision import BF16_MAX_DROP, PRECISIONS, Precision, bf16_feature, resolve_precision
from tsm.inference.predictor import Prediction, Predictor, class_names_of, predict, prediction_data_config
from tsm.inference.prefetch import prefetched, single_threaded_torch
from tsm.inference.sources import exported_info, open_model
from tsm.inference.stream_caches import StreamCaches
from tsm.inference.stream_clips import StreamClipEngine
from tsm.inference.streaming_recognizer import StreamingRecognizer
from tsm.inference.video_stream import StreamEvent, annotate_frame, plot_stream_timeline, stream_predictions

__all__ = [
    "BF16_MAX_DROP",
    "CACHE_VARIABLE",
    "DEFAULT_ENGINE",
    "DEFAULT_WORKLOAD",
    "ENGINE_RUNTIMES",
    "PRECISIONS",
    "WORKLOADS",
    "CachedExport",
    "ClipEngine",
    "EngineOptions",
    "EngineRuntime",
    "Precision",
    "Prediction",
    "Predictor",
    "Runner",
    "StreamCaches",
    "StreamClipEngine",
    "StreamEvent",
    "StreamingEngine",
    "StreamingRecognizer",
    "Workload",
    "annotate_frame",
    "bf16_feature",
    "cached_export",
    "class_names_of",
    "clip_engine",
    "engine_names",
    "export_cache_dir",
    "exported_info",
    "file_runtime",
    "file_runtimes",
    "is_exported_file",
    "make_engine",
    "open_model",
    "plot_stream_timeline",
    "predict",
    "prediction_data_config",
    "prefetched",
    "resolve_precision",
    "single_threaded_torch",
    "stream_predictions",
    "streaming_engine",
]

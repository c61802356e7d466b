"""Inference with trained models: top-k classes of whole videos, and online recognition of streams,
on PyTorch or ONNX Runtime engines (exported on first use into a cache, or from ``.onnx`` files)."""

from tsm.inference.engines import (
    ENGINES,
    ClipEngine,
    EngineChoice,
    StreamingEngine,
    TorchClipEngine,
    TorchStreamingEngine,
    clip_engine,
    is_onnx_file,
    streaming_engine,
)
from tsm.inference.onnx_cache import CACHE_VARIABLE, CachedExport, cached_export, onnx_cache_dir
from tsm.inference.onnx_engines import OnnxClipEngine, OnnxStreamingEngine
from tsm.inference.predictor import Prediction, Predictor, class_names_of, predict, prediction_data_config
from tsm.inference.sources import exported_info, open_model
from tsm.inference.streamer import StreamingRecognizer
from tsm.inference.streaming import StreamEvent, annotate_frame, plot_stream_timeline, stream_predictions

__all__ = [
    "CACHE_VARIABLE",
    "ENGINES",
    "CachedExport",
    "ClipEngine",
    "EngineChoice",
    "OnnxClipEngine",
    "OnnxStreamingEngine",
    "Prediction",
    "Predictor",
    "StreamEvent",
    "StreamingEngine",
    "StreamingRecognizer",
    "TorchClipEngine",
    "TorchStreamingEngine",
    "annotate_frame",
    "cached_export",
    "class_names_of",
    "clip_engine",
    "exported_info",
    "is_onnx_file",
    "onnx_cache_dir",
    "open_model",
    "plot_stream_timeline",
    "predict",
    "prediction_data_config",
    "stream_predictions",
    "streaming_engine",
]

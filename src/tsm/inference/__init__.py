"""Inference with trained models: top-k classes of whole videos, and online recognition of streams."""

from tsm.inference.predictor import Prediction, Predictor, class_names_of, predict, prediction_data_config
from tsm.inference.streaming import StreamEvent, annotate_frame, plot_stream_timeline, stream_predictions

__all__ = [
    "Prediction",
    "Predictor",
    "StreamEvent",
    "annotate_frame",
    "class_names_of",
    "plot_stream_timeline",
    "predict",
    "prediction_data_config",
    "stream_predictions",
]

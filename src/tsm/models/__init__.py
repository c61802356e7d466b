"""TSM networks: backbone surgery, the recognizer, the model registry."""

from tsm.models.backbones import SUPPORTED_BACKBONES, build_backbone
from tsm.models.recognizer import Recognizer
from tsm.models.registry import create_model, list_models, model_config
from tsm.models.streaming import LabelSmoother, StreamingRecognizer, StreamingStep, check_streamable
from tsm.models.surgery import add_temporal_pool, is_temporal, make_temporal_shift, shifted_modules

__all__ = [
    "SUPPORTED_BACKBONES",
    "LabelSmoother",
    "Recognizer",
    "StreamingRecognizer",
    "StreamingStep",
    "add_temporal_pool",
    "build_backbone",
    "check_streamable",
    "create_model",
    "is_temporal",
    "list_models",
    "make_temporal_shift",
    "model_config",
    "shifted_modules",
]

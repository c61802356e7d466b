"""tsm: the Temporal Shift Module (Lin, Gan & Han, ICCV 2019) for efficient video understanding."""

from tsm.io import CheckpointInfo, load_checkpoint, save_checkpoint
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

__all__ = [
    "CheckpointInfo",
    "LabelSmoother",
    "Recognizer",
    "StreamingRecognizer",
    "TemporalPool",
    "TemporalShift",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "make_temporal_shift",
    "save_checkpoint",
    "temporal_pool",
    "temporal_shift",
]

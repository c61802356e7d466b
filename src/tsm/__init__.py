"""tsm: the Temporal Shift Module (Lin, Gan & Han, ICCV 2019) for efficient video understanding."""

from tsm.io import CheckpointInfo, UnsafeCheckpointError, load_checkpoint, save_checkpoint
from tsm.io.convert import convert_checkpoint
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
    "UnsafeCheckpointError",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "list_models",
    "load_checkpoint",
    "make_temporal_shift",
    "save_checkpoint",
    "temporal_pool",
    "temporal_shift",
]

"""TSM networks: backbone specs and surgery, the recognizer, the model registry, streaming."""

from tsm.models.backbones import build_backbone
from tsm.models.mobileone import MobileOne, MobileOneBlock
from tsm.models.non_local import NON_LOCAL_MODES, NonLocal, NonLocalBlock, add_non_local, non_local_blocks
from tsm.models.recognizer import Recognizer
from tsm.models.registry import create_model, list_models, model_config
from tsm.models.specs import (
    BACKBONES,
    BackboneSpec,
    Setting,
    backbone_spec,
    list_backbones,
    register_backbone,
)
from tsm.models.state import load_weights, strip_data_parallel
from tsm.models.streaming import LabelSmoother, StreamingStep, check_streamable
from tsm.models.surgery import add_temporal_pool, is_temporal, make_temporal_shift, shifted_modules
from tsm.models.views import VIEW_AVERAGES, ViewAverage, average_views, multi_view_scores

__all__ = [
    "BACKBONES",
    "NON_LOCAL_MODES",
    "VIEW_AVERAGES",
    "BackboneSpec",
    "LabelSmoother",
    "MobileOne",
    "MobileOneBlock",
    "NonLocal",
    "NonLocalBlock",
    "Recognizer",
    "Setting",
    "StreamingStep",
    "ViewAverage",
    "add_non_local",
    "add_temporal_pool",
    "average_views",
    "backbone_spec",
    "build_backbone",
    "check_streamable",
    "create_model",
    "is_temporal",
    "list_backbones",
    "list_models",
    "load_weights",
    "make_temporal_shift",
    "model_config",
    "multi_view_scores",
    "non_local_blocks",
    "register_backbone",
    "shifted_modules",
    "strip_data_parallel",
]

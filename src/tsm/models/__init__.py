"""TSM networks: the typed model config, backbone specs (one module each under ``backbones``) and
surgery, the recognizer, streaming, multi-view scores. Model names (architectures and published
tags) are registered one layer up, in :mod:`tsm.checkpoint.registry`."""

from tsm.models.backbone_builder import build_backbone
from tsm.models.backbones import MobileOne, MobileOneBlock
from tsm.models.config import MODEL_SETTINGS, ModelConfig, as_model_config
from tsm.models.label_smoothing import DEMO_AGREE, DEMO_SMOOTH_WINDOW, LabelSmoother
from tsm.models.non_local import NON_LOCAL_MODES, NonLocal, NonLocalBlock, add_non_local, non_local_blocks
from tsm.models.recognizer import Recognizer
from tsm.models.specs import (
    BACKBONES,
    BackboneSpec,
    NonLocalSites,
    PublisherLayout,
    Setting,
    backbone_spec,
    list_backbones,
    register_backbone,
)
from tsm.models.state import load_weights, strip_data_parallel
from tsm.models.streaming_step import MODEL_KINDS, ModelKind, StreamingStep, check_streamable
from tsm.models.surgery import add_temporal_pool, is_temporal, make_temporal_shift, shifted_modules
from tsm.models.views import VIEW_AVERAGES, ViewAverage, average_views, multi_view_scores

__all__ = [
    "BACKBONES",
    "DEMO_AGREE",
    "DEMO_SMOOTH_WINDOW",
    "MODEL_KINDS",
    "MODEL_SETTINGS",
    "NON_LOCAL_MODES",
    "VIEW_AVERAGES",
    "BackboneSpec",
    "LabelSmoother",
    "MobileOne",
    "MobileOneBlock",
    "ModelConfig",
    "ModelKind",
    "NonLocal",
    "NonLocalBlock",
    "NonLocalSites",
    "PublisherLayout",
    "Recognizer",
    "Setting",
    "StreamingStep",
    "ViewAverage",
    "add_non_local",
    "add_temporal_pool",
    "as_model_config",
    "average_views",
    "backbone_spec",
    "build_backbone",
    "check_streamable",
    "is_temporal",
    "list_backbones",
    "load_weights",
    "make_temporal_shift",
    "multi_view_scores",
    "non_local_blocks",
    "register_backbone",
    "shifted_modules",
    "strip_data_parallel",
]

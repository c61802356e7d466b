"""Teaching a model your own actions: clips recorded or uploaded into a project folder, a new
classifier fine-tuned on an online base model's frozen features in seconds on a CPU, and the
result served live (``tsm serve --teach DIR``, docs/teach.md)."""

from tsm.apps.teach.clips import ClipRefused
from tsm.apps.teach.downloads import DOWNLOADS, download_file
from tsm.apps.teach.features import ClipFeatures, FeatureCache
from tsm.apps.teach.fitting import (
    FitProgress,
    FitResult,
    LabelledClip,
    fine_tune,
    fit_classifier,
    held_out_split,
    taught_model,
)
from tsm.apps.teach.project import Clip, TeachProject, check_label
from tsm.apps.teach.session import RunBusy, TeachSession, check_base
from tsm.apps.teach.settings import FitSettings, TeachLimits, TeachOptions

__all__ = [
    "DOWNLOADS",
    "Clip",
    "ClipFeatures",
    "ClipRefused",
    "FeatureCache",
    "FitProgress",
    "FitResult",
    "FitSettings",
    "LabelledClip",
    "RunBusy",
    "TeachLimits",
    "TeachOptions",
    "TeachProject",
    "TeachSession",
    "check_base",
    "check_label",
    "download_file",
    "fine_tune",
    "fit_classifier",
    "held_out_split",
    "taught_model",
]

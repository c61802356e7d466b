"""Training and evaluation on PyTorch Lightning: the LightningModule, data module, optimizer and
schedules, multi-view evaluation and its report."""

from tsm.engine.datamodule import VideoDataModule
from tsm.engine.evaluation import (
    EvaluationMetrics,
    average_views,
    compute_metrics,
    multi_view_scores,
    write_evaluation_report,
)
from tsm.engine.module import RecognizerModule, TrainingDiverged
from tsm.engine.optim import build_optimizer, build_scheduler, lr_factor

__all__ = [
    "EvaluationMetrics",
    "RecognizerModule",
    "TrainingDiverged",
    "VideoDataModule",
    "average_views",
    "build_optimizer",
    "build_scheduler",
    "compute_metrics",
    "lr_factor",
    "multi_view_scores",
    "write_evaluation_report",
]

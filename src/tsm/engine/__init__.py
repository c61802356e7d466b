"""Training and evaluation on PyTorch Lightning: the LightningModule, data module, optimizer and
schedules, multi-view evaluation and its report."""

from tsm.engine.callbacks import EpochSummary, ExportNativeCheckpoints
from tsm.engine.datamodule import VideoDataModule
from tsm.engine.evaluation import EvaluationMetrics, compute_metrics, write_evaluation_report
from tsm.engine.module import RecognizerModule, TrainingDiverged
from tsm.engine.optim import build_optimizer, build_scheduler, lr_factor

__all__ = [
    "EpochSummary",
    "EvaluationMetrics",
    "ExportNativeCheckpoints",
    "RecognizerModule",
    "TrainingDiverged",
    "VideoDataModule",
    "build_optimizer",
    "build_scheduler",
    "compute_metrics",
    "lr_factor",
    "write_evaluation_report",
]

"""Training and evaluation on PyTorch Lightning: the LightningModule and the network it trains
(``network``: ``ModelInit``), data module, the reference recipe (``recipe``), optimizer and
schedules, multi-view evaluation and its report, callbacks.

Names load on first use, so that importing ``tsm.training`` does not import Lightning, which takes
seconds.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULE_OF = {
    "EpochSummary": "callbacks",
    "ExportNativeCheckpoints": "callbacks",
    "VideoDataModule": "datamodule",
    "EvaluationMetrics": "evaluation",
    "compute_metrics": "evaluation",
    "first_of_each_sample": "evaluation",
    "write_evaluation_report": "evaluation",
    "RecognizerModule": "module",
    "TrainingDiverged": "module",
    "ModelInit": "network",
    "ModelName": "network",
    "GRADIENT_CLIP_VAL": "recipe",
    "OptimizerConfig": "recipe",
    "REFERENCE_OPTIMIZER": "recipe",
    "build_optimizer": "optim",
    "build_scheduler": "optim",
    "lr_factor": "optim",
    "TrainingSpeed": "timing",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE_OF:
        return getattr(importlib.import_module(f"tsm.training.{_SUBMODULE_OF[name]}"), name)
    raise AttributeError(f"module 'tsm.training' has no attribute {name!r}")


__all__ = sorted(_SUBMODULE_OF)

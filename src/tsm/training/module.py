"""The LightningModule that trains and tests a :class:`tsm.Recognizer`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from tsm.data import DataConfig, VideoBatch, as_data_config
from tsm.models import ModelConfig, Recognizer, ViewAverage, multi_view_scores
from tsm.training.evaluation import first_of_each_sample, write_evaluation_report
from tsm.training.network import RANDOM_INIT, ModelInit, ModelName, build_network
from tsm.training.optim import build_optimizer, build_scheduler
from tsm.training.recipe import REFERENCE_OPTIMIZER, OptimizerConfig

DEFAULT_MODEL = ModelName("tsm_resnet50")


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class RecognizerModule(pl.LightningModule):
    """Train / validate / test a TSN/TSM recognizer with the reference recipe.

    The network comes one way (:mod:`tsm.training.network`), injected as in Lightning's examples:
    ``model`` says which (a built :class:`~tsm.Recognizer`, a :class:`~tsm.models.ModelConfig`, or
    a name for :func:`tsm.create_model`: an architecture such as ``"tsm_resnet50"`` or a published
    ``ARCHITECTURE.TAG``, its network) and ``init`` where its weights start (a :class:`ModelInit`:
    the backbone's ImageNet weights, a trained model to fine-tune from, or a trained model that is
    the network, its architecture and class names included).

    Args:
        num_classes, num_segments: classes and frames per clip of the data (``tsm fit`` links them to
            the data module); they replace the model config's.
        optimizer: SGD and schedule of the reference (see :class:`OptimizerConfig`).
        label_smoothing: cross-entropy label smoothing (0 = off, the reference's setting).
        view_average: how multi-view test scores are combined: ``"logits"`` or ``"softmax"``.
        channels_last: run the backbone in channels-last memory format (faster on recent GPUs).
        class_names, data_config: stored with the model in exported checkpoints.
        report_dir: where ``test`` writes its report (default: the logger's folder, else ``.``).

    ``model``, ``init`` and ``optimizer`` may also be the plain dicts of a Lightning checkpoint's
    hyperparameters (:meth:`load_from_checkpoint`), which rebuild the trained network (its weights
    then come from the checkpoint, so its ``init`` is stored empty).
    """

    model: Recognizer

    def __init__(
        self,
        model: ModelName | ModelConfig | Recognizer = DEFAULT_MODEL,
        num_classes: int = 400,
        num_segments: int = 8,
        init: ModelInit = RANDOM_INIT,
        optimizer: OptimizerConfig = REFERENCE_OPTIMIZER,
        label_smoothing: float = 0.0,
        view_average: ViewAverage = "logits",
        channels_last: bool = False,
        class_names: list[str] | None = None,
        data_config: DataConfig | None = None,
        report_dir: str | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names given for num_classes={num_classes}")
        # Mappings: the hyperparameters of a Lightning checkpoint (RecognizerModule.load_from_checkpoint)
        self.optimizer_config = OptimizerConfig(**optimizer) if isinstance(optimizer, Mapping) else optimizer
        init = ModelInit(**init) if isinstance(init, Mapping) else init
        # Stored as plain JSON values: Lightning checkpoints are read back with weights_only=True.
        self.save_hyperparameters(ignore=["model", "init", "optimizer", "data_config"])
        self.hparams["optimizer"] = dataclasses.asdict(self.optimizer_config)
        self.data_config = as_data_config(data_config, num_segments=num_segments)
        self.hparams["data_config"] = self.data_config.to_dict()
        network = build_network(model, init, num_classes, num_segments, class_names)
        self.model, self.title, class_names = network
        # The trained network as its config and class names; its weights are the checkpoint's.
        self.hparams["model"] = self.model.config.to_dict()
        self.hparams["init"] = dataclasses.asdict(RANDOM_INIT)
        self.hparams["class_names"] = class_names
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_top1 = MulticlassAccuracy(num_classes, average="micro")
        self.val_top1 = MulticlassAccuracy(num_classes, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.failures: list[Any] = []  # samples the data pipeline could not load this epoch
        self._test_scores: list[Tensor] = []
        self._test_labels: list[Tensor] = []
        self._test_indices: list[Tensor] = []
        self.test_metrics: dict[str, float] = {}

    def forward(self, clips: Tensor) -> Tensor:
        return multi_view_scores(self.model, clips, self.hparams.view_average)

    def _unpack(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        """(clips, labels, dataset indices or None) of a batch; a :class:`tsm.data.VideoBatch` also
        brings its indices and failed samples."""
        if isinstance(batch, VideoBatch):
            self.failures.extend(batch.failures)
            return batch.clips, batch.labels, batch.indices
        return batch[0], batch[1], None

    def _report_failures(self, stage: str) -> None:
        """Report the samples that failed to load, once per epoch (training replaced them,
        evaluation left them out of the metrics)."""
        if self.failures:
            action = "replaced by other samples" if stage == "train" else "excluded from the metrics"
            listed = "\n  ".join(str(failure) for failure in self.failures[:20])
            more = f"\n  ... {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
            rank_zero_warn(
                f"{stage}: {len(self.failures)} samples failed to load ({action}):\n  {listed}{more}"
            )
        self.failures = []

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        clips, labels, _ = self._unpack(batch)
        logits = self.model(clips)
        loss = self.criterion(logits, labels)
        diverged = not bool(torch.isfinite(loss.detach()))
        if self.trainer.strategy.reduce_boolean_decision(diverged, all=False):
            lr = self.optimizers().param_groups[0]["lr"]
            raise TrainingDiverged(
                f"the training loss became {loss.item()} at epoch {self.current_epoch}, step "
                f"{self.global_step} (lr {lr:.3g}); lower model.optimizer.lr, add warm-up "
                "(model.optimizer.warmup_epochs), keep gradient clipping on (trainer.gradient_clip_val) "
                "or check the input data for NaNs"
            )
        self.train_top1(logits.detach(), labels)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(labels))
        self.log("train/top1", self.train_top1, on_step=False, on_epoch=True, batch_size=len(labels))
        self.log("lr", self.optimizers().param_groups[0]["lr"], prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        self._report_failures("train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        clips, labels, _ = self._unpack(batch)
        if len(labels) == 0:
            return
        scores = self(clips)
        self.val_top1(scores, labels)
        self.val_top5(scores, labels)
        self.log("val/loss", self.criterion(scores, labels), batch_size=len(labels), sync_dist=True)
        self.log("val/top1", self.val_top1, prog_bar=True, batch_size=len(labels))
        self.log("val/top5", self.val_top5, batch_size=len(labels))

    def on_validation_epoch_end(self) -> None:
        self._report_failures("validation")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.optimizer_config
        optimizer = build_optimizer(self.model, hp.lr, hp.weight_decay, hp.momentum, hp.fc_lr5)
        epochs = self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ValueError("set trainer.max_epochs: the learning-rate schedule is defined in epochs")
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // epochs)
        scheduler = build_scheduler(
            optimizer,
            steps_per_epoch,
            epochs,
            hp.schedule,
            hp.milestones,
            hp.gamma,
            hp.warmup_epochs,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- testing --------------------------------------------------------------------------------
    def test_step(self, batch: Any, batch_idx: int) -> None:
        clips, labels, indices = self._unpack(batch)
        if len(labels) == 0:
            return
        self._test_scores.append(self(clips).float().cpu())
        self._test_labels.append(labels.cpu())
        if indices is not None:
            self._test_indices.append(indices.cpu())

    def on_test_epoch_start(self) -> None:
        self._test_scores, self._test_labels, self._test_indices, self.failures = [], [], [], []

    def on_test_epoch_end(self) -> None:
        scores, labels, indices = self._gather_test_outputs()
        self._report_failures("test")
        if self.trainer.is_global_zero:
            metrics = write_evaluation_report(
                self.report_dir, scores, labels, self.class_names, self._sample_names(indices), self.title
            )
            self.test_metrics = {
                "top1": metrics.top1,
                "top5": metrics.top5,
                "mean_class_accuracy": metrics.mean_class_accuracy,
                "num_clips": metrics.num_clips,
            }
        for key in ("top1", "top5", "mean_class_accuracy"):
            value = self.trainer.strategy.broadcast(self.test_metrics.get(key, 0.0))
            self.log(f"test/{key}", value)

    def _gather_test_outputs(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """All ranks' test scores, labels and dataset indices; with indices, in dataset order and
        each sample once (DistributedSampler repeats samples to even out the ranks)."""
        num_classes = self.hparams.num_classes
        scores = torch.cat(self._test_scores) if self._test_scores else torch.empty(0, num_classes)
        labels = torch.cat(self._test_labels) if self._test_labels else torch.empty(0, dtype=torch.long)
        indices = None  # batches without indices (e.g. a TensorDataset's)
        if len(self._test_indices) == len(self._test_scores):
            indices = torch.cat([torch.empty(0, dtype=torch.long), *self._test_indices])
        if self.trainer.world_size > 1:
            parts = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(parts, (scores, labels, indices))
            scores = torch.cat([part[0] for part in parts])
            labels = torch.cat([part[1] for part in parts])
            each = [part[2] for part in parts]
            indices = None if any(part is None for part in each) else torch.cat(each)
        if indices is None:
            return scores, labels, None
        keep = first_of_each_sample(indices)
        return scores[keep], labels[keep], indices[keep]

    def _sample_names(self, indices: Tensor | None) -> list[str] | None:
        """Paths of the evaluated samples (from the dataset's ``records``), else None."""
        loader = self.trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, list | tuple) else loader
        records = getattr(loader.dataset, "records", None)
        if indices is None or records is None:
            return None
        return [records[index].path for index in indices.tolist()]

    @property
    def report_dir(self) -> Path:
        """Folder of the test report: ``report_dir``, else the logger's folder, else the run folder."""
        if self.hparams.report_dir:
            return Path(self.hparams.report_dir)
        log_dir = self.trainer.log_dir if self.trainer.loggers else None
        return Path(log_dir or self.trainer.default_root_dir) / "test_report"

"""The LightningDataModule around :class:`tsm.data.VideoDataset` (list files or class folders)."""

from __future__ import annotations

from functools import cached_property

import lightning.pytorch as pl
from lightning.fabric.utilities import suggested_max_num_workers
from torch.utils.data import DataLoader

from tsm.data import DataConfig, VideoDataset, as_data_config

SPLITS = ("train", "val", "test")
MAX_DEFAULT_WORKERS = 8
DEFAULT_DATA_CONFIG = DataConfig()  # frozen: safe to share as a default


class VideoDataModule(pl.LightningDataModule):
    """Train/val/test splits of a video dataset, each a list file (``path label`` or
    ``dir num_frames label``) or a ``root/<class>/<video>`` folder.

    Args:
        train, val, test: the split sources (only those a command needs must be given).
        root: folder that relative paths in list files start from (default: the list's folder).
        classes: class-names file (one per line; default: ``classes.txt`` beside the list).
        num_segments: frames per clip; ``tsm fit`` passes it on to the model.
        data_config: sampling / augmentation / test-view settings (:class:`tsm.data.DataConfig`;
            its ``num_segments`` is set from ``num_segments``);
            stored in the exported checkpoints so ``tsm predict`` rebuilds the test pipeline.
        batch_size: clips per batch and device (scale the learning rate with the total batch).
        eval_batch_size: clips per batch in validation/test (default: ``batch_size``).
        num_workers: DataLoader worker processes that decode videos, per training process
            (default: what the CPUs allow, Lightning's ``suggested_max_num_workers``, at most 8).
        pin_memory: page-locked batches for faster copies to the GPU (default: when training on a GPU).
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        root: str | None = None,
        classes: str | None = None,
        num_segments: int = 8,
        data_config: DataConfig = DEFAULT_DATA_CONFIG,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sources = {"train": train, "val": val, "test": test}
        if not any(self.sources.values()):
            raise ValueError(
                "give at least one split: data.train, data.val or data.test (list file or folder)"
            )
        self.root, self.classes = root, classes
        self.data_config = as_data_config(data_config, num_segments=num_segments)
        self.num_segments = num_segments
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._datasets: dict[str, VideoDataset] = {}

    def dataset(self, split: str) -> VideoDataset:
        """The :class:`VideoDataset` of ``split`` (built on first use; reading it decodes nothing)."""
        if split not in self._datasets:
            source = self.sources[split]
            if source is None:
                raise ValueError(f"no {split} split: pass data.{split}=LIST_FILE_OR_FOLDER")
            self._datasets[split] = VideoDataset(
                source,
                train=split == "train",
                data_config=self.data_config,
                root=self.root,
                classes=self.classes,
            )
        return self._datasets[split]

    @cached_property
    def class_names(self) -> list[str]:
        """Class names of the dataset (the first given split decides; the others must agree)."""
        names = [self.dataset(split).class_names for split in SPLITS if self.sources[split]]
        for other in names[1:]:
            if other != names[0]:
                raise ValueError(f"the splits have different class lists: {names[0]} vs {other}")
        return names[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _loader(self, split: str) -> DataLoader:
        dataset = self.dataset(split)
        train = split == "train"
        trainer = self.trainer
        num_workers = self.num_workers
        if num_workers is None:  # the CPUs shared by this machine's training processes
            processes = trainer.num_devices if trainer else 1
            num_workers = min(MAX_DEFAULT_WORKERS, suggested_max_num_workers(processes))
        pin_memory = self.pin_memory
        if pin_memory is None:  # pinning helps copies to a GPU only (and warns without one)
            pin_memory = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            collate_fn=dataset.collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if self.sources["val"] else []  # [] = no validation

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

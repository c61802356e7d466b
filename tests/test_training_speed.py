"""Training speed over whole steps, with the time spent waiting for data beside it (a fake clock:
no timing is asserted)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tsm.training import RecognizerModule, TrainingSpeed

LOAD_SECONDS, COMPUTE_SECONDS, BATCH = 0.25, 3.0, 4


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowClips(Dataset):
    """Each sample takes LOAD_SECONDS of the fake clock to load."""

    def __init__(self, clock: FakeClock, count: int = 12) -> None:
        self.clock = clock
        self.clips = torch.randn(count, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        self.clock.now += LOAD_SECONDS
        return self.clips[index], index % 2


def test_clips_per_second_covers_whole_steps_and_data_wait_is_logged_beside(tmp_path) -> None:
    clock = FakeClock()
    torch.manual_seed(0)
    module = RecognizerModule("tsm_resnet18", num_classes=2, num_segments=2)

    def compute(*_) -> None:  # the forward pass "takes" COMPUTE_SECONDS
        clock.now += COMPUTE_SECONDS

    module.model.register_forward_pre_hook(compute)
    speeds, waits = [], []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, *_) -> None:
            speeds.append(float(trainer.callback_metrics["train/clips_per_s"]))
            waits.append(float(trainer.callback_metrics["train/data_wait_s_step"]))

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TrainingSpeed(clock), Record()],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, DataLoader(SlowClips(clock), batch_size=BATCH))
    wait = BATCH * LOAD_SECONDS
    assert waits == pytest.approx([wait] * 6)
    # The whole step, loading included: not BATCH / COMPUTE_SECONDS, which the forward alone gives.
    assert speeds == pytest.approx([BATCH / (wait + COMPUTE_SECONDS)] * 6)
    assert float(trainer.callback_metrics["train/data_wait_s_epoch"]) == pytest.approx(wait)

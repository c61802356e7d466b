"""Training with the Lightning module: the loss falls, resume is exact, NaN stops, multi-view test."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

import tsm
from devices import needs_cuda
from tsm.data import VideoDataset, generate_synthetic_dataset, load_clip
from tsm.training import (
    GRADIENT_CLIP_VAL,
    OptimizerConfig,
    RecognizerModule,
    TrainingDiverged,
    VideoDataModule,
)
from tsm.training.callbacks import EpochSummary

SEGMENTS = 4


def tiny_module(optimizer: OptimizerConfig | None = None, **overrides) -> RecognizerModule:
    torch.manual_seed(0)  # the same initial weights each time
    settings = {
        "model": tsm.checkpoint.model_config("tsm_resnet18").replace(dropout=0.0),
        "num_classes": 2,
        "num_segments": SEGMENTS,
        "optimizer": optimizer
        or OptimizerConfig(lr=0.05, schedule="step", milestones=(1,), warmup_epochs=0.5),
    }
    return RecognizerModule(**{**settings, **overrides})


def tiny_trainer(tmp_path, max_epochs: int, **overrides) -> pl.Trainer:
    settings = {
        "accelerator": "cpu",
        "max_epochs": max_epochs,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "gradient_clip_val": GRADIENT_CLIP_VAL,
        "default_root_dir": tmp_path,
        "deterministic": True,
    }
    return pl.Trainer(**{**settings, **overrides})


def clips_loader(count: int = 8, batch_size: int = 4, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    clips = torch.randn(count, SEGMENTS, 3, 32, 32, generator=generator)
    labels = torch.arange(count) % 2
    return DataLoader(TensorDataset(clips, labels), batch_size=batch_size, shuffle=False)


@pytest.mark.parametrize(
    ("accelerator", "precision", "channels_last"),
    [("cpu", "32-true", False), pytest.param("gpu", "bf16-mixed", True, marks=needs_cuda)],
)
def test_fit_loss_falls(tmp_path, accelerator, precision, channels_last) -> None:
    summary = EpochSummary(printer=None)
    module = tiny_module(OptimizerConfig(lr=0.02, schedule="constant"), channels_last=channels_last)
    trainer = tiny_trainer(
        tmp_path,
        6,
        callbacks=[summary],
        enable_checkpointing=False,
        accelerator=accelerator,
        precision=precision,
        deterministic=accelerator == "cpu",  # CUDA's adaptive average pooling backward is not
    )
    trainer.fit(module, clips_loader())
    losses = [row["train_loss"] for row in summary.history]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0], losses


def test_resume_restores_weights_optimizer_and_schedule_exactly(tmp_path) -> None:
    straight = tiny_module()
    straight_trainer = tiny_trainer(tmp_path / "a", 3, enable_checkpointing=False)
    straight_trainer.fit(straight, clips_loader())

    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = tiny_module()
    tiny_trainer(tmp_path / "b", 2, callbacks=[checkpoints]).fit(first, clips_loader())
    resumed = tiny_module()
    resumed_trainer = tiny_trainer(tmp_path / "b", 3)
    resumed_trainer.fit(resumed, clips_loader(), ckpt_path=tmp_path / "ckpt" / "last.ckpt", weights_only=True)

    assert resumed_trainer.current_epoch == straight_trainer.current_epoch == 3
    assert resumed_trainer.global_step == straight_trainer.global_step == 6
    for (name, expected), actual in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(expected, actual), name
    expected_optimizer = straight_trainer.optimizers[0].state_dict()
    actual_optimizer = resumed_trainer.optimizers[0].state_dict()
    assert [g["lr"] for g in expected_optimizer["param_groups"]] == [
        g["lr"] for g in actual_optimizer["param_groups"]
    ]
    for key, state in expected_optimizer["state"].items():
        assert torch.equal(state["momentum_buffer"], actual_optimizer["state"][key]["momentum_buffer"])
    expected_scheduler = straight_trainer.lr_scheduler_configs[0].scheduler
    actual_scheduler = resumed_trainer.lr_scheduler_configs[0].scheduler
    assert expected_scheduler.last_epoch == actual_scheduler.last_epoch == 6


def test_nan_loss_stops_training_with_a_clear_message(tmp_path) -> None:
    clips = torch.full((4, SEGMENTS, 3, 32, 32), float("nan"))
    loader = DataLoader(TensorDataset(clips, torch.tensor([0, 1, 0, 1])), batch_size=4)
    expected = r"loss became nan at epoch 0, step 0.*lower model\.optimizer\.lr"
    with pytest.raises(TrainingDiverged, match=expected):
        tiny_trainer(tmp_path, 1, enable_checkpointing=False).fit(tiny_module(), loader)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic_dataset(root, train=8, val=4, test=6, size=32, frames=8, seed=3)


def test_multi_view_test_matches_a_hand_computation_and_reports_failures(synthetic, tmp_path) -> None:
    test_list = tmp_path / "test.txt"
    lines = synthetic.lists["test"].read_text().splitlines()
    test_list.write_text("\n".join([*lines[:2], "missing.mp4 1", *lines[2:]]) + "\n")
    data_config = synthetic.data_config.replace(num_segments=SEGMENTS, test_views="three")
    data = VideoDataModule(
        test=str(test_list),
        root=str(synthetic.root),
        classes=str(synthetic.classes_file),
        num_segments=SEGMENTS,
        data_config=data_config,
        eval_batch_size=4,
        num_workers=0,
        pin_memory=False,
    )
    module = tiny_module(
        num_classes=data.num_classes,
        class_names=data.class_names,
        view_average="softmax",
        report_dir=str(tmp_path / "report"),
    )
    with pytest.warns(UserWarning, match=r"test: 1 samples failed to load \(excluded from the metrics\)"):
        tiny_trainer(tmp_path, 1).test(module, datamodule=data, verbose=False)

    module.model.eval()
    correct, names = 0, []
    for line in lines:
        path, label = line.split()
        views = load_clip(synthetic.root / path, data.data_config)  # (V=3, T, 3, H, W)
        with torch.no_grad():
            probabilities = module.model(views).softmax(dim=-1).mean(dim=0)
        correct += int(probabilities.argmax()) == int(label)
        names.append(str(synthetic.root / path))
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["num_clips"] == len(lines) == 6
    assert report["top1"] == pytest.approx(100.0 * correct / len(lines))
    predictions = json.loads((tmp_path / "report" / "predictions.json").read_text())
    assert [row["sample"] for row in predictions] == names
    assert module.test_metrics["top1"] == pytest.approx(report["top1"])


def test_report_rows_follow_the_samples_in_any_sampler_order(synthetic, tmp_path) -> None:
    """The report's rows come from the indices in the batches: a shuffled loader (whose sampler
    gives another order each time it is iterated) and a failed sample still name the right videos."""
    test_list = tmp_path / "test.txt"
    lines = synthetic.lists["test"].read_text().splitlines()
    test_list.write_text("\n".join([*lines[:3], "missing.mp4 0", *lines[3:]]) + "\n")
    dataset = VideoDataset(
        test_list,
        train=False,
        data_config=synthetic.data_config.replace(num_segments=SEGMENTS),
        root=synthetic.root,
        classes=synthetic.classes_file,
    )
    loader = DataLoader(dataset, batch_size=2, shuffle=True, collate_fn=dataset.collate)
    names = dataset.class_names
    module = tiny_module(num_classes=len(names), class_names=names, report_dir=str(tmp_path / "report"))
    with pytest.warns(UserWarning, match="test: 1 samples failed to load"):
        tiny_trainer(tmp_path, 1).test(module, dataloaders=loader, verbose=False)
    rows = json.loads((tmp_path / "report" / "predictions.json").read_text())
    expected = [(str(synthetic.root / path), names[int(label)]) for path, label in map(str.split, lines)]
    assert [(row["sample"], row["label"]) for row in rows] == expected  # dataset order, each once

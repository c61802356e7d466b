"""The demo's settings: its budget, the quick variant, the models it compares, and option help."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_MODELS = {
    "tsn": ("TSN (no shift)", "tsn"),
    "tsm": ("TSM bi-directional", "tsm"),
    "tsm_online": ("TSM uni-directional (online)", "tsm_online"),
}


@dataclass
class DemoSettings:
    """The demo's budget; the defaults fit 10 minutes on a 2-core CPU."""

    # Many distinct clips, few epochs: from scratch, ResNet-18 overfits 320 clips (20 epochs, 800
    # steps: TSM 85 %); 1280 clips x 4 epochs (640 steps) reach 94.8 % in 524-561 s.
    train: int = 1280
    val: int = 48
    test: int = 96
    size: int = 32
    frames: int = 16
    segments: int = 4
    backbone: str = "resnet18"
    epochs: int = 4
    batch_size: int = 8
    lr: float = 0.004  # 0.01 and above diverge from scratch on these flat synthetic frames
    seed: int = 0
    threads: int = 0  # CPU cores to use; 0: all


QUICK = {
    "train": 8,
    "val": 4,
    "test": 4,
    "size": 32,
    "frames": 8,
    "segments": 4,
    "epochs": 1,
    "batch_size": 4,
}
HELP = {
    "train": "training clips",
    "val": "validation clips",
    "test": "held-out test clips",
    "size": "frame size in pixels",
    "frames": "frames per video",
    "segments": "frames sampled per clip (TSN segments)",
    "backbone": "resnet18, resnet34, ... or mobilenet_v2",
    "epochs": "training epochs of each model",
    "batch_size": "clips per batch",
    "lr": "SGD learning rate",
    "seed": "seed of the data and of the trainings",
    "threads": "CPU cores to use (0: all)",
}

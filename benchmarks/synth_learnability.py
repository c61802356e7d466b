"""Is the synthetic task learnable by a temporal model and not by an order-blind one?

Trains the same tiny CNN (stride-2 stem + 3 conv blocks, 16-64 channels, global average pool,
mean of the frame scores) twice on ``tsm data synth`` clips: with a temporal shift before each
block (TSM) and without (TSN). Prints validation accuracy and "pair" accuracy (the motion kind,
ignoring its direction) per epoch. TSN can learn the motion kind but must stay at chance within a
pair, so its accuracy stays near 50 % on 4 classes; TSM should go well above that.

Run: ``python benchmarks/synth_learnability.py --out /tmp/synth32 --size 32 --epochs 40`` (about
10 minutes per model on one busy CPU core).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from tsm import temporal_shift
from tsm.data import VideoDataset, generate_synthetic_dataset


class Block(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, num_segments: int, shift: bool) -> None:
        super().__init__()
        self.num_segments, self.shift = num_segments, shift
        self.conv = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(temporal_shift(x, self.num_segments) if self.shift else x)


def tiny_model(num_classes: int, num_segments: int, shift: bool) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1),
        nn.ReLU(),
        Block(16, 32, num_segments, shift),
        Block(32, 64, num_segments, shift),
        Block(64, 64, num_segments, shift),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def train(root: Path, shift: bool, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    config = json.loads((root / "data_config.json").read_text())
    train_set = VideoDataset(root / "train.txt", train=True, data_config=config)
    val_set = VideoDataset(root / "val.txt", train=False, data_config=config)
    segments, classes = train_set.data_config.num_segments, len(train_set.class_names)
    model = tiny_model(classes, segments, shift)
    loader = torch.utils.data.DataLoader(train_set, batch_size=16, shuffle=True, collate_fn=train_set.collate)
    val = val_set.collate([val_set[i] for i in range(len(val_set))])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def scores(clips: torch.Tensor) -> torch.Tensor:
        return model(clips.flatten(0, 1)).view(clips.shape[0], segments, -1).mean(1)

    start, name = time.perf_counter(), "TSM" if shift else "TSN"
    for epoch in range(epochs):
        model.train()
        for clips, labels, _ in loader:
            loss = nn.functional.cross_entropy(scores(clips), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = scores(val.clips[:, 0]).argmax(1)
        accuracy = (predicted == val.labels).float().mean().item()
        pair = (predicted // 2 == val.labels // 2).float().mean().item()
        elapsed = time.perf_counter() - start
        print(
            f"{name} epoch {epoch}: val acc {accuracy:.3f}, pair acc {pair:.3f}, {elapsed:.0f} s", flush=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="synthetic data folder (written if missing)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (args.out / "train.txt").exists():
        generate_synthetic_dataset(args.out, train=320, val=80, test=0, size=args.size)
    for shift in (True, False):
        train(args.out, shift, args.epochs, args.seed)


if __name__ == "__main__":
    main()

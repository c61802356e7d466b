"""Shared by the teaching tests: their base model, a small online TSM (a three-block CNN registered
as the backbone ``teachnet``) trained on the demo's synthetic task and stored in
tests/data/teach_base.safetensors, and synthetic videos.

Training the base takes minutes, too long for the suite, so the file is made once by this script:

    python tests/teach_helpers.py tests/data/teach_base.safetensors

(640 rendered clips of move_right, move_left, grow and shrink at 32 px, 8 frames per clip, 1200
steps of 16 clips, AdamW with a one-cycle schedule; it prints the accuracy on 80 held-out clips).
The motions it never saw (rotate_clockwise, move_down and their reverses) are what the tests teach.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

import tsm
from tsm.apps.teach import TeachLimits
from tsm.data import DataConfig, EvalPipeline, render_synthetic_clip, segment_indices, write_video
from tsm.models import BACKBONES, BackboneSpec, Setting, register_backbone
from tsm.ops import TemporalShift

BASE_FILE = Path(__file__).parent / "data" / "teach_base.safetensors"
BASE_CLASSES = ["move_right", "move_left", "grow", "shrink"]
SIZE, FRAMES, SEGMENTS = 32, 16, 8
DATA_CONFIG = DataConfig(num_segments=SEGMENTS, resize=SIZE, input_size=SIZE, flip=False)


class Block(nn.Module):
    """A residual block (conv-BN-ReLU-conv-BN plus the input, projected when its shape changes)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.norm_a = nn.BatchNorm2d(channels_out)
        self.conv_b = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.norm_b = nn.BatchNorm2d(channels_out)
        self.skip = nn.Sequential()
        if channels_in != channels_out or stride != 1:
            projection = nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False)
            self.skip = nn.Sequential(projection, nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm_a(self.conv_a(x)))
        return torch.relu(self.skip(x) + self.norm_b(self.conv_b(y)))


class TeachNet(nn.Module):
    """A stride-2 stem, three residual blocks (16, 32, 64 channels), pooling, an ImageNet-style head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Linear(64, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def _shift_blocks(net: TeachNet, segments_per_stage, fold_div: int, place: str, mode: str) -> None:
    for block in net.blocks:
        block.conv_a = TemporalShift(block.conv_a, segments_per_stage[0], fold_div, mode)


def _reveal(state) -> dict[str, Setting] | None:
    if not any(re.match(r"base_model\.blocks\.\d+\.norm_a\.", key) for key in state):
        return None
    return {"backbone": Setting("teachnet", "weights: TeachNet blocks")}


TEACHNET = BackboneSpec(
    name="teachnet",
    build=TeachNet,
    network_type=TeachNet,
    head="head",
    insert_shifts=_shift_blocks,
    placements=("blockres",),
    reveal=_reveal,
)


@contextlib.contextmanager
def teachnet_registered() -> Iterator[None]:
    """The ``teachnet`` backbone known to tsm inside the block (the registry is restored after)."""
    saved = dict(BACKBONES)
    if "teachnet" not in BACKBONES:
        register_backbone(TEACHNET)
    try:
        yield
    finally:
        BACKBONES.clear()
        BACKBONES.update(saved)


def synthetic_video(folder: Path, name: str, rng: np.random.Generator, frames: int = FRAMES) -> Path:
    """An H.264 video of one synthetic clip of class ``name`` in ``folder`` (a new name each call),
    at the frame rate projects store clips at (15 fps), so that a clip is the same in a project."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{rng.integers(1 << 30)}.mp4"
    return write_video(path, render_synthetic_clip(name, SIZE, frames, rng), fps=TeachLimits().fps)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def rendered_clips(names: list[str], per_class: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``per_class`` synthetic clips of each class as uint8 (F, 3, S, S) frames, and their labels."""
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for label, name in enumerate(names):
        for _ in range(per_class):
            clips.append(torch.from_numpy(render_synthetic_clip(name, SIZE, FRAMES, rng)).permute(0, 3, 1, 2))
            labels.append(label)
    return clips, torch.tensor(labels)


def _accuracy(model: tsm.Recognizer, clips: list[torch.Tensor], labels: torch.Tensor) -> float:
    pipeline = EvalPipeline(DATA_CONFIG)
    model.eval()
    with torch.no_grad():
        views = torch.cat([pipeline(clip[segment_indices(FRAMES, SEGMENTS, False)], 0)[0] for clip in clips])
        return (model(views).argmax(dim=1) == labels).float().mean().item()


def train_base(steps: int = 1200, batch: int = 16, lr: float = 3e-3) -> tuple[tsm.Recognizer, float]:
    """A uni-directional TeachNet TSM trained on BASE_CLASSES; returns it and its held-out accuracy."""
    torch.manual_seed(0)
    model = tsm.Recognizer(
        len(BASE_CLASSES), backbone="teachnet", num_segments=SEGMENTS, mode="unidirectional", dropout=0.0
    )
    clips, labels = rendered_clips(BASE_CLASSES, 160, seed=11)
    held, held_labels = rendered_clips(BASE_CLASSES, 20, seed=3)
    pipeline = EvalPipeline(DATA_CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for step in range(steps):
        model.train()
        chosen = torch.randint(len(clips), (batch,), generator=generator)
        picked = [clips[i][segment_indices(FRAMES, SEGMENTS, True, generator)] for i in chosen]
        inputs = torch.cat([pipeline(frames, 0)[0] for frames in picked])
        loss = nn.functional.cross_entropy(model(inputs), labels[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            accuracy = _accuracy(model, held, held_labels)
            seconds = time.perf_counter() - started
            print(f"step {step}: loss {loss.item():.3f}, held-out {accuracy:.3f}, {seconds:.0f} s")
    return model.eval(), _accuracy(model, held, held_labels)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("out", type=Path, nargs="?", default=BASE_FILE)
    parser.add_argument("--steps", type=int, default=1200)
    args = parser.parse_args()
    with teachnet_registered():
        model, accuracy = train_base(args.steps)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tsm.save_checkpoint(args.out, model, BASE_CLASSES, DATA_CONFIG)
    print(f"{args.out}: held-out accuracy {accuracy:.3f} on {len(BASE_CLASSES) * 20} clips")


if __name__ == "__main__":
    main()

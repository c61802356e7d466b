"""Shared by the streaming, export and predict tests: real decoded video frames, online models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import tsm
from tsm import create_model
from tsm.data import DataConfig, EvalPipeline, read_frames, render_synthetic_clip, write_video

FRAME_SIZE = 40


def synthetic_video(path: Path, class_name: str = "move_right", frames: int = 12, size: int = 48) -> Path:
    """A small H.264 mp4 of a moving object (tsm.data's synthetic task), encoded with PyAV."""
    rng = np.random.default_rng(abs(hash((class_name, frames, size))) % 2**32)
    return write_video(path, render_synthetic_clip(class_name, size, frames, rng))


def decoded_frames(path: Path, size: int = FRAME_SIZE) -> torch.Tensor:
    """Every frame of a video, decoded and put through the test pipeline: (F, 3, size, size)."""
    num_frames = tsm.data.probe(path).num_frames
    frames = read_frames(path, range(num_frames))
    config = DataConfig(num_segments=num_frames, resize=size, input_size=size)
    views, _ = EvalPipeline(config)(frames, -1)
    return views[0]


def random_eval_model(name: str, num_segments: int = 8, num_classes: int = 6, **overrides) -> tsm.Recognizer:
    """An eval-mode model with non-trivial BatchNorm statistics and a head of useful scale."""
    model = create_model(name, num_classes=num_classes, num_segments=num_segments, **overrides)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
    torch.nn.init.normal_(model.new_fc.weight, 0, 0.1, generator=generator)
    return model.eval()


def with_real_statistics(model: tsm.Recognizer, frames: torch.Tensor) -> tsm.Recognizer:
    """``model`` in eval mode with BatchNorm statistics averaged over real decoded ``frames``
    (F, 3, H, W), clip by clip, as a trained model's are: activations of the scale a quantizer or
    an exporter meets in practice."""
    segments = model.config.num_segments
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # the plain average of every batch seen
    model.train()
    with torch.no_grad():
        for start in range(0, len(frames) - segments + 1, segments):
            model(frames[start : start + segments].unsqueeze(0))
    return model.eval()


def offline_frame_logits(model: tsm.Recognizer, frames: torch.Tensor) -> torch.Tensor:
    """Per-frame logits (T, K) of the offline model on all of ``frames`` (T, 3, H, W): the reference
    a stream's logits equal frame by frame."""
    reference = tsm.Recognizer(model.config.replace(num_segments=frames.shape[0])).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        return reference.forward_frames(frames.unsqueeze(0))[0]


def stream_frame_logits(engine: tsm.StreamingEngine, clip: torch.Tensor) -> torch.Tensor:
    """A streaming engine's logits (T, K) on each frame of a clip (T, 3, S, S), from a new stream;
    their mean is the clip's logits."""
    streamer = tsm.StreamingRecognizer(engine)
    return torch.stack([streamer.step(frame[None])[0] for frame in clip])

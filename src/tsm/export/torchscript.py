"""TorchScript: ``torch.jit.trace`` behind a shape guard, metadata as an extra file in the archive."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from tsm.fileio import atomic_write

METADATA_FILE = "tsm_export.json"  # the metadata's name inside a TorchScript archive


@contextlib.contextmanager
def _without_deprecation_warnings() -> Iterator[None]:
    """torch.jit is deprecated in favour of torch.export, but TorchScript is what many C++ and
    mobile runtimes still load, so it is offered as asked, without a warning on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\..*` is deprecated", category=FutureWarning)
        yield


class _ClipShapeGuard(nn.Module):
    """TorchScript front of a traced clip model: refuses clips whose T or frame size differ.

    A trace bakes in T; a clip with another T would otherwise be silently split into wrong clips.
    """

    def __init__(self, traced: nn.Module, num_segments: int, frame_size: tuple[int, int]) -> None:
        super().__init__()
        self.traced = traced
        self.num_segments = num_segments
        self.height, self.width = frame_size

    def forward(self, clips: Tensor) -> Tensor:
        expected = [self.num_segments, 3, self.height, self.width]
        if clips.dim() != 5 or clips.shape[1:] != expected:
            raise ValueError(
                "this exported model takes clips (N, "
                + ", ".join([str(size) for size in expected])
                + "), got "
                + str(clips.shape)
                + "; sample that many frames per clip at that size, or export again with other settings"
            )
        return self.traced(clips)


def write_torchscript(
    network: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    metadata: dict[str, str],
) -> None:
    """Trace ``network``; a clip model (one input) gets a guard refusing other clip shapes."""
    with _without_deprecation_warnings():
        traced = torch.jit.trace(network, example, check_trace=False)
        if len(example) == 1:
            _, num_segments, _, height, width = example[0].shape
            traced = torch.jit.script(_ClipShapeGuard(traced, num_segments, (height, width)))
        extra = {METADATA_FILE: json.dumps(metadata)}
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra))


def read_torchscript_metadata(path: Path) -> dict[str, str]:
    """The metadata stored beside the program in a TorchScript archive."""
    files = {METADATA_FILE: ""}
    with _without_deprecation_warnings():
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return json.loads(files[METADATA_FILE] or "{}")


def torchscript_runner(path: Path):
    """A function running the TorchScript file on tensors, returning tensors."""
    with _without_deprecation_warnings():
        module = torch.jit.load(str(path), map_location="cpu")

    def run(inputs: Sequence[Tensor]) -> list[Tensor]:
        outputs = module(*inputs)
        return list(outputs) if isinstance(outputs, tuple | list) else [outputs]

    return run

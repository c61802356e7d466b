"""Exported ``.onnx`` files run by ONNX Runtime behind the same interface as the PyTorch engines.

A streaming engine is a drop-in for :class:`tsm.models.StreamingStep` (``engine(frames, *caches)
-> (logits, *new_caches)`` on torch tensors), a clip engine for ``Recognizer.forward``. The
session never spins its threads while idle: the decoder and the rest of a live pipeline share
the CPU with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.data import one_line
from tsm.export import read_export_metadata, require_export_extra

ONNXRUNTIME = "onnxruntime"


def onnx_providers(device: str | torch.device) -> list[str]:
    """ONNX Runtime's execution providers for a torch device: CPU, or CUDA where it is installed."""
    device = torch.device(device)
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    ort = require_export_extra("onnxruntime")
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    available = ", ".join(ort.get_available_providers())
    raise ValueError(
        f"onnxruntime cannot run on {device}: its providers here are {available}; "
        "use --device cpu, the torch engine, or install onnxruntime-gpu for CUDA"
    )


def open_session(path: Path, device: str | torch.device = "cpu", threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path``; an unloadable file is a one-line ValueError."""
    ort = require_export_extra("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no notes about unused initializers
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=onnx_providers(device))
    except Exception as error:  # onnxruntime's own error types derive from Exception only
        raise ValueError(
            f"onnxruntime cannot load {path}: {one_line(error)}; write it again with tsm export"
        ) from None


class _OnnxEngine:
    """What both ONNX engines share: the file, its tsm metadata and a session checked against it."""

    name = ONNXRUNTIME
    kind = ""  # "clip" or "stream", the tsm_export kind the file must have

    def __init__(
        self, path: str | Path, device: str | torch.device = "cpu", threads: int | None = None
    ) -> None:
        self.path = Path(path)
        self.metadata = read_export_metadata(self.path)
        if self.metadata["tsm_export"] != self.kind:
            wanted = "a streaming step (tsm export --streaming)" if self.kind == "stream" else "a clip model"
            raise ValueError(
                f"{self.path} is a {self.metadata['tsm_export']} export, but this needs {wanted}; "
                "export the checkpoint again"
            )
        self.session = open_session(self.path, device, threads)
        self.input_names = [node.name for node in self.session.get_inputs()]
        outputs = [node.name for node in self.session.get_outputs()]
        if self.input_names != self.metadata["inputs"] or outputs != self.metadata["outputs"]:
            named = f"{self.metadata['inputs']} -> {self.metadata['outputs']}"
            raise ValueError(
                f"{self.path}: the graph's inputs and outputs {self.input_names} -> {outputs} are not those "
                f"its tsm metadata names ({named}): the metadata belongs to another model; export it again"
            )
        self.device = torch.device(device)
        self.num_classes: int = self.metadata["num_classes"]
        self.num_segments: int = self.metadata["num_segments"]
        self.frame_size: tuple[int, int] = tuple(self.metadata["frame_size"])
        self.precision = "int8" if self.metadata.get("int8") else "fp32"
        self.reason = (
            f"onnxruntime ({', '.join(self.session.get_providers())}), {self.precision}, {self.path}"
        )

    def _run(self, inputs: Sequence[Tensor], device: torch.device) -> list[Tensor]:
        feeds = {
            name: tensor.detach().to("cpu", torch.float32).contiguous().numpy()
            for name, tensor in zip(self.input_names, inputs, strict=True)
        }
        return [torch.from_numpy(output).to(device) for output in self.session.run(None, feeds)]

    def _check_frame_size(self, shape: Sequence[int], what: str) -> None:
        height, width = self.frame_size
        if tuple(shape) != (3, height, width):
            raise ValueError(
                f"{self.path} takes {what} of 3x{height}x{width}, got {'x'.join(map(str, shape))}; "
                "resize the frames, or export the model at that size"
            )


class OnnxStreamingEngine(_OnnxEngine):
    """A ``tsm export --streaming`` file as a streaming engine: ``engine(frames, *caches) ->
    (logits, *new_caches)`` on torch tensors, any batch size at every call."""

    kind = "stream"

    def __init__(
        self, path: str | Path, device: str | torch.device = "cpu", threads: int | None = None
    ) -> None:
        super().__init__(path, device, threads)
        self.num_caches = len(self.input_names) - 1
        self._cache_shapes = [tuple(node.shape[1:]) for node in self.session.get_inputs()[1:]]

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Shapes of the caches for frames of ``frame_shape`` (B, 3, H, W)."""
        self._check_frame_size(frame_shape[1:], "frames")
        return [(frame_shape[0], *shape) for shape in self._cache_shapes]

    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        """One frame per stream; no ``caches`` means new streams (all caches zero)."""
        if frames.dim() != 4:
            raise ValueError(f"frames must be shaped (B, 3, H, W), got {tuple(frames.shape)}")
        self._check_frame_size(frames.shape[1:], "frames")
        if not caches:
            caches = tuple(torch.zeros(shape) for shape in self.cache_shapes(frames.shape))
        elif len(caches) != self.num_caches:
            raise ValueError(f"expected {self.num_caches} caches (one per shifted layer), got {len(caches)}")
        return tuple(self._run([frames, *caches], frames.device))


class OnnxClipEngine(_OnnxEngine):
    """A ``tsm export`` clip file as a clip engine: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``."""

    kind = "clip"

    def __call__(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[1] != self.num_segments:
            raise ValueError(
                f"{self.path} takes clips (N, {self.num_segments}, 3, H, W), got {tuple(clips.shape)}"
            )
        self._check_frame_size(clips.shape[2:], "clip frames")
        return self._run([clips], clips.device)[0]

"""Inference engines: one interface, run by PyTorch or by ONNX Runtime.

* A **streaming engine** is a drop-in for :class:`tsm.models.StreamingStep`: ``engine(frames,
  *caches) -> (logits, *new_caches)`` on torch tensors (frames (B, 3, H, W) float32; no caches =
  new streams, all zeros; B may change from call to call), with ``cache_shapes(frame_shape)``,
  ``num_caches``, ``num_classes`` and ``name`` ("torch" or "onnxruntime").
* A **clip engine** is a drop-in for ``Recognizer.forward``: ``engine(clips (N, T, 3, H, W)) ->
  logits (N, K)``, with ``name``, ``num_classes`` and ``num_segments``.

:func:`streaming_engine` and :func:`clip_engine` make them from a Recognizer (the ONNX file is
exported on first use into a cache, see :mod:`tsm.inference.onnx_cache`) or from an exported
``.onnx`` file. ``engine="auto"`` picks ONNX Runtime on the CPU when it is installed and the model
exports, else PyTorch; every engine carries a one-line ``reason`` saying what it runs and why.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch import Tensor

from tsm.data import one_line
from tsm.export import OnnxExporter
from tsm.inference.onnx_cache import DEFAULT_EXPORTER, CachedExport, cached_export
from tsm.inference.onnx_engines import ONNXRUNTIME, OnnxClipEngine, OnnxStreamingEngine
from tsm.models import Recognizer, StreamingStep, check_streamable

EngineChoice = Literal["auto", "torch", "onnxruntime"]
ENGINES: tuple[str, ...] = ("auto", "torch", ONNXRUNTIME)


class StreamingEngine(Protocol):
    """One step of a streaming model on B streams (see the module docstring)."""

    name: str
    num_caches: int
    num_classes: int
    reason: str

    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]: ...

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]: ...


class ClipEngine(Protocol):
    """A clip model: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``."""

    name: str
    num_classes: int
    num_segments: int
    reason: str

    def __call__(self, clips: Tensor) -> Tensor: ...


class TorchStreamingEngine:
    """:class:`StreamingStep` in PyTorch eager mode, without autograd (weights shared with the
    model: changes to the model show in the next step)."""

    name = "torch"

    def __init__(self, model: Recognizer, reason: str = "torch") -> None:
        self.step = StreamingStep(model)
        self.num_caches = self.step.num_caches
        self.num_classes = model.num_classes
        self.device = next(model.parameters()).device
        self.reason = reason

    @torch.no_grad()  # not inference_mode: callers may write into the returned caches
    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        return self.step(frames, *caches)

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]:
        return self.step.cache_shapes(frame_shape)


class TorchClipEngine:
    """``Recognizer.forward`` in PyTorch eager mode, without autograd."""

    name = "torch"

    def __init__(self, model: Recognizer, reason: str = "torch") -> None:
        self.model = model.eval()
        self.num_classes = model.num_classes
        self.num_segments = model.num_segments
        self.device = next(model.parameters()).device
        self.reason = reason

    @torch.no_grad()  # not inference_mode: callers may write into the returned caches
    def __call__(self, clips: Tensor) -> Tensor:
        return self.model(clips)


def is_onnx_file(source: object) -> bool:
    """Whether ``source`` names an exported ``.onnx`` file (rather than a checkpoint or a model)."""
    return isinstance(source, str | Path) and Path(source).suffix.lower() == ".onnx"


def _exported_file(
    model: Recognizer,
    engine: EngineChoice,
    streaming: bool,
    frame_size: int | tuple[int, int] | None,
    device: torch.device,
    options: dict,
) -> tuple[Path | None, str]:
    """The cached ONNX file to run ``model`` on (None: run torch) and the reason for the choice."""
    if engine == "torch":
        return None, "torch (asked for)"
    if engine == "auto":
        needed = ("onnxruntime", "onnx", *(("onnxscript",) if options["exporter"] == "dynamo" else ()))
        missing = [name for name in needed if importlib.util.find_spec(name) is None]
        if missing:
            return None, f"torch: {', '.join(missing)} not installed (pip install {' '.join(missing)})"
        if device.type != "cpu":
            return None, f"torch: auto runs onnxruntime on the CPU only, and the device is {device}"
    if frame_size is None:
        raise ValueError(
            "the onnxruntime engine needs frame_size=(H, W): an ONNX file is made for one frame size"
        )
    size = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
    if engine == ONNXRUNTIME:
        return _cache_note(cached_export(model, streaming, size, **options))
    try:
        return _cache_note(cached_export(model, streaming, size, **options))
    except Exception as error:  # the exporters raise many types; auto then runs torch and says why
        return None, f"torch: the model does not export to ONNX ({one_line(error)})"


def _cache_note(cached: CachedExport) -> tuple[Path, str]:
    how = f"exported in {cached.seconds:.1f} s" if cached.exported else "from the cache"
    return cached.path, f"ONNX file {how}"


def _check_choice(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")


def _make_engine(
    model: Recognizer | str | Path,
    engine: EngineChoice,
    streaming: bool,
    frame_size: int | tuple[int, int] | None,
    device: str | torch.device,
    threads: int | None,
    onnx_exporter: OnnxExporter,
    cache_dir: str | Path | None,
) -> StreamingEngine | ClipEngine:
    """What :func:`streaming_engine` and :func:`clip_engine` share."""
    _check_choice(engine)
    device = torch.device(device)
    torch_type, onnx_type = (
        (TorchStreamingEngine, OnnxStreamingEngine) if streaming else (TorchClipEngine, OnnxClipEngine)
    )
    if is_onnx_file(model):
        if engine == "torch":
            raise ValueError(f"{model} is an exported ONNX file: it runs on onnxruntime, not torch")
        return onnx_type(model, device, threads)
    if not isinstance(model, Recognizer):
        raise TypeError(f"an engine needs a tsm.Recognizer or an .onnx file, got {type(model).__name__}")
    if streaming:
        check_streamable(model)  # whatever the engine
    options = {"exporter": onnx_exporter, "cache_dir": cache_dir}
    path, reason = _exported_file(model, engine, streaming, frame_size, device, options)
    if path is None:
        return torch_type(model.to(device).eval(), reason)
    chosen = onnx_type(path, device, threads)
    chosen.reason = f"{chosen.reason} ({reason})"
    return chosen


def streaming_engine(
    model: Recognizer | str | Path,
    engine: EngineChoice = "auto",
    frame_size: int | tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_EXPORTER,
    cache_dir: str | Path | None = None,
) -> StreamingEngine:
    """A streaming engine for a uni-directional Recognizer or a ``tsm export --streaming`` file.

    ``engine``: "torch", "onnxruntime" (a Recognizer is exported into the cache on first use, at
    ``frame_size``), or "auto" (onnxruntime on the CPU when it is installed and the model exports,
    else torch). ``threads``: onnxruntime's intra-op threads (default: its own choice).
    ``onnx_exporter`` and ``cache_dir`` (default :func:`~tsm.inference.onnx_cache_dir`): how and
    where the cache exports. The engine's ``reason`` says which it is and why.
    """
    return _make_engine(model, engine, True, frame_size, device, threads, onnx_exporter, cache_dir)


def clip_engine(
    model: Recognizer | str | Path,
    engine: EngineChoice = "auto",
    frame_size: int | tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_EXPORTER,
    cache_dir: str | Path | None = None,
) -> ClipEngine:
    """A clip engine for a Recognizer or a ``tsm export`` clip file; options as :func:`streaming_engine`."""
    return _make_engine(model, engine, False, frame_size, device, threads, onnx_exporter, cache_dir)

"""The engine contract: what every runtime that runs a tsm model provides, and the table row that
plugs a runtime in.

An engine runs one kind of model (:data:`~tsm.models.ModelKind`):

* ``"stream"``, a drop-in for :class:`tsm.models.StreamingStep`: ``engine(frames, *caches) ->
  (logits, *new_caches)`` on torch tensors (frames (B, 3, H, W) float32; no caches = new streams,
  all zeros; B may change from call to call), with ``num_caches`` and ``cache_shapes``;
* ``"clip"``, a drop-in for ``Recognizer.forward``: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``.

Both say what they are (``name``, ``precision``, ``reason``), where inputs go (``device``) and
which frames they take (``frame_size``: None when any size works). Callers use these attributes
and nothing else.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from tsm.export import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.inference.precision import Precision, check_precision
from tsm.models import ModelKind, Recognizer

# What else runs while an engine works, so that each runtime tunes itself for the path it is on
# (each runtime's settings per workload were chosen by measurement: docs/benchmarks.md):
# "alone": nothing else (a loop over prepared inputs, as a benchmark's); "overlapped": decoding
# and preprocessing in other threads of the same process (tsm stream, tsm predict, the default);
# "served": a server's batched calls, frames decoded in parallel (tsm serve).
Workload = Literal["alone", "overlapped", "served"]
WORKLOADS: tuple[str, ...] = ("alone", "overlapped", "served")
DEFAULT_WORKLOAD: Workload = "overlapped"


@dataclass(frozen=True)
class EngineOptions:
    """How an engine is made: the torch device inputs live on, the runtime's CPU threads (None:
    its own choice), how and where a Recognizer is exported for a runtime that runs files, the
    precision it computes in (:mod:`tsm.inference.precision`; a file runs in its own), and the
    workload it runs in (:data:`Workload`)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    threads: int | None = None
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER
    cache_dir: Path | None = None
    precision: Precision = "fp32"
    workload: Workload = DEFAULT_WORKLOAD

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")
        check_precision(self.precision)
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}: use one of {', '.join(WORKLOADS)}")


@runtime_checkable
class ClipEngine(Protocol):
    """A clip model: ``engine(clips (N, T, 3, H, W)) -> logits (N, K)``."""

    name: str  # the runtime: "torch", "onnxruntime", ...
    kind: ModelKind  # "clip"
    device: torch.device  # where inputs and outputs live
    frame_size: tuple[int, int] | None  # the frames it takes; None: any size
    precision: str  # "fp32", "int8", ...
    reason: str  # one line: what runs and why it was chosen
    num_classes: int
    num_segments: int

    def __call__(self, clips: Tensor) -> Tensor: ...


@runtime_checkable
class StreamingEngine(Protocol):
    """One step of a streaming model on B streams: ``engine(frames, *caches) -> (logits, *new_caches)``."""

    name: str
    kind: ModelKind  # "stream"
    device: torch.device
    frame_size: tuple[int, int] | None
    precision: str
    reason: str
    num_classes: int
    num_segments: int
    num_caches: int

    def __call__(self, frames: Tensor, *caches: Tensor) -> tuple[Tensor, ...]: ...

    def cache_shapes(self, frame_shape: Sequence[int]) -> list[tuple[int, ...]]: ...


Engine = ClipEngine | StreamingEngine


class Runner(Protocol):
    """One exported file loaded by a runtime: tensors in, tensors out (what a file engine wraps).
    ``input_names``, ``output_names`` and ``input_shapes`` are None where the runtime cannot tell
    them (the file's tsm metadata records them too)."""

    description: str  # e.g. "onnxruntime (CPUExecutionProvider)"
    input_names: list[str] | None
    output_names: list[str] | None
    input_shapes: list[tuple[int | str, ...]] | None  # symbolic dimensions as names

    def run(self, inputs: Sequence[Tensor]) -> list[Tensor]: ...


@dataclass(frozen=True)
class EngineRuntime:
    """One row of the engine table (:data:`tsm.inference.ENGINE_RUNTIMES`): a runtime tsm runs
    models on. Adding a runtime is one row and the module that holds its functions.

    Attributes:
        name: what ``engine=`` and ``--engine`` call it.
        packages: the Python modules it needs; ``extra`` is the pip extra that installs them.
        suffixes: the exported files it runs (``open_file(path, options) -> Runner``).
        export_format: the export format a Recognizer is written in (through the export cache) to
            run on it; None for a runtime that runs a Recognizer itself (``wrap_model``).
        auto_devices: the device types ``engine="auto"`` may pick it for, in table order (the
            fastest measured first); empty: never picked by auto.
        precisions: what ``precision=`` may ask of it besides "auto" (a runtime of files runs
            the file's own precision: fp32 or int8).
    """

    name: str
    packages: tuple[str, ...] = ()
    extra: str | None = None
    suffixes: tuple[str, ...] = ()
    export_format: str | None = None
    open_file: Callable[[Path, EngineOptions], Runner] | None = None
    wrap_model: Callable[[Recognizer, ModelKind, EngineOptions, str], Engine] | None = None
    auto_devices: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)

    def missing_packages(self) -> list[str]:
        """The packages it needs that are not installed."""
        return [name for name in self.packages if importlib.util.find_spec(name) is None]

    def install_hint(self) -> str:
        """How to install what it needs (a one-line hint)."""
        return f"pip install 'tsm[{self.extra}]'" if self.extra else f"pip install {' '.join(self.packages)}"

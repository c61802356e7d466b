"""The engine table, and the two factories every caller uses.

:data:`ENGINE_RUNTIMES` has one row per runtime (:class:`~tsm.inference.engine_api.EngineRuntime`);
adding a runtime is adding a row here and the module with its functions. :func:`streaming_engine`
and :func:`clip_engine` make an engine (see :mod:`tsm.inference.engine_api` for the contract) from
a Recognizer, a checkpoint, or an exported file:

* a Recognizer runs on torch directly, or on a runtime that runs files through the export cache
  (:mod:`tsm.inference.export_cache`), one exported file per frame size, made when frames of that
  size first arrive (or at ``frame_size`` right away);
* an exported file runs on a runtime whose row lists its suffix; a streaming step also answers
  whole clips (:class:`~tsm.inference.stream_clips.StreamClipEngine`).

``engine="auto"`` (the default everywhere: :data:`DEFAULT_ENGINE`) tries the rows in table order,
the fastest measured first (docs/benchmarks.md), and takes the first one that is installed, runs
on the device, and (for a Recognizer) exports the model; every engine's ``reason`` says which
runtime runs and why.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tsm.checkpoint import load_checkpoint
from tsm.errors import one_line
from tsm.export import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.inference.engine_api import (
    DEFAULT_WORKLOAD,
    ClipEngine,
    Engine,
    EngineOptions,
    EngineRuntime,
    StreamingEngine,
    Workload,
)
from tsm.inference.executorch_runtime import EXECUTORCH, ExecuTorchRunner
from tsm.inference.export_cache import cached_export
from tsm.inference.file_engines import file_engine
from tsm.inference.onnxruntime_runtime import ONNXRUNTIME, OnnxRuntimeRunner
from tsm.inference.openvino_runtime import OPENVINO, OpenVinoRunner
from tsm.inference.per_size import PerSizeEngine
from tsm.inference.precision import Precision
from tsm.inference.stream_clips import StreamClipEngine
from tsm.inference.torch_engines import TORCH, wrap_torch_model
from tsm.models import ModelKind, Recognizer, check_streamable

AUTO = "auto"
# In the order auto tries them, the fastest measured first (docs/benchmarks.md, "Inference
# engines"): on this project's CPU, ONNX Runtime's fp32 step beat OpenVINO's in every case measured,
# so OpenVINO runs what it is asked to run; ExecuTorch is faster still on a .pte file (which only it
# runs), but is never picked for a Recognizer.
ENGINE_RUNTIMES: dict[str, EngineRuntime] = {
    row.name: row
    for row in (
        EngineRuntime(
            ONNXRUNTIME,
            packages=("onnxruntime",),
            extra="export",
            suffixes=(".onnx",),
            export_format="onnx",
            open_file=OnnxRuntimeRunner,
            auto_devices=("cpu",),
        ),
        EngineRuntime(
            OPENVINO,
            packages=("openvino",),
            extra="openvino",
            suffixes=(".onnx",),
            export_format="onnx",
            open_file=OpenVinoRunner,
            auto_devices=("cpu",),
        ),
        # Never auto for a Recognizer: lowering to XNNPACK takes a minute or more on first use.
        EngineRuntime(
            EXECUTORCH,
            packages=("executorch",),
            extra="executorch",
            suffixes=(".pte",),
            export_format="executorch",
            open_file=ExecuTorchRunner,
        ),
        EngineRuntime(
            TORCH,
            wrap_model=wrap_torch_model,
            auto_devices=("cpu", "cuda", "mps"),
            precisions=("fp32", "bf16"),
        ),
    )
}
DEFAULT_ENGINE = AUTO
FrameSize = int | tuple[int, int] | None


def engine_names() -> tuple[str, ...]:
    """What ``engine=`` takes: "auto" and the table's runtimes."""
    return (AUTO, *ENGINE_RUNTIMES)


def _check_choice(engine: str) -> None:
    if engine not in engine_names():
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(engine_names())}")


def file_runtimes(source: object) -> list[EngineRuntime]:
    """The runtimes that run ``source`` when it names an exported file (by its suffix), in table
    order; empty for anything else (a checkpoint, a published name, a model)."""
    if not isinstance(source, str | Path):
        return []
    suffix = Path(source).suffix.lower()
    return [row for row in ENGINE_RUNTIMES.values() if suffix in row.suffixes]


def is_exported_file(source: object) -> bool:
    """Whether ``source`` names an exported file some runtime runs (rather than a checkpoint)."""
    return bool(file_runtimes(source))


def _require(row: EngineRuntime) -> None:
    missing = row.missing_packages()
    if missing:
        raise ValueError(f"the {row.name} engine needs {', '.join(missing)}: {row.install_hint()}")


def _runs_precision(row: EngineRuntime, precision: str) -> bool:
    return precision == "auto" or precision in row.precisions


def _precision_runtimes(precision: str) -> str:
    return " or ".join(row.name for row in ENGINE_RUNTIMES.values() if precision in row.precisions)


def _adapt(engine: Engine, kind: ModelKind, source: object) -> Engine:
    """``engine`` as the kind asked for: a streaming step also runs whole clips."""
    if engine.kind == kind:
        return engine
    if engine.kind == "stream":
        return StreamClipEngine(engine)
    raise ValueError(
        f"{source} is a clip model, but streaming needs a streaming step: "
        "export it with tsm export --streaming"
    )


def file_runtime(path: str | Path, engine: str = AUTO) -> EngineRuntime:
    """The runtime that runs the exported file ``path`` for ``engine``: for "auto", the first row
    of the table that runs its suffix and is installed; a runtime named must run it and be installed."""
    path = Path(path)
    rows = file_runtimes(path)
    if engine == AUTO:
        usable = [row for row in rows if not row.missing_packages()]
        if not usable:
            _require(rows[0])
        return usable[0]
    if engine not in [row.name for row in rows]:
        names = " or ".join(row.name for row in rows)
        raise ValueError(f"{path} is an exported {path.suffix} file: it runs on {names}, not {engine}")
    _require(ENGINE_RUNTIMES[engine])
    return ENGINE_RUNTIMES[engine]


def _open_file(path: Path, kind: ModelKind, engine: str, options: EngineOptions) -> Engine:
    if options.precision not in ("auto", "fp32"):
        raise ValueError(
            f"{path} runs in the precision it was exported in (fp32 or int8), not {options.precision}: "
            f"{options.precision} runs a checkpoint on {_precision_runtimes(options.precision)}"
        )
    row = file_runtime(path, engine)
    opened = file_engine(path, row.name, lambda: row.open_file(path, options), options.device)
    return _adapt(opened, kind, path)


def _exported(model: Recognizer, kind: ModelKind, row: EngineRuntime, options: EngineOptions, size) -> Engine:
    """The engine of ``model`` exported for ``row`` at frames of ``size`` (through the cache)."""
    cached = cached_export(model, kind, size, row.export_format, options.onnx_exporter, options.cache_dir)
    engine = file_engine(cached.path, row.name, lambda: row.open_file(cached.path, options), options.device)
    engine.reason = f"{engine.reason} ({cached.note()})"
    return engine


def _through_export(
    model: Recognizer, kind: ModelKind, row: EngineRuntime, options: EngineOptions, frame_size, fallback: bool
) -> Engine:
    """``model`` on a runtime that runs files; with ``fallback`` (auto), a model that does not
    export runs on torch instead, and says why."""

    def make(size: tuple[int, int]) -> Engine:
        if not fallback:
            return _exported(model, kind, row, options, size)
        try:
            return _exported(model, kind, row, options, size)
        except Exception as error:  # the exporters raise many types; auto then runs torch and says why
            reason = f"{TORCH}: the model does not export for {row.name} ({one_line(error)})"
            return wrap_torch_model(model, kind, options, reason)

    engine = PerSizeEngine(model, kind, row.name, options.device, make)
    if frame_size is not None:
        engine.engine_for(frame_size)  # now: the choice, its reason and any error show at once
    return engine


def _auto(model: Recognizer, kind: ModelKind, options: EngineOptions, frame_size) -> Engine:
    skipped = []
    for row in ENGINE_RUNTIMES.values():
        if not row.auto_devices:
            continue  # never picked by auto (ask for it by name)
        if options.device.type not in row.auto_devices:
            skipped.append(f"{row.name} does not run on {options.device}")
        elif row.missing_packages():
            skipped.append(f"{', '.join(row.missing_packages())} not installed ({row.install_hint()})")
        elif not _runs_precision(row, options.precision):
            skipped.append(f"{row.name} does not run {options.precision}")
        elif row.wrap_model is not None:
            reason = f"{row.name}: {'; '.join(skipped)}" if skipped else row.name
            return row.wrap_model(model, kind, options, reason)
        else:
            return _through_export(model, kind, row, options, frame_size, fallback=True)
    raise ValueError(f"no engine runs this model here: {'; '.join(skipped)}")


def make_engine(
    model: Recognizer | str | Path | Engine,
    kind: ModelKind,
    engine: str = DEFAULT_ENGINE,
    frame_size: FrameSize = None,
    options: EngineOptions | None = None,
) -> Engine:
    """The engine of ``kind`` ("stream" or "clip") for ``model``: a Recognizer, a checkpoint or
    published name, an exported file, or an engine (returned as it is, or a streaming engine
    adapted to whole clips). What :func:`streaming_engine` and :func:`clip_engine` call."""
    _check_choice(engine)
    options = options or EngineOptions()
    if isinstance(model, StreamingEngine | ClipEngine) and not isinstance(model, Recognizer):
        return _adapt(model, kind, type(model).__name__)
    if is_exported_file(model):
        return _open_file(Path(model), kind, engine, options)
    if isinstance(model, str | Path):
        model, _ = load_checkpoint(model)
    if not isinstance(model, Recognizer):
        raise TypeError(
            f"an engine runs a tsm.Recognizer, a checkpoint or an exported file, not {type(model).__name__}"
        )
    if kind == "stream":
        check_streamable(model)  # whatever the engine
    size = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    if engine == AUTO:
        return _auto(model, kind, options, size)
    row = ENGINE_RUNTIMES[engine]
    _require(row)
    if not _runs_precision(row, options.precision):
        raise ValueError(
            f"the {row.name} engine does not run {options.precision} (it runs {', '.join(row.precisions)}): "
            f"use --engine {_precision_runtimes(options.precision)}, or --precision fp32"
        )
    if row.wrap_model is not None:
        return row.wrap_model(model, kind, options, f"{row.name} (asked for)")
    return _through_export(model, kind, row, options, size, fallback=False)


def streaming_engine(
    model: Recognizer | str | Path | StreamingEngine,
    engine: str = DEFAULT_ENGINE,
    frame_size: FrameSize = None,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
    cache_dir: str | Path | None = None,
    precision: Precision = "fp32",
    workload: Workload = DEFAULT_WORKLOAD,
) -> StreamingEngine:
    """A streaming engine for a uni-directional model or a ``tsm export --streaming`` file.

    ``engine``: a row of :data:`ENGINE_RUNTIMES` ("torch", "onnxruntime", ...) or "auto" (the
    default; see the module docstring). ``frame_size``: export for these frames now rather than
    at the first frame. ``threads``: the runtime's CPU threads. ``onnx_exporter`` and ``cache_dir``
    (default :func:`~tsm.inference.export_cache_dir`): how and where the export cache exports.
    ``precision``: "fp32" (the default), "bf16" (the torch engine, on a reduced-precision copy of
    the model) or "auto" (bf16 where the CPU has AMX or AVX-512 BF16 and torch runs the model;
    :mod:`tsm.inference.precision`). ``workload``: what else runs meanwhile
    (:data:`~tsm.inference.engine_api.Workload`), for the runtime's own settings. The engine's
    ``reason`` says which runtime runs it, in which precision, and why.
    """
    options = EngineOptions(
        device, threads, onnx_exporter, Path(cache_dir) if cache_dir else None, precision, workload
    )
    return make_engine(model, "stream", engine, frame_size, options)


def clip_engine(
    model: Recognizer | str | Path | ClipEngine,
    engine: str = DEFAULT_ENGINE,
    frame_size: FrameSize = None,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
    cache_dir: str | Path | None = None,
    precision: Precision = "fp32",
    workload: Workload = DEFAULT_WORKLOAD,
) -> ClipEngine:
    """A clip engine (``engine(clips) -> logits``) for a model or an exported file (a clip model,
    or a streaming step run frame by frame); options as :func:`streaming_engine`."""
    options = EngineOptions(
        device, threads, onnx_exporter, Path(cache_dir) if cache_dir else None, precision, workload
    )
    return make_engine(model, "clip", engine, frame_size, options)

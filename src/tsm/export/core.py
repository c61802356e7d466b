"""Export a Recognizer to ONNX, ExecuTorch or TorchScript, for whole clips or for streaming, and check it.

Two kinds of exported model:

* ``"clip"``: the offline model, ``clips (N, T, 3, H, W) -> logits (N, K)``, with a dynamic batch
  N and the fixed T (``num_segments``) and frame size the file records in its metadata.
* ``"stream"``: one step of :class:`~tsm.models.StreamingStep`, ``(frames, cache_0, ...,
  cache_{n-1}) -> (logits, new_cache_0, ...)``: feed each step's new caches to the next step, zeros
  at the start of a stream (the reference's online demo, for every uni-directional model).

ONNX goes through ``torch.onnx.export``; the temporal shift is traced as Slice/Pad/Concat, so the
graph has no constant that depends on the example input. ExecuTorch captures the network with
``torch.export`` and lowers it to XNNPACK (:mod:`tsm.export.executorch`). TorchScript uses
``torch.jit.trace``. After writing, :func:`verify_export` runs the file with its format's runner
(onnxruntime on the CPU, ``executorch.runtime``, ``torch.jit.load``) and compares it with PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tsm.data import (
    DataConfig,
    as_data_config,
    frame_transform,
    load_clip,
    open_frames,
    render_synthetic_clip,
    write_video,
)
from tsm.errors import one_line
from tsm.export.formats import FORMATS, format_for, write_options
from tsm.export.onnx import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.export.reference import float64_reference
from tsm.models import ModelKind, Recognizer, StreamingStep

_EXAMPLE_BATCH = 2  # > 1, so that the exporter keeps the batch dimension dynamic
CHECK_FRAMES = 8  # streaming check: steps on the first frames of a video
# The check's rule (docs/export.md, "The check"): each output of the exported file may be as far
# from a float64 PyTorch run as CHECK_FACTOR times PyTorch fp32's own distance from it, plus
# CHECK_FLOOR of the output's magnitude (for outputs fp32 happens to get almost exact).
CHECK_FACTOR = 10.0
CHECK_FLOOR = 2.0**-20  # 8 float32 units in the last place


@dataclass(frozen=True)
class InputCheck:
    """One input set of the check: the largest distance from float64 PyTorch of the exported file
    and of PyTorch fp32 (on the output where the file comes closest to its bound), and the bound."""

    error: float  # max |file - float64|
    pytorch_error: float  # max |PyTorch fp32 - float64| on the same output
    bound: float  # CHECK_FACTOR * pytorch_error + CHECK_FLOOR * max |float64|
    failure: str | None = None  # why the file did not run on these inputs at all

    @property
    def passed(self) -> bool:
        return self.error <= self.bound

    def describe(self) -> str:
        """The figures (or the failure) in a few words."""
        if self.failure:
            return self.failure
        return f"{self.error:.2e} (PyTorch fp32 {self.pytorch_error:.2e}, bound {self.bound:.2e})"


@dataclass
class ExportCheck:
    """How far the exported file's outputs are from float64 PyTorch, next to PyTorch fp32's own
    distance, per input set (see :func:`verify_export`)."""

    path: Path
    format: str
    kind: str
    inputs: dict[str, InputCheck] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.inputs.values())

    @property
    def errors(self) -> dict[str, float]:
        """Input set -> the file's largest distance from float64 PyTorch."""
        return {name: check.error for name, check in self.inputs.items()}

    def summary(self) -> str:
        """One line: PASS/FAIL and, per input set, the file's and PyTorch fp32's error."""
        verdict = "PASS" if self.passed else "FAIL"
        details = ", ".join(f"{name} inputs {check.describe()}" for name, check in self.inputs.items())
        runtime = FORMATS[self.format].runtime
        return (
            f"{verdict}: {runtime} vs float64 PyTorch, max |diff| on {details}; rule: within "
            f"{CHECK_FACTOR:g}x PyTorch fp32's own error"
        )


def export_metadata(
    model: Recognizer,
    kind: ModelKind,
    input_names: Sequence[str],
    output_names: Sequence[str],
    frame_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    input_shapes: Sequence[Sequence[int | str]] | None = None,
) -> dict[str, str]:
    """What an exported file records about itself (all values JSON strings). ``input_shapes``:
    each input's shape, ``"batch"`` first: what a runtime that cannot tell them reads."""
    values = {
        "tsm_export": kind,
        "num_segments": model.num_segments,
        "frame_size": list(frame_size),
        "num_classes": model.num_classes,
        "model_config": model.config.to_dict(),
        "class_names": list(class_names) if class_names is not None else None,
        "data_config": as_data_config(data_config, num_segments=model.num_segments).to_dict(),
        "inputs": list(input_names),
        "outputs": list(output_names),
        "input_shapes": [list(shape) for shape in input_shapes] if input_shapes is not None else None,
    }
    return {key: json.dumps(value) for key, value in values.items()}


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata :func:`export_model` wrote into an exported file (any format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model {str(path)!r} does not exist")
    raw = format_for(path).read_metadata(path)
    if "tsm_export" not in raw:
        raise ValueError(f"{path} was not written by tsm export (no tsm metadata)")
    return {key: json.loads(value) for key, value in raw.items()}


def _example_inputs(
    model: Recognizer, kind: ModelKind, frame_size: tuple[int, int], streaming: StreamingStep | None
) -> tuple[Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    if kind == "clip":
        return (torch.randn(_EXAMPLE_BATCH, model.num_segments, 3, *frame_size, generator=generator),)
    frames = torch.randn(_EXAMPLE_BATCH, 3, *frame_size, generator=generator)
    with torch.no_grad():
        _, *caches = streaming(frames)
    return (frames, *caches)


def _io_names(kind: ModelKind, num_caches: int) -> tuple[list[str], list[str]]:
    if kind == "clip":
        return ["clips"], ["logits"]
    caches = [f"cache_{index}" for index in range(num_caches)]
    return ["frames", *caches], ["logits", *[f"new_{name}" for name in caches]]


@dataclass(frozen=True)
class ExportInputs:
    """What every writer takes: the network to capture (the Recognizer, or its StreamingStep),
    example inputs, input and output names, and the file's metadata."""

    network: nn.Module
    example: tuple[Tensor, ...]
    names: tuple[list[str], list[str]]
    metadata: dict[str, str]


def export_inputs(
    model: Recognizer,
    kind: ModelKind,
    frame_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
) -> ExportInputs:
    """``model`` (made ready by :func:`export_ready`) as the writers take it, for ``kind``."""
    stepper = StreamingStep(model) if kind == "stream" else None
    example = _example_inputs(model, kind, frame_size, stepper)
    names = _io_names(kind, len(example) - 1)
    shapes = [("batch", *tensor.shape[1:]) for tensor in example]
    metadata = export_metadata(model, kind, *names, frame_size, class_names, data_config, shapes)
    return ExportInputs(stepper if stepper is not None else model, example, names, metadata)


def _on_cpu_in_float32(model: Recognizer) -> Recognizer:
    """``model`` when its floating tensors are all float32 on the CPU, else a copy that is.

    A copy rather than moving the caller's model and back: float64 weights would not survive the
    round trip through float32, a GPU model would give up its GPU memory in the middle of a run, and
    the copy costs one float32 set of weights in CPU memory, the form the exporter needs anyway.
    """
    tensors = [*model.parameters(), *model.buffers()]
    floats = [t for t in tensors if t.is_floating_point()]
    if all(t.device.type == "cpu" for t in tensors) and all(t.dtype == torch.float32 for t in floats):
        return model
    memo: dict[int, Any] = {}  # deepcopy takes these for the model's tensors: no copy on their device
    for tensor in tensors:
        data = tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else tensor.dtype)
        data = data.clone() if data.data_ptr() == tensor.data_ptr() else data
        is_parameter = isinstance(tensor, torch.nn.Parameter)
        memo[id(tensor)] = torch.nn.Parameter(data, tensor.requires_grad) if is_parameter else data
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def export_ready(model: Recognizer) -> Iterator[Recognizer]:
    """``model`` as the exporters take it: on the CPU in float32 (a copy unless it already is) and
    in eval mode; afterwards every module has its own train/eval mode back (a hand-frozen
    BatchNorm stays frozen), and the caller's model is where and what it was."""
    model = _on_cpu_in_float32(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


# PyTorch's exporters (torch.onnx.export, torch.jit.trace) keep global state while they trace:
# two threads exporting at once (a server readying one model while it exports another) break each
# other's graphs, so one file is written at a time in a process.
_WRITING = threading.Lock()


def export_model(
    model: Recognizer,
    path: str | Path,
    format: str | None = None,
    streaming: bool = False,
    frame_size: int | tuple[int, int] = 224,
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    check: bool = True,
    check_inputs: dict[str, Tensor] | None = None,
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
) -> ExportCheck | None:
    """Write ``model`` as ONNX, ExecuTorch or TorchScript (atomically), then check it against PyTorch.

    Args:
        model: the Recognizer, exported in eval mode on the CPU in float32 and left as it was (its
            device, dtype, weights and the train/eval mode of each module): one on another device
            or in another dtype is exported as a CPU float32 copy.
        path: output file; its suffix says the format (``.onnx``; ``.pte`` for ExecuTorch;
            ``.pt``/``.ts``/``.torchscript`` for TorchScript); ``format``, when given, must agree.
        streaming: export one streaming step (uni-directional models only) instead of whole clips.
        frame_size: frame height and width the file is made for.
        class_names, data_config: recorded in the file's metadata for the runtime.
        check: run :func:`verify_export` on random inputs and ``check_inputs`` (named input sets:
            clips ``(N, T, 3, H, W)``, or for streaming a sequence of frames ``(S, B, 3, H, W)``).
        onnx_exporter: ``"torchscript"`` (the default, :data:`~tsm.export.onnx.DEFAULT_ONNX_EXPORTER`:
            PyTorch's older tracing exporter, opset 17) or ``"dynamo"`` (``torch.export``-based;
            needs onnxscript). Both are checked the same way.

    Returns:
        The :class:`ExportCheck` (None when ``check`` is False).
    """
    path = Path(path)
    spec = format_for(path, format)
    if not isinstance(model, Recognizer):
        raise TypeError(f"export_model expects a tsm.Recognizer, got {type(model).__name__}")
    size = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
    kind: ModelKind = "stream" if streaming else "clip"
    with export_ready(model) as model:
        inputs = export_inputs(model, kind, size, class_names, data_config)
        options = write_options(spec, {"exporter": onnx_exporter})
        with _WRITING:
            spec.write(inputs.network, inputs.example, path, inputs.names, inputs.metadata, **options)
        if not check:
            return None
        return verify_export(path, model, streaming=streaming, inputs=check_inputs)


class _Runs:
    """The same inputs through float64 PyTorch, fp32 PyTorch and the exported file (three
    functions ``(*inputs) -> outputs``); keeps the output that comes closest to its bound."""

    def __init__(self, reference: Callable, pytorch: Callable, exported: Callable) -> None:
        self.runs = (reference, pytorch, exported)
        self.worst = InputCheck(0.0, 0.0, 0.0)

    def run(self, states: Sequence[Sequence[Tensor]]) -> list[list[Tensor]]:
        """Each function on its own inputs (float64 for the reference); compares the outputs."""
        outputs = [list(run(*inputs)) for run, inputs in zip(self.runs, states, strict=True)]
        reference, pytorch, exported = outputs
        if len(exported) != len(reference):
            self.worst = InputCheck(float("inf"), 0.0, 0.0)
            return outputs
        for expected, fp32, actual in zip(reference, pytorch, exported, strict=True):
            error = float((actual.double() - expected).abs().max())
            pytorch_error = float((fp32.double() - expected).abs().max())
            bound = CHECK_FACTOR * pytorch_error + CHECK_FLOOR * float(expected.abs().max())
            candidate = InputCheck(error, pytorch_error, bound)
            if _over(candidate) > _over(self.worst):
                self.worst = candidate
        return outputs


def _over(check: InputCheck) -> float:
    """How far ``check`` is toward its bound (above 1: failed)."""
    return check.error / check.bound if check.bound > 0 else (0.0 if check.error == 0 else float("inf"))


@torch.no_grad()
def verify_export(
    path: str | Path,
    model: Recognizer,
    streaming: bool = False,
    inputs: dict[str, Tensor] | None = None,
) -> ExportCheck:
    """Run an exported file, ``model`` in fp32 and ``model`` in float64 on the same inputs, and
    accept the file when each of its outputs is within ``CHECK_FACTOR`` times PyTorch fp32's own
    distance from float64 (plus ``CHECK_FLOOR`` of the output's magnitude). Two fp32
    implementations round differently, so the file is held to fp32's accuracy, not to PyTorch's
    rounding; a real defect (a shift traced as a constant, caches wired wrong) is off by far more.

    Always checks random inputs (batch 3, not the export's example batch); ``inputs`` adds named
    real inputs: clips (N, T, 3, H, W), or for streaming frame sequences (S, B, 3, H, W) that run S
    steps, each run's caches fed to its own next step, comparing logits and caches at every step.
    """
    path = Path(path)
    metadata = read_export_metadata(path)
    height, width = metadata["frame_size"]
    spec = format_for(path)
    run = spec.runner(path)
    generator = torch.Generator().manual_seed(1)
    model = model.eval()
    reference = float64_reference(model)
    check = ExportCheck(path, spec.name, "stream" if streaming else "clip")
    frames = (3,) if streaming else (model.num_segments,)  # 3 steps of 3 streams, or 3 clips
    sets = {"random": torch.randn(3, *frames, 3, height, width, generator=generator)}
    sets.update(inputs or {})
    exported = lambda *tensors: run(list(tensors))  # noqa: E731
    for name, tensor in sets.items():
        tensor = tensor.float().cpu()
        if streaming:
            runs = _Runs(StreamingStep(reference), StreamingStep(model), exported)
        else:
            runs = _Runs(lambda clips: [reference(clips)], lambda clips: [model(clips)], exported)
        try:
            if streaming:
                _compare_steps(runs, tensor)
            else:
                runs.run([[tensor.double()], [tensor], [tensor]])
        except Exception as error:  # a runtime's own error types (onnxruntime's derive from Exception only)
            runs.worst = InputCheck(
                float("inf"), 0.0, 0.0, f"the file does not run on them ({one_line(error)})"
            )
        check.inputs[name] = runs.worst
    return check


def _compare_steps(runs: _Runs, frames: Tensor) -> None:
    """S steps on (S, B, 3, H, W), from zero caches; each run feeds its own caches to its next step."""
    zeros = [torch.zeros(shape) for shape in runs.runs[1].cache_shapes(frames.shape[1:])]
    caches = [[zero.double() for zero in zeros], zeros, zeros]
    for step in frames:
        outputs = runs.run([[step.double(), *caches[0]], [step, *caches[1]], [step, *caches[2]]])
        caches = [output[1:] for output in outputs]


def decoded_check_inputs(
    data_config: DataConfig, size: int | tuple[int, int], streaming: bool, video: str | Path | None = None
) -> dict[str, Tensor]:
    """Real decoded inputs for :func:`verify_export`: the test views (V, T, 3, H, W) of ``video``,
    or for streaming its first frames (S, 1, 3, H, W), at ``size`` (a side, or (H, W): the centre
    of a square crop). Without ``video``, a short H.264 clip of the synthetic task is encoded for
    it, so the check always sees decoded frames."""
    height, width = (size, size) if isinstance(size, int) else size
    config = data_config.replace(input_size=max(height, width), full_res=False)
    with tempfile.TemporaryDirectory() as folder:
        name = "video"
        if video is None:
            side = max(config.input_size, data_config.resize or 0)
            side += side % 2  # yuv420p needs even sizes
            rng = np.random.default_rng(0)
            frames = render_synthetic_clip("move_right", side, 2 * config.num_segments, rng)
            video, name = write_video(Path(folder) / "check.mp4", frames), "synthetic video"
        if not streaming:
            inputs = load_clip(video, config)
        else:
            decoded, _ = open_frames(video)
            transform = frame_transform(config)
            inputs = torch.stack([transform(frame) for frame in itertools.islice(decoded, CHECK_FRAMES)])
            inputs = inputs.unsqueeze(1)
    top, left = (inputs.shape[-2] - height) // 2, (inputs.shape[-1] - width) // 2
    return {name: inputs[..., top : top + height, left : left + width].contiguous()}

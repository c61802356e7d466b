"""Export a Recognizer to ONNX or TorchScript, for whole clips or for streaming, and check it.

Two kinds of exported model:

* ``"clip"``: the offline model, ``clips (N, T, 3, H, W) -> logits (N, K)``, with a dynamic batch
  N and the fixed T (``num_segments``) and frame size the file records in its metadata.
* ``"stream"``: one step of :class:`~tsm.models.StreamingStep`, ``(frames, cache_0, ...,
  cache_{n-1}) -> (logits, new_cache_0, ...)``: feed each step's new caches to the next step, zeros
  at the start of a stream (the reference's online demo, for every uni-directional model).

ONNX goes through ``torch.onnx.export`` (the torch.export-based exporter); the temporal shift is
traced as Slice/Pad/Concat, so the graph has no constant that depends on the example input.
TorchScript uses ``torch.jit.trace``. After writing, :func:`verify_export` runs the file with
onnxruntime (CPU) or ``torch.jit.load`` and compares it with PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from tsm.data import (
    DataConfig,
    as_data_config,
    frame_transform,
    load_clip,
    open_frames,
    render_synthetic_clip,
    write_video,
)
from tsm.export.formats import FORMATS, format_for, write_options
from tsm.export.onnx import OnnxExporter
from tsm.models import Recognizer, StreamingStep

ExportKind = Literal["clip", "stream"]
TOLERANCE = 1e-4
_EXAMPLE_BATCH = 2  # > 1, so that the exporter keeps the batch dimension dynamic
CHECK_FRAMES = 8  # streaming check: steps on the first frames of a video


@dataclass
class ExportCheck:
    """How far the exported file's outputs are from PyTorch's, per input set."""

    path: Path
    format: str
    kind: str
    errors: dict[str, float] = field(default_factory=dict)  # input set -> max absolute difference
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return all(error <= self.tolerance for error in self.errors.values())

    def summary(self) -> str:
        """One line: PASS/FAIL and the largest difference on each input set."""
        verdict = "PASS" if self.passed else "FAIL"
        details = ", ".join(f"{name} inputs max |diff| {error:.2e}" for name, error in self.errors.items())
        runtime = FORMATS[self.format].runtime
        return f"{verdict}: {runtime} vs PyTorch, {details} (tolerance {self.tolerance:g})"


def export_metadata(
    model: Recognizer,
    kind: ExportKind,
    input_names: Sequence[str],
    output_names: Sequence[str],
    frame_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What an exported file records about itself (all values JSON strings)."""
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
    }
    return {key: json.dumps(value) for key, value in values.items()}


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata :func:`export_model` wrote into an ``.onnx`` or TorchScript file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model {str(path)!r} does not exist")
    raw = format_for(path).read_metadata(path)
    if "tsm_export" not in raw:
        raise ValueError(f"{path} was not written by tsm export (no tsm metadata)")
    return {key: json.loads(value) for key, value in raw.items()}


def _example_inputs(
    model: Recognizer, kind: ExportKind, frame_size: tuple[int, int], streaming: StreamingStep | None
) -> tuple[Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    if kind == "clip":
        return (torch.randn(_EXAMPLE_BATCH, model.num_segments, 3, *frame_size, generator=generator),)
    frames = torch.randn(_EXAMPLE_BATCH, 3, *frame_size, generator=generator)
    with torch.no_grad():
        _, *caches = streaming(frames)
    return (frames, *caches)


def _io_names(kind: ExportKind, num_caches: int) -> tuple[list[str], list[str]]:
    if kind == "clip":
        return ["clips"], ["logits"]
    caches = [f"cache_{index}" for index in range(num_caches)]
    return ["frames", *caches], ["logits", *[f"new_{name}" for name in caches]]


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
    onnx_exporter: OnnxExporter = "dynamo",
) -> ExportCheck | None:
    """Write ``model`` as ONNX or TorchScript (atomically), then check it against PyTorch.

    Args:
        model: the Recognizer, exported in eval mode on the CPU in float32 and left as it was (its
            device, dtype, weights and the train/eval mode of each module): one on another device
            or in another dtype is exported as a CPU float32 copy.
        path: output file; its suffix says the format (``.onnx``; ``.pt``/``.ts``/``.torchscript``
            for TorchScript); ``format``, when given, must agree with it.
        streaming: export one streaming step (uni-directional models only) instead of whole clips.
        frame_size: frame height and width the file is made for.
        class_names, data_config: recorded in the file's metadata for the runtime.
        check: run :func:`verify_export` on random inputs and ``check_inputs`` (named input sets:
            clips ``(N, T, 3, H, W)``, or for streaming a sequence of frames ``(S, B, 3, H, W)``).
        onnx_exporter: ``"dynamo"`` (``torch.export``-based, PyTorch's default) or
            ``"torchscript"`` (the older tracing exporter, deprecated by PyTorch but many times
            faster to run; opset 17). Both are checked the same way.

    Returns:
        The :class:`ExportCheck` (None when ``check`` is False).
    """
    path = Path(path)
    spec = format_for(path, format)
    if not isinstance(model, Recognizer):
        raise TypeError(f"export_model expects a tsm.Recognizer, got {type(model).__name__}")
    size = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
    kind: ExportKind = "stream" if streaming else "clip"
    with export_ready(model) as model:
        stepper = StreamingStep(model) if streaming else None
        network = stepper if streaming else model
        example = _example_inputs(model, kind, size, stepper)
        names = _io_names(kind, len(example) - 1)
        metadata = export_metadata(model, kind, *names, size, class_names, data_config)
        options = write_options(spec, {"exporter": onnx_exporter})
        spec.write(network, example, path, names, metadata, **options)
        if not check:
            return None
        return verify_export(path, model, streaming=streaming, inputs=check_inputs)


def _max_difference(expected: Sequence[Tensor], actual: Sequence[Tensor]) -> float:
    if len(expected) != len(actual):
        return float("inf")
    return max(float((e - a).abs().max()) for e, a in zip(expected, actual, strict=True))


@torch.no_grad()
def verify_export(
    path: str | Path,
    model: Recognizer,
    streaming: bool = False,
    inputs: dict[str, Tensor] | None = None,
    tolerance: float = TOLERANCE,
) -> ExportCheck:
    """Run an exported file and ``model`` on the same inputs and compare every output.

    Always checks random inputs (batch 3, not the export's example batch); ``inputs`` adds named
    real inputs: clips (N, T, 3, H, W), or for streaming frame sequences (S, B, 3, H, W) that run S
    steps, each step's caches fed to the next, comparing logits and caches at every step.
    """
    path = Path(path)
    metadata = read_export_metadata(path)
    height, width = metadata["frame_size"]
    spec = format_for(path)
    run = spec.runner(path)
    generator = torch.Generator().manual_seed(1)
    model = model.eval()
    check = ExportCheck(path, spec.name, "stream" if streaming else "clip", tolerance=tolerance)
    sets: dict[str, Tensor] = {}
    if streaming:
        sets["random"] = torch.randn(3, 3, 3, height, width, generator=generator)
        stepper = StreamingStep(model)
    else:
        sets["random"] = torch.randn(3, model.num_segments, 3, height, width, generator=generator)
    sets.update(inputs or {})
    for name, tensor in sets.items():
        tensor = tensor.float().cpu()
        if not streaming:
            check.errors[name] = _max_difference([model(tensor)], run([tensor]))
            continue
        zeros = [torch.zeros(shape) for shape in stepper.cache_shapes(tensor.shape[1:])]
        expected_caches, actual_caches, error = zeros, zeros, 0.0
        for frames in tensor:  # one step per frame, each step's caches fed to the next
            expected = stepper(frames, *expected_caches)
            actual = run([frames, *actual_caches])
            error = max(error, _max_difference(expected, actual))
            expected_caches, actual_caches = expected[1:], actual[1:]
        check.errors[name] = error
    return check


def decoded_check_inputs(
    data_config: DataConfig, size: int, streaming: bool, video: str | Path | None = None
) -> dict[str, Tensor]:
    """Real decoded inputs for :func:`verify_export`: the test views (V, T, 3, S, S) of ``video``,
    or for streaming its first frames (S, 1, 3, S, S). Without ``video``, a short H.264 clip of the
    synthetic task is encoded for it, so the check always sees decoded frames."""
    config = data_config.replace(input_size=size, full_res=False)
    with tempfile.TemporaryDirectory() as folder:
        name = "video"
        if video is None:
            side = max(size, data_config.resize or 0)
            side += side % 2  # yuv420p needs even sizes
            rng = np.random.default_rng(0)
            frames = render_synthetic_clip("move_right", side, 2 * config.num_segments, rng)
            video, name = write_video(Path(folder) / "check.mp4", frames), "synthetic video"
        if not streaming:
            return {name: load_clip(video, config)}
        decoded, _ = open_frames(video)
        transform = frame_transform(config)
        steps = [transform(frame) for frame in itertools.islice(decoded, CHECK_FRAMES)]
        return {name: torch.stack(steps).unsqueeze(1)}

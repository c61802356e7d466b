"""INT8 files calibrated on real video, then checked; the format of the output decides how.

Every format with an int8 writer (:attr:`~tsm.export.ExportFormat.quantize`) goes the same way:
decoded clips through the checkpoint's test pipeline (:mod:`tsm.export.calibration`; a streaming
step frame by frame with real caches) calibrate the writer's quantization (ONNX: ONNX Runtime's
static QDQ quantization, :mod:`tsm.export.onnx_int8`; ExecuTorch: PT2E with XNNPACK's quantizer,
:mod:`tsm.export.executorch_int8`). The int8 file is then run next to the fp32 PyTorch model on
clips calibration did not use; when its top-1 drops by more than ``max_drop`` points, nothing is
written. All work happens in a temporary folder beside the output; the file is moved into place
only when the check passes, with the check's report in its metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsm.data import DataConfig, FailedSample, VideoDataset, as_data_config
from tsm.export.calibration import ClipReader, calibration_inputs, open_source, shuffled, single_view_config
from tsm.export.core import export_inputs, export_ready
from tsm.export.formats import FORMATS, ExportFormat, format_for, write_options
from tsm.export.onnx import DEFAULT_ONNX_EXPORTER, OnnxExporter
from tsm.export.quantize_api import Int8Job
from tsm.models import Recognizer, StreamingStep

# When SOURCE has no more clips than calibration asks for (and no --check is given), this share of
# them (at least one) is held out for the check, so that a small folder works on the first try.
HELD_OUT_SHARE = 0.25


class Int8Refused(ValueError):
    """The int8 model lost more top-1 than allowed (or could not be checked): nothing was written."""


@dataclass(frozen=True)
class Int8Options:
    """How an int8 file is calibrated and checked (the arguments of :func:`export_int8` beyond the
    model and its export): for writers that take them as one value, such as the web export."""

    calibration: str | Path
    calibration_clips: int = 64
    check: str | Path | None = None
    check_clips: int | None = None
    max_drop: float | None = 1.0


@dataclass(frozen=True)
class Int8Report:
    """How the int8 file compares with the fp32 PyTorch model on clips calibration did not use."""

    path: Path
    calibration_clips: int
    calibration_inputs: int  # inputs the calibrator saw: clips, or frames for a streaming step
    check_clips: int
    agreement: float  # % of check clips whose top-1 class is the fp32 model's
    fp32_top1: float  # % against the labels
    int8_top1: float
    max_logit_difference: float  # largest |int8 - fp32| logit (every step of a streaming step)
    skipped: tuple[str, ...] = ()  # "path: reason" of each video that could not be read
    held_out: int = 0  # clips of a small source kept back from calibration for the check

    @property
    def top1_change(self) -> float:
        """int8 top-1 minus fp32 top-1, in points."""
        return self.int8_top1 - self.fp32_top1

    def summary(self) -> str:
        """One line: the check's figures."""
        skipped = f", {len(self.skipped)} unreadable videos skipped" if self.skipped else ""
        if self.held_out:
            skipped += f"; the source was small, so {self.held_out} of its clips were held out for the check"
        return (
            f"int8 vs fp32 on {self.check_clips} clips not used for calibration: top-1 {self.int8_top1:.1f}% "
            f"(fp32 {self.fp32_top1:.1f}%, change {self.top1_change:+.1f} points), agreement "
            f"{self.agreement:.1f}%, largest |logit difference| {self.max_logit_difference:.3g}; "
            f"calibrated on {self.calibration_clips} clips ({self.calibration_inputs} inputs){skipped}"
        )

    @property
    def passed(self) -> bool:
        """Always True: a report exists only for a file that passed its check (a drop above
        ``max_drop`` raises :class:`Int8Refused` and writes nothing)."""
        return True

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["path"] = str(self.path)
        values["skipped"] = list(self.skipped)
        return values


def _describe(failures: Sequence[FailedSample]) -> tuple[str, ...]:
    return tuple(str(failure) for failure in failures)


@torch.inference_mode()
def _compare(model: Recognizer, run, clips: ClipReader, streaming: bool) -> dict[str, Any]:
    """Top-1 of the fp32 model and the int8 file (``run``: its format's runner) on every clip, and
    the largest logit difference."""
    stepper = StreamingStep(model) if streaming else None
    fp32_top, int8_top, labels, largest = [], [], [], 0.0
    for clip, label in clips:
        if stepper is None:
            expected, actual = model(clip.unsqueeze(0)), run([clip.unsqueeze(0)])[0]
        else:
            expected, actual = _step_logits(stepper, run, clip)
        largest = max(largest, float((expected - actual).abs().max()))
        fp32_top.append(int(expected.mean(0).argmax()))
        int8_top.append(int(actual.mean(0).argmax()))
        labels.append(label)
    if not labels:
        raise Int8Refused(
            "no readable clip to check the int8 model on: give --check LIST, or fewer calibration clips"
        )
    count = len(labels)
    return {
        "check_clips": count,
        "agreement": 100.0 * sum(a == b for a, b in zip(fp32_top, int8_top, strict=True)) / count,
        "fp32_top1": 100.0 * sum(p == y for p, y in zip(fp32_top, labels, strict=True)) / count,
        "int8_top1": 100.0 * sum(p == y for p, y in zip(int8_top, labels, strict=True)) / count,
        "max_logit_difference": largest,
    }


def _step_logits(stepper: StreamingStep, run, clip: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame logits (T, K) of the fp32 step and of the int8 file, each on its own caches; their
    mean over the frames is the offline uni-directional model's clip logits."""
    expected_caches, actual_caches, expected, actual = [], [], [], []  # no caches: a new stream
    for frame in clip:
        logits, *new_caches = stepper(frame.unsqueeze(0), *expected_caches)
        actual_caches = actual_caches or [torch.zeros_like(cache) for cache in new_caches]
        int8_logits, *actual_caches = run([frame.unsqueeze(0), *actual_caches])
        expected_caches = new_caches
        expected.append(logits[0])
        actual.append(int8_logits[0])
    return torch.stack(expected), torch.stack(actual)


@dataclass(frozen=True)
class _Plan:
    """What one int8 export reads and writes."""

    path: Path
    source: VideoDataset  # calibration videos
    check_source: VideoDataset | None  # None: the source's videos calibration did not use
    config: DataConfig  # the single-view test pipeline calibration and the check decode with
    recorded_config: DataConfig  # the test pipeline the file records
    calibration_clips: int
    held_out: int  # clips of a small source kept back for the check
    check_clips: int | None
    streaming: bool
    class_names: Sequence[str] | None
    spec: ExportFormat
    options: dict[str, Any]  # the format's write options


def export_int8(
    model: Recognizer,
    path: str | Path,
    calibration: str | Path,
    streaming: bool = False,
    frame_size: int = 224,
    class_names: Sequence[str] | None = None,
    data_config: DataConfig | Mapping[str, Any] | None = None,
    calibration_clips: int = 64,
    check: str | Path | None = None,
    check_clips: int | None = None,
    max_drop: float | None = 1.0,
    onnx_exporter: OnnxExporter = DEFAULT_ONNX_EXPORTER,
) -> Int8Report:
    """Write ``model`` as an int8 file calibrated on real clips of ``calibration``, checked.

    Args:
        path: the file; its suffix says the format, which says how it is quantized: ``.onnx``
            (ONNX Runtime's static QDQ quantization) or ``.pte`` (ExecuTorch: PT2E with XNNPACK's
            quantizer).
        calibration: list file or class-folder root of videos; ``calibration_clips`` of them are
            drawn in a fixed shuffled order and decoded through ``data_config``'s test pipeline
            (one centre view at ``frame_size``). Unreadable videos are skipped and counted.
        check: list or folder to check on (default: the videos of ``calibration`` not used),
            at most ``check_clips`` of them (default all). Without it, a source with no more
            clips than ``calibration_clips`` keeps :data:`HELD_OUT_SHARE` of them (at least one)
            for the check; a source of one clip leaves nothing to check on and is refused.
        max_drop: refuse (:class:`Int8Refused`, no file written) when int8 top-1 is more than this
            many points below fp32 top-1 on the check clips; None never refuses.

    Returns:
        The :class:`Int8Report`; the file records it, its classes, test pipeline and ``"int8"``
        in its metadata (:func:`tsm.read_export_metadata`).
    """
    path = Path(path)
    spec = format_for(path)
    if spec.quantize is None:
        int8_suffixes = " or ".join(row.suffixes[0] for row in FORMATS.values() if row.quantize)
        raise ValueError(
            f"{path.name}: tsm writes int8 {int8_suffixes} files, not {spec.name}: give such a path"
        )
    if calibration_clips < 1:
        raise ValueError(f"calibration_clips must be at least 1, got {calibration_clips}")
    if max_drop is not None and max_drop < 0:
        raise ValueError(f"max_drop must be >= 0 points, got {max_drop}")
    config = single_view_config(data_config, model.num_segments, frame_size)
    recorded = as_data_config(data_config, num_segments=model.num_segments)
    source = open_source(calibration, config)
    check_source = open_source(check, config) if check is not None else None
    held_out = _held_out(len(source), calibration_clips) if check_source is None else 0
    plan = _Plan(
        path=path,
        source=source,
        check_source=check_source,
        config=config,
        recorded_config=recorded.replace(input_size=frame_size, full_res=False),
        calibration_clips=calibration_clips if not held_out else len(source) - held_out,
        held_out=held_out,
        check_clips=check_clips,
        streaming=streaming,
        class_names=class_names,
        spec=spec,
        options=write_options(spec, {"exporter": onnx_exporter}),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        export_ready(model) as model,
        tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder,
    ):
        written, report = _quantize_and_check(model, Path(folder), plan)
        _refuse_if_worse(report, max_drop)
        os.replace(written, path)
    return report


def _held_out(available: int, asked: int) -> int:
    """How many clips of a source with ``available`` clips to keep back for the check when
    calibration asks for ``asked`` (none when enough are left over anyway)."""
    if available > asked:
        return 0
    if available < 2:
        raise Int8Refused(
            f"the calibration source has {available} clip{'s' * (available != 1)}: nothing is left to "
            "check the int8 model on; give more videos, or a --check LIST"
        )
    return max(1, round(available * HELD_OUT_SHARE))


def _refuse_if_worse(report: Int8Report, max_drop: float | None) -> None:
    drop = -report.top1_change
    if max_drop is not None and drop > max_drop:
        raise Int8Refused(
            f"int8 top-1 is {drop:.1f} points below fp32 ({report.int8_top1:.1f}% vs {report.fp32_top1:.1f}% "
            f"on {report.check_clips} check clips), more than the allowed {max_drop:g}: nothing written; "
            "calibrate on more clips, or allow a larger drop"
        )


def _calibration(model: Recognizer, plan: _Plan) -> tuple[ClipReader, list[tuple[Tensor, ...]]]:
    """The calibration clips drawn from the source, and the inputs made of them."""
    clips = ClipReader(plan.source, shuffled(len(plan.source)), plan.calibration_clips)
    inputs = calibration_inputs(model, clips, plan.streaming)
    if not inputs:
        reasons = "; ".join(_describe(clips.skipped[:3])) or "it lists no videos"
        raise ValueError(f"no readable video to calibrate on ({reasons})")
    return clips, inputs


def _check_clips(plan: _Plan, calibration: ClipReader) -> ClipReader:
    """The clips the check runs on: the check source's, or the source's clips calibration did not use."""
    if plan.check_source is not None:
        return ClipReader(plan.check_source, range(len(plan.check_source)), plan.check_clips)
    used = set(calibration.used) | {failure.index for failure in calibration.skipped}
    rest = [index for index in range(len(plan.source)) if index not in used]
    return ClipReader(plan.source, rest, plan.check_clips)


def _quantize_and_check(model: Recognizer, folder: Path, plan: _Plan) -> tuple[Path, Int8Report]:
    """Quantize on the calibration clips, compare on the check clips; the file written in
    ``folder`` records the report."""
    kind = "stream" if plan.streaming else "clip"
    size = (plan.config.input_size, plan.config.input_size)
    inputs = export_inputs(model, kind, size, plan.class_names, plan.recorded_config)
    calibration, feeds = _calibration(model, plan)
    job = Int8Job(inputs.network, inputs.example, inputs.names, inputs.metadata, feeds, folder, plan.options)
    quantized = plan.spec.quantize(job)
    written = folder / f"int8{plan.spec.suffixes[0]}"
    quantized.write(written, inputs.metadata)
    checked = _check_clips(plan, calibration)
    report = Int8Report(
        path=plan.path,
        calibration_clips=len(calibration.used),
        calibration_inputs=len(feeds),
        skipped=_describe(calibration.skipped + checked.skipped),
        held_out=plan.held_out,
        **_compare(model, plan.spec.runner(written), checked, plan.streaming),
    )
    details = {**quantized.details, **report.to_dict()}
    del details["path"]
    quantized.write(written, {**inputs.metadata, "int8": json.dumps(details)})
    return written, report

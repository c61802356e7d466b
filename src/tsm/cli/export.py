"""``tsm export CKPT --out FILE``: ONNX, ExecuTorch or TorchScript, checked against PyTorch;
``--int8 --calibration SOURCE``: an int8 ONNX or ExecuTorch file calibrated on real video and
checked on others; ``--format web --out DIR``: a static folder that runs the online model in the
browser."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from torch import Tensor

from tsm.apps.static_server import serve_folder
from tsm.checkpoint import CheckpointInfo, load_checkpoint
from tsm.data import DataConfig
from tsm.export import (
    CHECK_FACTOR,
    DEFAULT_ONNX_EXPORTER,
    EXPORT_FORMATS,
    ONNX_EXPORTERS,
    Int8Options,
    decoded_check_inputs,
    export_int8,
    export_model,
)
from tsm.export.web import export_web
from tsm.inference import class_names_of, prediction_data_config
from tsm.models import Recognizer

WEB_FORMAT = "web"


def calibration_options(args: argparse.Namespace) -> Int8Options | None:
    """The int8 calibration and check options given (:func:`add_calibration_options`), or None
    without ``--calibration``."""
    if not args.calibration:
        return None
    return Int8Options(args.calibration, args.calibration_clips, args.check, args.check_clips, args.max_drop)


def _int8_options(args: argparse.Namespace) -> Int8Options | None:
    """The int8 options given, or None; ``--int8`` and ``--calibration`` go together."""
    if not (args.int8 or args.calibration):
        return None
    if not (args.int8 and args.calibration):
        raise ValueError("--int8 needs --calibration SOURCE (a list file or class folders of real videos)")
    return calibration_options(args)


def run(args: argparse.Namespace) -> int:
    web = args.format == WEB_FORMAT
    if not web and (args.ort_web or args.serve):
        raise ValueError("--ort-web and --serve go with --format web")
    int8 = _int8_options(args)
    model, info = load_checkpoint(args.checkpoint)
    data_config = prediction_data_config(info, model.num_segments)
    size = args.size or data_config.test_crop_size
    if int8 is not None and not web:
        return run_int8(args, model, info.class_names, data_config, size, int8)
    check_inputs = None
    if not args.no_check and int8 is None:
        check_inputs = decoded_check_inputs(data_config, size, args.streaming or web, args.video)
    if web:
        return run_web(args, model, info, data_config, size, check_inputs, int8)
    check = export_model(
        model,
        args.out,
        format=args.format,
        streaming=args.streaming,
        frame_size=size,
        class_names=info.class_names,
        data_config=data_config,
        check=check_inputs is not None,
        check_inputs=check_inputs,
        onnx_exporter=args.onnx_exporter,
    )
    kind = "streaming step (frames + caches -> logits + new caches)" if args.streaming else "clip model"
    print(f"wrote {args.out}: {kind}, T={model.num_segments}, frames {size}x{size}, dynamic batch")
    if check is None:
        return 0
    print(f"check: {check.summary()}")
    return 0 if check.passed else 1


def run_int8(
    args: argparse.Namespace,
    model: Recognizer,
    class_names: list[str] | None,
    data_config: DataConfig,
    size: int,
    int8: Int8Options,
) -> int:
    """``--int8``: calibrate on real clips, check on others, refuse (no file) above ``--max-drop``."""
    report = export_int8(
        model,
        args.out,
        streaming=args.streaming,
        frame_size=size,
        class_names=class_names,
        data_config=data_config,
        onnx_exporter=args.onnx_exporter,
        **dataclasses.asdict(int8),
    )
    kind = "streaming step" if args.streaming else "clip model"
    print(f"wrote {args.out}: int8 {kind}, T={model.num_segments}, frames {size}x{size}, dynamic batch")
    print(f"check: {report.summary()}")
    for failure in report.skipped:
        print(f"  skipped {failure}")
    return 0


def run_web(
    args: argparse.Namespace,
    model: Recognizer,
    info: CheckpointInfo,
    data_config: DataConfig,
    size: int,
    check_inputs: dict[str, Tensor] | None,
    int8: Int8Options | None,
) -> int:
    """``--format web``: the folder (streaming step fp32 or int8, page, ONNX Runtime Web), then --serve."""
    result = export_web(
        model,
        args.out,
        frame_size=size,
        class_names=class_names_of(info, model.num_classes),
        data_config=data_config,
        name=Path(args.checkpoint).stem,
        ort_web=args.ort_web,
        check=check_inputs is not None,
        check_inputs=check_inputs,
        onnx_exporter=args.onnx_exporter,
        int8=int8,
    )
    precision = result.pipeline["precision"]
    print(f"wrote {args.out}: web folder, streaming step {precision}, frames {size}x{size}")
    if result.check is not None:
        print(f"check: {result.check.summary()}")
        if not result.check.passed:
            return 1
    if args.serve:
        serve_folder(args.out, args.port)
    return 0


def _add_int8_options(parser: argparse.ArgumentParser) -> None:
    int8 = add_calibration_options(parser)
    int8.add_argument(
        "--int8",
        action="store_true",
        help="write an int8 file: .onnx (ONNX Runtime's QDQ, per-channel weights) or .pte (PT2E with "
        "XNNPACK's quantizer, per-channel weights)",
    )


def add_calibration_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The options of an int8 export's calibration and check (``--calibration SOURCE``...)."""
    int8 = parser.add_argument_group("int8 (static quantization, calibrated on real video)")
    int8.add_argument(
        "--calibration",
        metavar="SOURCE",
        help="videos to calibrate on: a list file or a class-folder root (as --data.train takes)",
    )
    int8.add_argument(
        "--calibration-clips",
        type=int,
        default=64,
        help="clips drawn from SOURCE to calibrate on (default 64)",
    )
    int8.add_argument(
        "--check",
        metavar="LIST",
        help="videos to check on (default: those of SOURCE calibration did not use)",
    )
    int8.add_argument("--check-clips", type=int, help="check on at most this many clips (default: all)")
    int8.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="refuse (write nothing) when int8 top-1 is more than this many points below fp32 (default 1.0)",
    )
    return int8


def _add_web_options(parser: argparse.ArgumentParser) -> None:
    web = parser.add_argument_group("web (--format web)")
    web.add_argument(
        "--ort-web",
        metavar="DIR",
        help="a copy of the pinned onnxruntime-web package (or its dist/ folder) instead of npm",
    )
    web.add_argument("--serve", action="store_true", help="then serve the folder with the COOP/COEP headers")
    web.add_argument("--port", type=int, default=8000, help="the port of --serve (default 8000)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX or ExecuTorch (fp32 or int8) or TorchScript, whole clips or a "
        "streaming step, or for the web",
        description=(
            "Write the model as ONNX, ExecuTorch (XNNPACK, for phones and boards) or TorchScript with a "
            "dynamic batch size and the fixed frame count and frame size recorded in the file, then run it "
            "(onnxruntime on the CPU, executorch.runtime or torch.jit.load) and compare it with a float64 "
            "PyTorch run on random inputs and decoded video "
            f"(it must be within {CHECK_FACTOR:g}x PyTorch fp32's own error; docs/export.md). "
            "--streaming exports one step of an online model: inputs are the frame and every cache, "
            "outputs the logits and the new caches. --int8 quantizes an ONNX or ExecuTorch file on real "
            "videos and checks it on others. --format web writes a static folder (page, streaming step, ONNX "
            "Runtime Web, tsm.js) that runs the online model in the browser."
        ),
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint (tsm, reference or MMAction2)")
    parser.add_argument(
        "--out",
        required=True,
        help="file to write: .onnx (ONNX), .pte (ExecuTorch), .pt / .ts / .torchscript (TorchScript); "
        "a folder for --format web",
    )
    parser.add_argument(
        "--format",
        choices=(*EXPORT_FORMATS, WEB_FORMAT),
        help="default: from the --out suffix (must agree with it); web: a static folder running the "
        "streaming step in the browser (ONNX Runtime Web)",
    )
    parser.add_argument("--streaming", action="store_true", help="export the streaming step (online models)")
    parser.add_argument("--size", type=int, help="frame size (default: the checkpoint's test crop)")
    parser.add_argument(
        "--video", help="check on this video's decoded frames (default: a synthetic H.264 clip made for it)"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the check after writing")
    parser.add_argument(
        "--onnx-exporter",
        choices=ONNX_EXPORTERS,
        default=DEFAULT_ONNX_EXPORTER,
        help=f"the ONNX exporter (default {DEFAULT_ONNX_EXPORTER}): torchscript (PyTorch's older tracing "
        "exporter, deprecated by PyTorch; exported the MobileNetV2 step 15x faster) or dynamo "
        "(torch.export-based, needs onnxscript); their files ran equally fast (docs/benchmarks.md)",
    )
    _add_int8_options(parser)
    _add_web_options(parser)
    parser.set_defaults(handler=run)

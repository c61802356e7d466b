"""``tsm export CKPT --format onnx|torchscript --out FILE [--int8 --calibration SOURCE]``: export and check
against PyTorch; int8 ONNX files calibrated on real video and checked on others."""

from __future__ import annotations

import argparse

from tsm.checkpoint import load_checkpoint
from tsm.export import EXPORT_FORMATS, ONNX_EXPORTERS, decoded_check_inputs, export_int8, export_model
from tsm.inference import prediction_data_config


def run(args: argparse.Namespace) -> int:
    model, info = load_checkpoint(args.checkpoint)
    data_config = prediction_data_config(info, model.num_segments)
    size = args.size or data_config.test_crop_size
    if args.int8 or args.calibration:
        return run_int8(args, model, info.class_names, data_config, size)
    check_inputs = None
    if not args.no_check:
        check_inputs = decoded_check_inputs(data_config, size, args.streaming, args.video)
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


def run_int8(args: argparse.Namespace, model, class_names, data_config, size: int) -> int:
    """``--int8``: calibrate on real clips, check on others, refuse (no file) above ``--max-drop``."""
    if not (args.int8 and args.calibration):
        raise ValueError("--int8 needs --calibration SOURCE (a list file or class folders of real videos)")
    report = export_int8(
        model,
        args.out,
        args.calibration,
        streaming=args.streaming,
        frame_size=size,
        class_names=class_names,
        data_config=data_config,
        calibration_clips=args.calibration_clips,
        check=args.check,
        check_clips=args.check_clips,
        max_drop=args.max_drop,
        onnx_exporter=args.onnx_exporter,
    )
    kind = "streaming step" if args.streaming else "clip model"
    print(f"wrote {args.out}: int8 {kind}, T={model.num_segments}, frames {size}x{size}, dynamic batch")
    print(f"check: {report.summary()}")
    for failure in report.skipped:
        print(f"  skipped {failure}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX or TorchScript (whole clips or a streaming step)",
        description=(
            "Write the model as ONNX or TorchScript with a dynamic batch size and the fixed frame "
            "count and frame size recorded in the file, then run it (onnxruntime on the CPU, or "
            "torch.jit.load) and compare with PyTorch on random inputs and, with --video, real ones. "
            "--streaming exports one step of an online model: inputs are the frame and every cache, "
            "outputs the logits and the new caches."
        ),
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint (tsm, reference or MMAction2)")
    parser.add_argument(
        "--out", required=True, help="file to write: .onnx (ONNX), .pt / .ts / .torchscript (TorchScript)"
    )
    parser.add_argument(
        "--format", choices=EXPORT_FORMATS, help="default: from the --out suffix (must agree with it)"
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
        default="dynamo",
        help="dynamo (torch.export, PyTorch's default) or torchscript (older, much faster to run)",
    )
    int8 = parser.add_argument_group("int8 (ONNX Runtime static quantization, calibrated on real video)")
    int8.add_argument(
        "--int8", action="store_true", help="write an int8 ONNX file (QDQ, per-channel weights)"
    )
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
    parser.set_defaults(handler=run)

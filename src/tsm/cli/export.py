"""``tsm export CKPT --format onnx|torchscript --out FILE``: export and check against PyTorch."""

from __future__ import annotations

import argparse

from tsm.checkpoint import load_checkpoint
from tsm.export import EXPORT_FORMATS, ONNX_EXPORTERS, decoded_check_inputs, export_model
from tsm.inference import prediction_data_config


def run(args: argparse.Namespace) -> int:
    model, info = load_checkpoint(args.checkpoint)
    data_config = prediction_data_config(info, model.num_segments)
    size = args.size or data_config.test_crop_size
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
    parser.set_defaults(handler=run)

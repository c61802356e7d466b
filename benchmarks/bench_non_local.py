"""What the non-local blocks cost a TSM ResNet-50: inference latency, training step, bytes saved for backward.

TSM ResNet-50 without non-local blocks and with the five blocks of each mode (the reference's
embedded gaussian, MMAction2's gaussian and dot product) share the weights they have in common,
one process, interleaved rounds (medians); only ratios against TSM without them are claimed.
``--mobileone`` adds MobileOne-S4 TSM, multi-branch and fused, to the inference latency, and
its bytes saved for backward against MobileOne-S4 TSN.

    python benchmarks/bench_non_local.py [--rounds 5] [--frames 8] [--size 224]
        [--device cpu|cuda] [--skip-training] [--mobileone]
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

import tsm
from bench_core import interleaved_medians, machine_name, report, saved_bytes

BASE = "TSM"


def non_local_variants(frames: int) -> dict[str, tsm.Recognizer]:
    """TSM ResNet-50 and its non-local variants, with the backbone and head weights of the first."""
    plain = tsm.create_model("tsm_resnet50", num_segments=frames)
    models = {BASE: plain}
    for mode in ("embedded_gaussian", "gaussian", "dot_product"):
        model = tsm.Recognizer(**{**plain.config, "non_local": mode})
        weights = model.state_dict()
        for key in weights:  # a wrapped block reads layerN.I.block.*; the non-local blocks keep theirs
            if ".nl." not in key:
                weights[key] = plain.state_dict()[key.replace(".block.", ".", 1)]
        model.load_state_dict(weights)
        models[f"NL {mode}"] = model
    return models


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-training", action="store_true", help="no training step")
    parser.add_argument("--mobileone", action="store_true", help="add MobileOne-S4 TSM to the latency")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = non_local_variants(args.frames)
    for model in models.values():
        model.to(device)
    clips = torch.randn(1, args.frames, 3, args.size, args.size, device=device)
    print(
        f"resnet50, 1 clip x {args.frames} frames x {args.size}^2, {machine_name(device)}, "
        f"torch {torch.__version__}, median of {args.rounds} interleaved rounds"
    )
    results: dict[str, dict[str, float]] = {}

    candidates = dict(models)
    if args.mobileone:
        mobileone = tsm.create_model("tsm_mobileone_s4", num_segments=args.frames).to(device)
        fused = tsm.Recognizer(**mobileone.config).to(device)
        fused.load_state_dict(mobileone.state_dict())
        candidates |= {"MobileOne-S4": mobileone, "MobileOne-S4 fused": fused.eval().reparameterize()}
    for model in candidates.values():
        model.eval()
    with torch.inference_mode():
        steps = {name: (lambda m=model: m(clips)) for name, model in candidates.items()}
        report(
            "inference latency, fp32 NCHW",
            interleaved_medians(steps, args.rounds, device),
            results,
            base=BASE,
        )

    for model in models.values():
        model.train()
    memory = {name: float(saved_bytes(model, clips)) for name, model in models.items()}
    report("bytes saved for backward", memory, results, lambda size: f"{size / 2**20:.1f} MiB", base=BASE)

    def training_step(model: nn.Module, inputs: Tensor) -> None:
        model.zero_grad(set_to_none=True)
        model(inputs).sum().backward()

    if not args.skip_training:
        steps = {name: (lambda m=model: training_step(m, clips)) for name, model in models.items()}
        medians = interleaved_medians(steps, args.rounds, device)
        report("training step (forward + backward), fp32 NCHW", medians, results, base=BASE)
    if args.mobileone:  # its shifts wrap whole blocks, whose branches keep the shifted input
        tsn = tsm.create_model("tsn_mobileone_s4", num_segments=args.frames).to(device).train()
        memory = {"TSN": float(saved_bytes(tsn, clips)), "TSM": float(saved_bytes(mobileone.train(), clips))}
        describe = lambda size: f"{size / 2**20:.1f} MiB"  # noqa: E731
        report("MobileOne-S4 bytes saved for backward", memory, results, describe)


if __name__ == "__main__":
    main()

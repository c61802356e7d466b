"""Loading a checkpoint: tsm.load_checkpoint (meta-device build) vs build-then-load.

"build + load_state_dict" is what a loader without the meta device does: build the Recognizer
(random init of every weight), then copy the checkpoint in. ``tsm.load_checkpoint`` builds on the
meta device and takes the checkpoint's tensors as the model's own. Both read the same files;
timed interleaved, medians of ``--rounds`` rounds, ratios against build + load_state_dict.

    python benchmarks/bench_checkpoints.py [--rounds 7] [--backbone resnet50]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

import tsm
from bench_core import interleaved_medians, machine_name  # same folder: python benchmarks/...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backbone", default="resnet50")
    args = parser.parse_args()
    device = torch.device("cpu")
    model = tsm.Recognizer(400, num_segments=8, backbone=args.backbone)
    with tempfile.TemporaryDirectory() as folder:
        name = f"TSM_kinetics_RGB_{args.backbone.replace('_', '')}_shift8_blockres_avg_segment8_e50.pth"
        reference = Path(folder) / name
        torch.save({"epoch": 50, "state_dict": nn.DataParallel(model).state_dict()}, reference)
        native = tsm.save_checkpoint(Path(folder) / "model.safetensors", model)

        def build_then_load() -> None:
            state = torch.load(reference, map_location="cpu", weights_only=True)["state_dict"]
            fresh = tsm.Recognizer(model.config)
            fresh.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})

        steps = {
            "build + load_state_dict (reference .pth)": build_then_load,
            "tsm.load_checkpoint (reference .pth)": lambda: tsm.load_checkpoint(reference),
            "tsm.load_checkpoint (tsm .safetensors)": lambda: tsm.load_checkpoint(native),
        }
        medians = interleaved_medians(steps, args.rounds, device)
    print(f"{args.backbone}, 400 classes, 8 segments; {machine_name(device)}; median of {args.rounds} rounds")
    baseline = medians["build + load_state_dict (reference .pth)"]
    for label, seconds in medians.items():
        print(f"  {label:42s} {seconds * 1e3:8.1f} ms   speed-up x{baseline / seconds:.2f}")


if __name__ == "__main__":
    main()

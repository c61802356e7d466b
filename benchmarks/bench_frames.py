"""A live frame's fixed costs on the CPU: decoding a JPEG, and the test pipeline that makes it the
model's input.

1. JPEG decoders on frames as a camera page sends them (256x256, 341x256: the pipeline's resize
   size) and larger (640x480, 1280x720), quality 85: Pillow (what tsm serve used), simplejpeg
   (what it uses), torchvision's decode_jpeg, and decoding at a reduced size (libjpeg's DCT
   scaling: Pillow's ``draft``, simplejpeg's ``min_height``/``min_width``), with whether each
   gives Pillow's pixels (and, at a reduced size, how far the model input moves);
2. the test pipeline of one frame: ``EvalPipeline`` on one frame (resize, crop, stack, convert,
   normalise: what ``frame_transform`` ran before) against ``FrameTransform`` (one pass into the
   model input), which must agree bit for bit.

Timed interleaved, median of ``--rounds``, one thread (``--clock cpu`` times the process's CPU
time, for a machine others share).

    python benchmarks/bench_frames.py [--rounds 41] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import io
import warnings

import numpy as np
import simplejpeg
import torch
from PIL import Image
from torchvision.io import decode_jpeg

from bench_core import CLOCKS, interleaved_medians, machine_name
from tsm.data import DataConfig, EvalPipeline, frame_transform, render_synthetic_clip

SIZES = ((256, 256), (341, 256), (640, 480), (1280, 720))
CONFIG = DataConfig(num_segments=1, resize=256, input_size=224)


def camera_jpeg(width: int, height: int) -> bytes:
    """A frame of the synthetic task with sensor-like noise, as a quality-85 JPEG."""
    rng = np.random.default_rng(width)
    frame = render_synthetic_clip("grow", max(width, height), 4, rng)[2][:height, :width]
    noisy = np.clip(frame.astype(np.int16) + rng.integers(0, 30, frame.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def resized_size(width: int, height: int) -> tuple[int, int]:
    """The frame's size after the pipeline's resize (short side 256, PyTorch's rounding)."""
    short, long = sorted((width, height))
    side = int(CONFIG.resize * long / short)
    return (side, CONFIG.resize) if width >= height else (CONFIG.resize, side)


def decoders(width: int, height: int) -> dict:
    """name -> decode(JPEG bytes) -> uint8 (3, H, W)."""
    need_w, need_h = resized_size(width, height)

    def pillow(data: bytes, draft: bool = False) -> torch.Tensor:
        image = Image.open(io.BytesIO(data))
        if draft:
            image.draft("RGB", (need_w, need_h))
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)

    def simple(data: bytes, reduced: bool = False) -> torch.Tensor:
        sizes = {"min_height": need_h, "min_width": need_w} if reduced else {}
        return torch.from_numpy(simplejpeg.decode_jpeg(data, colorspace="RGB", **sizes)).permute(2, 0, 1)

    def torchvision(data: bytes) -> torch.Tensor:
        return decode_jpeg(torch.frombuffer(data, dtype=torch.uint8))

    return {
        "Pillow": pillow,
        "Pillow draft (DCT scaling)": lambda data: pillow(data, draft=True),
        "simplejpeg": simple,
        "simplejpeg, reduced size (DCT scaling)": lambda data: simple(data, reduced=True),
        "torchvision decode_jpeg": torchvision,
    }


def decode_figures(args: argparse.Namespace) -> None:
    transform = frame_transform(CONFIG)
    for width, height in SIZES:
        data = camera_jpeg(width, height)
        candidates = decoders(width, height)
        reference = candidates["Pillow"](data)
        expected = transform(reference)
        steps = {name: (lambda f=decode, d=data: f(d)) for name, decode in candidates.items()}
        medians = interleaved_medians(steps, args.rounds, torch.device("cpu"), clock=args.clock)
        print(f"JPEG {width}x{height} ({len(data)} bytes), ms and ratio to Pillow:")
        for name, decode in candidates.items():
            decoded = decode(data)
            same = decoded.shape == reference.shape and torch.equal(decoded, reference)
            moved = float((transform(decoded) - expected).abs().max())
            exact = "Pillow's pixels" if same else f"other pixels: model input moves up to {moved:.3f}"
            ratio = medians[name] / medians["Pillow"]
            print(f"  {name:<40} {medians[name] * 1e3:6.2f} ms  {ratio:.2f}  ({exact})")


def pipeline_figures(args: argparse.Namespace) -> None:
    pipeline, transform = EvalPipeline(CONFIG), frame_transform(CONFIG)
    for width, height in SIZES:
        frame = decoders(width, height)["Pillow"](camera_jpeg(width, height))  # (3, H, W), HWC memory
        before = pipeline(frame[None], -1)[0][0, 0]
        assert torch.equal(transform(frame), before), "FrameTransform must be EvalPipeline bit for bit"
        steps = {
            "EvalPipeline (before)": lambda f=frame: pipeline(f[None], -1),
            "FrameTransform (one pass)": lambda f=frame: transform(f),
        }
        medians = interleaved_medians(steps, args.rounds, torch.device("cpu"), clock=args.clock)
        cells = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in medians.items())
        ratio = medians["FrameTransform (one pass)"] / medians["EvalPipeline (before)"]
        print(f"test pipeline of a {width}x{height} frame: {cells} (ratio {ratio:.2f}, bit for bit equal)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # torchvision's deprecation note, the non-writable buffer note
    print(f"{machine_name(torch.device('cpu'))}, torch {torch.__version__}, median of {args.rounds} rounds")
    decode_figures(args)
    pipeline_figures(args)


if __name__ == "__main__":
    main()

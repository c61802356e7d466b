"""TSM vs TSN vs a re-creation of the reference shift: latency, training step, saved activations.

All three networks share one process and are timed interleaved (round-robin), the median of
``--rounds`` rounds is reported, and only ratios against TSN are claimed. The reference
algorithm is re-created from the reference's ``ops/temporal_shift.py`` (``TemporalShift.shift``):
``zeros_like`` plus three slice
copies, the shifted copy handed to the conv (so autograd stores it).

    python benchmarks/bench_core.py [--rounds 7] [--processes 1] [--frames 8] [--size 224]
        [--device cpu|cuda] [--clips 1] [--repeat N] [--threads N] [--clock wall|cpu]

On the CPU it adds bf16 channels_last figures: BatchNorms folded and bf16 weights (what tsm's
torch engine runs with ``precision="bf16"``, with "TSM copy", the shift materialised before the
conv, beside our TSM), and bf16 autocast on float32 weights (Lightning's bf16-mixed).

On a GPU it adds bf16 channels_last figures (bf16 weights for inference, bf16 autocast for
training, peak GPU memory, CUDA graph replay) and two inference variants of our TSM whose shifts
are always materialised: "TSM copy" (the default shift, one Triton kernel there) and "TSM eager
copy" (the eager five-kernel copy), to show what the kernel and the copy-free GEMM path each buy.
``--clips`` sets the batch (a GPU needs several clips to be busy) and ``--repeat`` the steps
inside one timed round.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

import tsm
from tsm.models.fusion import fold_batch_norms
from tsm.ops.shift import _shift_by_copy, shift_offsets


class ReferenceShift(nn.Module):
    """The reference algorithm: a zero tensor, three slice copies, then the wrapped conv."""

    def __init__(self, net: nn.Module, num_segments: int, fold_div: int = 8) -> None:
        super().__init__()
        self.net, self.num_segments, self.fold_div = net, num_segments, fold_div

    def forward(self, x: Tensor) -> Tensor:
        frames, channels, height, width = x.shape
        x5 = x.view(frames // self.num_segments, self.num_segments, channels, height, width)
        fold = channels // self.fold_div
        out = torch.zeros_like(x5)
        out[:, :-1, :fold] = x5[:, 1:, :fold]
        out[:, 1:, fold : 2 * fold] = x5[:, :-1, fold : 2 * fold]
        out[:, :, 2 * fold :] = x5[:, :, 2 * fold :]
        return self.net(out.view(frames, channels, height, width))


def reference_model(ours: tsm.Recognizer) -> tsm.Recognizer:
    """A copy of ``ours`` (same weights) whose shifts run the reference algorithm instead."""
    model = tsm.Recognizer(ours.config.replace(shift=False))
    model.load_state_dict({key.replace(".net.", "."): value for key, value in ours.state_dict().items()})
    for name, module in ours.named_modules():
        if isinstance(module, tsm.TemporalShift):
            parent_name, _, attribute = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            wrapped = ReferenceShift(getattr(parent, attribute), module.num_segments, module.fold_div)
            setattr(parent, attribute, wrapped)
    return model


def eager_shift(module: tsm.TemporalShift, x: Tensor) -> Tensor:
    """The module's shift by the eager one-pass copy, whatever the device."""
    fold = x.shape[1] // module.fold_div
    return _shift_by_copy(x, module.num_segments, fold, shift_offsets(module.mode))


def copy_path_model(ours: tsm.Recognizer, eager: bool = False) -> tsm.Recognizer:
    """A copy of ``ours`` whose shifts always materialise the shifted input, then run the wrapped
    module (no GEMM folding): with the default shift (one Triton kernel on a GPU) or, ``eager``,
    with the eager one-pass copy (a copy and a zero fill per moved group, a copy of the rest)."""
    model = copy.deepcopy(ours)
    for module in model.modules():
        if isinstance(module, tsm.TemporalShift):
            shift = partial(eager_shift, module) if eager else module.shift
            module.forward = lambda x, net=module.net, shift=shift: net(shift(x))
    return model


def graph_replay(model: nn.Module, inputs: Tensor) -> Callable[[], None]:
    """Capture one inference of ``model`` in a CUDA graph; return its replay (no launch overhead)."""
    static_inputs = inputs.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(3):  # warm-up outside the capture (cuDNN picks its algorithms)
            model(static_inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        model(static_inputs)
    return graph.replay


def machine_name(device: torch.device) -> str:
    """The processor (or GPU) the figures were measured on, and the CPU threads used."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.get_num_threads()} CPU threads"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved_medians(
    steps: dict[str, Callable[[], None]],
    rounds: int,
    device: torch.device,
    repeat: int = 1,
    settle: float = 0.0,
    clock: str = "wall",
) -> dict[str, float]:
    """Run every step ``repeat`` times per round, round-robin; return each step's median seconds.

    ``settle``: seconds to sleep (untimed) before each step's turn, so that threads left spinning
    by the step before (OpenMP's, ONNX Runtime's) are idle when it starts. ``clock``: "wall"
    (elapsed time: what a user waits), or "cpu" (the process's CPU time: on a machine others
    share, the work itself without the waits for a core; meaningful at one thread, where it
    equals the elapsed time of an idle machine, give or take its caches).
    """
    now = CLOCKS[clock]
    for step in steps.values():  # warm-up (allocator, kernels, cuDNN's algorithm search)
        for _ in range(max(2, repeat)):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            time.sleep(settle)
            start = now()
            for _ in range(repeat):
                step()
            synchronize(device)
            times[name].append((now() - start) / repeat)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_gpu_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak GPU memory allocated while ``step`` runs (weights and gradients included)."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def saved_bytes(model: nn.Module, clips: Tensor) -> int:
    """Bytes of the unique storages autograd keeps for backward of one forward pass."""
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(clips).sum()
    return sum(storages.values())


def report(
    title: str,
    values: dict[str, float],
    results: dict[str, dict[str, float]],
    describe: Callable[[float], str] = lambda seconds: f"{seconds * 1e3:.1f} ms",
    base: str = "TSN",
) -> None:
    """Print one measurement as ratios against ``base`` (and absolute values); record the ratios."""
    results[title] = {name: value / values[base] for name, value in values.items() if name != base}
    cells = ", ".join(f"{name} {describe(value)}" for name, value in values.items())
    ratios = ", ".join(f"{name}/{base} {ratio:.3f}" for name, ratio in results[title].items())
    print(f"{title}: {ratios}   ({cells})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clips", type=int, default=1, help="clips per batch")
    parser.add_argument(
        "--repeat", type=int, help="steps per timed round (default: 1 on the CPU, 10 on a GPU)"
    )
    parser.add_argument("--skip-training", action="store_true", help="no fp32 training step")
    parser.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time (default); cpu: the process's CPU time, for a shared machine at --threads 1",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="repeat the whole measurement in this many fresh processes and report the median ratio "
        "(on a noisy machine the ratios differ more between processes than between rounds)",
    )
    parser.add_argument("--json", help=argparse.SUPPRESS)  # where a child process writes its ratios
    args = parser.parse_args()
    if args.processes > 1:
        repeat_in_processes(args)
        return
    results: dict[str, dict[str, float]] = {}
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    repeat = args.repeat or (10 if on_gpu else 1)
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)

    ours = tsm.Recognizer(400, num_segments=args.frames, backbone=args.backbone)
    models = {
        "TSN": tsm.Recognizer(ours.config.replace(shift=False)),
        "TSM": ours,
        "reference": reference_model(ours),
    }
    copy_variant = {}
    if on_gpu:
        copy_variant = {
            "TSM copy": copy_path_model(ours),
            "TSM eager copy": copy_path_model(ours, eager=True),
        }
    for model in [*models.values(), *copy_variant.values()]:
        model.to(device)
    clips = torch.randn(args.clips, args.frames, 3, args.size, args.size, device=device)
    print(
        f"{args.backbone}, {args.clips} clip(s) x {args.frames} frames x {args.size}^2, "
        f"{machine_name(device)}, torch {torch.__version__}, median of {args.rounds} interleaved "
        f"rounds of {repeat} step(s)"
    )

    def time_inference(title: str, inputs: Tensor, **conversion) -> None:
        candidates = {**models, **copy_variant}
        for model in candidates.values():
            model.to(**conversion).eval()
        with torch.inference_mode():
            steps = {name: (lambda m=model: m(inputs)) for name, model in candidates.items()}
            report(title, interleaved_medians(steps, args.rounds, device, repeat, clock=args.clock), results)

    formats = [("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)]
    for format_name, memory_format in formats:
        time_inference(f"inference latency, fp32 {format_name}", clips, memory_format=memory_format)
    if not on_gpu:
        cpu_bf16_rows(models, clips, args, results)

    for model in models.values():
        model.to(memory_format=torch.contiguous_format).train()
    memory = {name: float(saved_bytes(model, clips)) for name, model in models.items()}
    report("bytes saved for backward", memory, results, lambda size: f"{size / 2**20:.1f} MiB")

    def training_step(model: nn.Module, autocast: bool = False) -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = model(clips).float().sum()
        loss.backward()

    if not args.skip_training:
        steps = {name: (lambda m=model: training_step(m)) for name, model in models.items()}
        medians = interleaved_medians(steps, args.rounds, device, repeat)
        report("training step (forward + backward), fp32 NCHW", medians, results)

    if on_gpu:
        time_inference(
            "inference latency, bf16 channels_last",
            clips.to(torch.bfloat16),
            dtype=torch.bfloat16,
            memory_format=torch.channels_last,
        )
        for model in models.values():  # fp32 weights, bf16 autocast: mixed-precision training
            model.to(dtype=torch.float32, memory_format=torch.channels_last).train()
        steps = {name: (lambda m=model: training_step(m, autocast=True)) for name, model in models.items()}
        medians = interleaved_medians(steps, args.rounds, device, repeat)
        report("training step, bf16 autocast channels_last", medians, results)
        peaks = {name: float(peak_gpu_bytes(step, device)) for name, step in steps.items()}
        report("peak GPU memory of that step", peaks, results, lambda size: f"{size / 2**20:.0f} MiB")
        for model in models.values():  # last: a failing capture must not cost the figures above
            model.to(dtype=torch.bfloat16).eval()
        replays = {name: graph_replay(model, clips.to(torch.bfloat16)) for name, model in models.items()}
        medians = interleaved_medians(replays, args.rounds, device, repeat)
        report("inference latency, bf16 channels_last, CUDA graph replay", medians, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results))


def cpu_bf16_rows(
    models: dict[str, nn.Module],
    clips: Tensor,
    args: argparse.Namespace,
    results: dict[str, dict[str, float]],
) -> None:
    """bf16 inference on the CPU, channels_last: as tsm's torch engine runs it (BatchNorms folded,
    bf16 weights), with "TSM copy" (the shift materialised, then the conv) beside our TSM; and
    under bf16 autocast (float32 weights: what Lightning's bf16-mixed runs in tsm test)."""
    cpu = torch.device("cpu")
    bf16 = {
        name: fold_batch_norms(model)[0].to(torch.bfloat16, memory_format=torch.channels_last)
        for name, model in models.items()
    }
    bf16["TSM copy"] = copy_path_model(bf16["TSM"], eager=True)
    inputs = clips.to(torch.bfloat16)
    with torch.inference_mode():
        steps = {name: (lambda m=model: m(inputs)) for name, model in bf16.items()}
        medians = interleaved_medians(steps, args.rounds, cpu, clock=args.clock)
    report(
        "inference latency, bf16 channels_last, BatchNorms folded (the torch engine's bf16)", medians, results
    )
    mixed = {
        name: copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
        for name, model in models.items()
    }

    def autocast_step(model: nn.Module) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(clips)

    with torch.inference_mode():
        steps = {name: (lambda m=model: autocast_step(m)) for name, model in mixed.items()}
        report(
            "inference latency, bf16 autocast channels_last",
            interleaved_medians(steps, args.rounds, cpu, clock=args.clock),
            results,
        )


def repeat_in_processes(args: argparse.Namespace) -> None:
    """Run the measurement ``args.processes`` times, each in a fresh process; print median ratios."""
    runs: list[dict[str, dict[str, float]]] = []
    child_args = [
        f"--rounds={args.rounds}",
        f"--frames={args.frames}",
        f"--size={args.size}",
        f"--backbone={args.backbone}",
        f"--device={args.device}",
        f"--clips={args.clips}",
        *([f"--repeat={args.repeat}"] if args.repeat else []),
        *(["--skip-training"] if args.skip_training else []),
        *([f"--threads={args.threads}"] if args.threads else []),
        f"--clock={args.clock}",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.processes):
            print(f"--- process {run + 1}/{args.processes}", flush=True)
            result_file = Path(folder) / f"run{run}.json"
            command = [sys.executable, __file__, *child_args, "--json", str(result_file)]
            subprocess.run(command, check=True)
            runs.append(json.loads(result_file.read_text()))
    print(f"--- median over {args.processes} processes (each the median of its interleaved rounds)")
    for title, ratios in runs[0].items():
        cells = []
        for name in ratios:
            values = [run[title][name] for run in runs]
            listed = ", ".join(f"{value:.3f}" for value in values)
            cells.append(f"{name}/TSN {statistics.median(values):.3f} ({listed})")
        print(f"{title}: " + "; ".join(cells))


if __name__ == "__main__":
    main()

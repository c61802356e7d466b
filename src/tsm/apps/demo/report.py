"""What the demo writes besides metrics.json: the training curves and the README of its results."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from tsm.apps.demo.settings import DEMO_MODELS, DemoSettings


def plot_curves(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Training loss and validation top-1 per epoch of every demo model, side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, result in results.items():
        epochs = [row["epoch"] for row in result["history"]]
        loss_ax.plot(epochs, [row["train_loss"] for row in result["history"]], marker="o", label=name)
        acc_ax.plot(epochs, [row["val_top1"] for row in result["history"]], marker="o", label=name)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 (%)", title="validation top-1", ylim=(0, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


README = """# What `tsm demo` showed

The synthetic task has {num_classes} classes in pairs that are each other's time reverse
({classes}). Appearance, position and speed are random, so the *set* of frames of a clip says
nothing about its class: a model that ignores frame order can at best tell the pairs apart
(50% top-1 on 4 classes), a model that sees time can solve the task.

All three models are {backbone} trained from scratch with the same budget ({epochs} epochs of
{train} clips, {segments} frames of {size}x{size} px, batch {batch_size}, SGD lr {lr}, cosine
schedule), then tested on {test} held-out clips (one centre view):

| model | top-1 (%) | mean class acc. (%) | test clips | wall time (s), trainings side by side |
|---|---|---|---|---|
{rows}

- TSN averages per-frame scores: it cannot see the order, so it stays near chance within a pair.
- TSM shifts 1/4 of the channels one frame forward/backward in every residual block: at zero
  extra FLOPs the 2D network sees motion direction.
- Online TSM shifts only from the past (1/8 of the channels), so it can run on a live stream one
  frame at a time, and it still learns the direction.

The online model also runs as a live stream would run it: one frame at a time, the shifted
channels of the previous frame kept in caches, here over the same {test} test clips (the mean of
the per-frame logits of a clip is the clip's logits). The engines run it interleaved clip by
clip on {threads_all} CPU thread(s): PyTorch in fp32 and in bf16 (a bf16 channels_last copy,
BatchNorms folded: what `--precision auto` runs on a CPU with AMX or AVX-512 BF16), ONNX
Runtime on the fp32 and on an int8 model (static quantization, per-channel int8 weights,
calibrated on {calibration} training clips), and, where executorch is installed, ExecuTorch
(XNNPACK, what a phone runs) fp32 and int8 (PyTorch 2's quantization flow, calibrated on the
same clips):

| online TSM engine | top-1 (%) | frames/s (one stream, batch 1) |
|---|---|---|
{engine_rows}

ONNX Runtime int8 picks the fp32 model's class on {agreement:.1f}% of the test clips (largest
logit difference {max_difference:.3g}){executorch_agreement}. bf16 picks it on
{bf16_agreement:.1f}% of them, top-1 {bf16_change:+.1f} points ({bf16_verdict}; this CPU:
{bf16_cpu}). At {size}x{size} px the network is so small that each engine's fixed cost per call
weighs heavily in frames/s; see
`docs/benchmarks.md` for 224x224.

Files: `metrics.json` (the numbers above), `training_curves.png`, `<model>/test/` (confusion
matrix CSV/PNG, per-class table, predictions CSV/JSON), `<model>/model.safetensors` (load with
`tsm.load_checkpoint`), `<model>/metrics.csv` (per-step training log),
`tsm_online/model_step.onnx` and `tsm_online/model_step_int8.onnx` (the streaming step, fp32 and
int8: `tsm stream VIDEO --checkpoint FILE.onnx`; `.pte` beside them for ExecuTorch), `data/` (the
videos).
"""


def write_readme(
    path: Path, settings: DemoSettings, class_names: list[str], metrics: dict[str, Any], cores: int
) -> None:
    """The README of the demo's results: the trainings' table and the online model's engines."""
    rows = "\n".join(
        f"| {DEMO_MODELS[name][0]} | {r['top1']:.1f} | {r['mean_class_accuracy']:.1f} | "
        f"{r['num_test_clips']} | {r['wall_seconds']:.0f} |"
        for name, r in metrics.items()
        if name in DEMO_MODELS
    )
    engines = metrics["tsm_online_engines"]
    engine_rows = "\n".join(
        f"| {title} | {row['top1']:.1f} | {row['frames_per_second']:.0f} |"
        for title, row in engines["engines"].items()
    )
    check, bf16 = engines["int8_check"], engines["bf16_check"]
    bound = f"tsm's bound for bf16, {bf16['max_drop']:g} points"
    text = README.format(
        bf16_agreement=bf16["agreement"],
        bf16_change=engines["engines"]["PyTorch bf16"]["top1"] - engines["engines"]["PyTorch fp32"]["top1"],
        bf16_verdict=f"within {bound}" if bf16["within"] else f"beyond {bound}: use --precision fp32",
        bf16_cpu=bf16["cpu_bf16"] or "no native bf16, emulated",
        num_classes=len(class_names),
        classes=", ".join(class_names),
        rows=rows,
        engine_rows=engine_rows,
        calibration=check["calibration_clips"],
        agreement=check["agreement"],
        max_difference=check["max_logit_difference"],
        executorch_agreement=_executorch_agreement(engines),
        threads_all=cores,
        **asdict(settings),
    )
    path.write_text(text)


def _executorch_agreement(engines: dict[str, Any]) -> str:
    check = engines.get("executorch_int8_check")
    if check is None:
        return ""
    return f"; ExecuTorch int8 on {check['agreement']:.1f}% (largest {check['max_logit_difference']:.3g})"

"""The `tsm` CLI: help, configs with overrides and --print-config, fit/test on tiny data, the demo."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import tsm
from devices import needs_cuda
from foreign_models import ReferenceTSN, data_parallel_state, randomize
from tsm.apps.demo import DEMO_MODELS, QUICK
from tsm.checkpoint import init_from_checkpoint
from tsm.cli.main import main
from tsm.data import DataConfig, generate_synthetic_dataset, load_clip, synthetic_class_names
from tsm.training import GRADIENT_CLIP_VAL, ModelInit, OptimizerConfig

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def run_cli(argv: list[str], capsys, stdout_only: bool = False) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse / LightningCLI exit after --help and --print-config
        code = exit_.code or 0
    captured = capsys.readouterr()
    return code, captured.out if stdout_only else captured.out + captured.err


def test_help_lists_the_training_commands(capsys) -> None:
    code, output = run_cli(["--help"], capsys)
    assert code == 0
    for command in ("fit", "test", "validate", "demo"):
        assert command in output


def test_fit_help_comes_from_lightning_and_lists_model_options(capsys) -> None:
    code, output = run_cli(["fit", "--help"], capsys)
    assert code == 0
    options = ("--model.optimizer.lr", "--model.optimizer.schedule", "--model.model", "--data.train")
    options += ("--data.data_config.test_views", "--data.data_config.resize", "--trainer.max_epochs")
    options += ("--model.init.backbone_weights", "--model.init.finetune_from", "--model.init.checkpoint")
    for option in options:
        assert option in output


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_recipe_parses_and_keeps_its_settings(config, capsys) -> None:
    code, output = run_cli(["fit", "--config", str(config), "--print-config"], capsys, stdout_only=True)
    assert code == 0, output
    printed = yaml.safe_load(output)
    written = yaml.safe_load(config.read_text())
    typed = {
        "data_config": tsm.DataConfig(),
        "model": tsm.ModelConfig(),
        "optimizer": OptimizerConfig(),
        "init": ModelInit(),
    }
    for section in ("model", "data"):
        for key, value in written[section].items():
            if isinstance(value, dict):  # typed configs: printed whole, every setting of the dataclass
                fields = dataclasses.asdict(typed[key])
                assert set(printed[section][key]) == set(fields), (section, key)
                assert {k: printed[section][key][k] for k in value} == value, (section, key)
            elif key == "model":  # a model name reads as its network's settings, but classes and frames
                named = tsm.checkpoint.model_config(value).to_dict()
                linked = ("num_classes", "num_segments")
                assert {k: v for k, v in printed[section][key].items() if k not in linked} == {
                    k: v for k, v in named.items() if k not in linked
                }
            else:
                assert printed[section][key] == value, (section, key)
    assert "num_segments" not in printed["model"]  # set once, in data, and linked to the model


def test_a_model_name_and_field_overrides_combine_on_the_command_line(capsys) -> None:
    """--model.model NAME is that network's settings, which --model.model.FIELD then changes."""
    config = Path(__file__).parents[1] / "configs" / "synthetic.yaml"
    arguments = ["fit", "--config", str(config), "--model.model", "tsm_online_resnet34"]
    code, output = run_cli([*arguments, "--model.model.dropout", "0.25", "--print-config"], capsys, True)
    assert code == 0, output
    printed = yaml.safe_load(output)["model"]["model"]
    assert (printed["backbone"], printed["mode"], printed["dropout"]) == ("resnet34", "unidirectional", 0.25)
    code, output = run_cli([*arguments[:-1], "tsm_vgg", "--print-config"], capsys)
    assert code == 1 and "unknown model 'tsm_vgg'" in output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--init_from", "k.pth"], "init_from is now model.init.finetune_from: --model.init.finetune_from"),
        (["--model.checkpoint", "m.pth"], "model.checkpoint is now model.init.checkpoint"),
        (["--model.backbone_weights", "imagenet"], "backbone_weights is now model.init.backbone_weights"),
        (["--ckpt_path", "best.safetensors"], "write --model.init.checkpoint best.safetensors"),
        (["--ckpt_path", "tsm_resnet50.reference_kinetics400_8f"], "is a model: write --model.init."),
    ],
)
def test_options_of_tsm_0_1_and_a_model_as_ckpt_path_are_one_line_errors(arguments, message, capsys) -> None:
    """--ckpt_path keeps Lightning's meaning (a training state); a model file there, or an option
    that tsm 0.1 had, is refused with what to write instead."""
    config = Path(__file__).parents[1] / "configs" / "synthetic.yaml"
    for subcommand in ("fit", "test"):
        code, output = run_cli([subcommand, "--config", str(config), *arguments], capsys)
        assert code == 1 and output.startswith(f"tsm {subcommand}: error: "), output
        assert output.count("\n") == 1 and message in output


def test_a_training_state_of_tsm_0_1_is_a_one_line_error(tmp_path, capsys) -> None:
    """Its hyperparameters name options this version lacks: say so, not that the user wrote them."""
    old = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"checkpoint": None, "backbone_weights": None}}, old)
    config = Path(__file__).parents[1] / "configs" / "synthetic.yaml"
    code, output = run_cli(["fit", "--config", str(config), "--ckpt_path", str(old)], capsys)
    assert code == 1 and output.count("\n") == 1, output
    assert f"{old} is a training state of tsm 0.1 (hyperparameters checkpoint, backbone_weights)" in output


def test_an_option_of_tsm_0_1_in_a_config_file_is_a_one_line_error(tmp_path, capsys) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  backbone_weights: imagenet\n")
    config = Path(__file__).parents[1] / "configs" / "synthetic.yaml"
    code, output = run_cli(["fit", "--config", str(config), "--config", str(old)], capsys)
    assert code == 1 and "model.backbone_weights is now model.init.backbone_weights" in output, output


def test_the_init_of_the_network_is_one_typed_option(synthetic, capsys) -> None:
    config = Path(__file__).parents[1] / "configs" / "ucf101_tsm_r50_finetune.yaml"
    finetune = ["--model.init.finetune_from", "k400.pth", "--print-config"]
    code, output = run_cli(["fit", "--config", str(config), *finetune], capsys, stdout_only=True)
    assert code == 0, output
    init = yaml.safe_load(output)["model"]["init"]
    assert init == {"backbone_weights": None, "finetune_from": "k400.pth", "checkpoint": None}
    both = ["--model.init.backbone_weights", "imagenet", "--data.train", str(synthetic.lists["train"])]
    code, output = run_cli(["fit", "--config", str(config), *finetune[:2], *both], capsys)
    assert code == 1 and "give one of backbone_weights, finetune_from and checkpoint" in output


def test_command_line_overrides_win_over_the_config(capsys) -> None:
    config = Path(__file__).parents[1] / "configs" / "kinetics400_tsm_r50_8f.yaml"
    code, output = run_cli(
        [
            "fit",
            "--config",
            str(config),
            "--model.optimizer.lr",
            "0.005",
            "--data.num_segments",
            "16",
            "--print-config",
        ],
        capsys,
        stdout_only=True,
    )
    assert code == 0, output
    printed = yaml.safe_load(output)
    assert printed["model"]["optimizer"]["lr"] == 0.005
    assert printed["data"]["num_segments"] == 16
    assert printed["trainer"]["gradient_clip_val"] == GRADIENT_CLIP_VAL == 20.0  # the reference's


def test_num_segments_is_set_in_one_place_only(capsys) -> None:
    code, output = run_cli(["fit", "--model.num_segments", "4", "--print-config"], capsys)
    assert code != 0
    assert "num_segments" in output


def test_unknown_option_is_a_clear_error(capsys) -> None:
    code, output = run_cli(["fit", "--model.optimizer.learning_rate", "0.1"], capsys)
    assert code != 0
    assert "learning_rate" in output


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_synthetic")
    return generate_synthetic_dataset(root, train=8, val=4, test=4, size=32, frames=8, seed=1)


@pytest.fixture(scope="module")
def class_folders(synthetic, tmp_path_factory):
    """The synthetic splits as ``split/<class>/<video>`` folders (links to the videos)."""
    root = tmp_path_factory.mktemp("cli_class_folders")
    for split, listing in synthetic.lists.items():
        for line in listing.read_text().splitlines():
            path, label = line.split()
            video = root / split / synthetic.class_names[int(label)] / Path(path).name
            video.parent.mkdir(parents=True, exist_ok=True)
            video.symlink_to(synthetic.root / path)
    return root


ON_GPU = [  # bf16 autocast, channels_last, loader workers and pinned memory on a CUDA GPU
    "--trainer.accelerator",
    "gpu",
    "--trainer.precision",
    "bf16-mixed",
    "--model.channels_last",
    "true",
    "--data.num_workers",
    "2",
    "--data.pin_memory",
    "true",
]

TINY_DATA = [
    "--data.num_segments",
    "4",
    "--data.batch_size",
    "4",
    "--data.data_config",
    json.dumps({"resize": 32, "input_size": 32, "train_pipeline": "center_crop"}),
    "--trainer.enable_progress_bar",
    "false",
]


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("device_args", [[], pytest.param(ON_GPU, marks=needs_cuda)], ids=["cpu", "gpu"])
def test_fit_then_test_from_the_exported_checkpoint(
    class_folders, tmp_path, capsys, device_args, monkeypatch
) -> None:
    load = torch.load

    def load_like_torch_before_2_14(path, *args, **kwargs):  # which could not read safetensors
        if str(path).endswith(".safetensors"):
            raise pickle.UnpicklingError("Weights only load failed ... Unsupported operand 184")
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load_like_torch_before_2_14)
    monkeypatch.chdir(tmp_path)  # the runs/ folder of the default loggers
    splits = ["--data.train", str(class_folders / "train"), "--data.val", str(class_folders / "val")]
    fit = ["fit", *splits, *TINY_DATA, "--model.model", "tsm_resnet18", "--trainer.log_every_n_steps", "1"]
    fit += device_args
    code, output = run_cli([*fit, "--trainer.max_epochs", "1"], capsys)
    assert code == 0, output
    run = tmp_path / "runs" / "fit" / "version_0"  # one run, one folder: both loggers, checkpoints
    assert [path.name for path in (tmp_path / "runs" / "fit").iterdir()] == ["version_0"]
    files = files_under(run)
    assert {"config.yaml", "hparams.yaml", "metrics.csv", "checkpoints/last.ckpt"} <= set(files)
    assert {"checkpoints/best.safetensors", "checkpoints/last.safetensors"} <= set(files)
    assert any(name.startswith("events.out.tfevents.") for name in files)
    with open(run / "metrics.csv") as handle:
        columns = next(csv.reader(handle))
    assert {"train/clips_per_s", "train/data_wait_s_step", "train/data_wait_s_epoch"} <= set(columns)
    best = run / "checkpoints" / "best.safetensors"
    model, info = tsm.load_checkpoint(best)
    assert info.class_names == sorted(os.listdir(class_folders / "train"))
    assert info.data_config.num_segments == model.num_segments == 4
    assert info.data_config.input_size == 32

    # The network comes from the file: no --model.model (its default is tsm_resnet50).
    test = ["test", "--data.test", str(class_folders / "test"), *TINY_DATA, *device_args]
    code, output = run_cli([*test, "--model.init.checkpoint", str(best)], capsys)
    assert code == 0, output
    report = tmp_path / "runs" / "test" / "version_0" / "test_report"
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["num_clips"] == 4
    predictions = json.loads((report / "predictions.json").read_text())
    assert [Path(row["sample"]).parent.name for row in predictions] == [row["label"] for row in predictions]
    assert (report / "confusion_matrix.png").is_file()
    assert (tmp_path / "runs" / "test" / "version_0" / "metrics.csv").is_file()

    validate = ["validate", "--data.val", str(class_folders / "val"), *TINY_DATA, *device_args]
    code, output = run_cli([*validate, f"--model.init.checkpoint={best}"], capsys)
    assert code == 0, output
    with open(tmp_path / "runs" / "validate" / "version_0" / "metrics.csv") as handle:
        assert float(next(csv.DictReader(handle))["val/top1"]) * 4 in (0.0, 1.0, 2.0, 3.0, 4.0)

    resume = ["--trainer.max_epochs", "2", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    code, output = run_cli([*fit, *resume], capsys)
    assert code == 0, output
    assert sorted(path.name for path in (tmp_path / "runs" / "fit").iterdir()) == ["version_0", "version_1"]
    with open(tmp_path / "runs" / "fit" / "version_1" / "metrics.csv") as handle:
        epochs = {row["epoch"] for row in csv.DictReader(handle) if row["epoch"]}
    assert epochs == {"1"}  # resumed after epoch 0: only the second epoch ran


def test_a_checkpoint_of_other_classes_is_refused_in_one_line(synthetic, tmp_path, capsys) -> None:
    checkpoint = tmp_path / "sorted_classes.safetensors"
    model = tsm.Recognizer(4, num_segments=4, backbone="resnet18")
    tsm.save_checkpoint(checkpoint, model, sorted(synthetic.class_names))  # not the list's order
    model_file = ["--model.init.checkpoint", str(checkpoint)]
    test = ["test", "--data.test", str(synthetic.lists["test"]), *TINY_DATA, *model_file]
    code, output = run_cli(test, capsys)
    assert code == 1
    assert "tsm test: error: " in output and "trained on the classes ['grow', 'move_left'" in output
    assert f"ValueError: {checkpoint}" not in output  # one line, not a traceback


def test_test_takes_the_checkpoints_frames_and_test_pipeline(synthetic, tmp_path, capsys, monkeypatch):
    """Only --data.test and --model.init.checkpoint: frames per clip and the test views come from
    the file; the user's arguments and configs still win, before or after it."""
    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "two_frames.safetensors"
    config = tsm.DataConfig(num_segments=2, resize=32, input_size=32, test_views="three")
    model = tsm.Recognizer(4, num_segments=2, backbone="resnet18")
    tsm.save_checkpoint(checkpoint, model, synthetic.class_names, config)
    test = ["test", "--data.test", str(synthetic.lists["test"]), "--model.init.checkpoint", str(checkpoint)]
    code, output = run_cli([*test, "--print-config"], capsys, stdout_only=True)
    assert code == 0, output
    assert yaml.safe_load(output)["model"]["view_average"] == "logits"  # tsm's own files
    printed = yaml.safe_load(output)["data"]
    assert printed["num_segments"] == 2 and printed["data_config"]["test_views"] == "three"
    assert printed["data_config"]["input_size"] == 32
    override = ["--data.data_config.test_views", "center"]
    code, output = run_cli([*test, *override, "--print-config"], capsys, stdout_only=True)
    assert yaml.safe_load(output)["data"]["data_config"]["test_views"] == "center"
    assert yaml.safe_load(output)["data"]["data_config"]["input_size"] == 32  # the file's, still
    code, output = run_cli([test[0], *override, *test[1:], "--print-config"], capsys, stdout_only=True)
    assert yaml.safe_load(output)["data"]["data_config"]["test_views"] == "center"  # before it, too
    quiet = ["--data.batch_size", "4", "--trainer.enable_progress_bar", "false"]
    code, output = run_cli([*test, *quiet], capsys)
    assert code == 0, output
    report = tmp_path / "runs" / "test" / "version_0" / "test_report"
    assert json.loads((report / "metrics.json").read_text())["num_clips"] == 4


EXECUTORCH_ROWS = ["ExecuTorch fp32", "ExecuTorch int8"] if importlib.util.find_spec("executorch") else []


@pytest.mark.parametrize(
    ("option", "flags", "expected"),
    [("bf16", set(), "bf16-mixed"), ("fp32", {"amx_bf16"}, "32-true"), ("auto", {"amx_bf16"}, "bf16-mixed"),
     ("auto", {"avx2"}, "32-true")],
)  # fmt: skip
def test_test_takes_precision_as_predict_does(
    synthetic, tmp_path, capsys, monkeypatch, option, flags, expected
):
    """tsm test --precision becomes Lightning's precision; auto is bf16 on a CPU run only where the
    CPU computes bf16 natively, and says why."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tsm.inference.precision.cpu_flags", lambda: flags)
    checkpoint = tsm.save_checkpoint(tmp_path / "m.safetensors", tsm.Recognizer(4, num_segments=2), None, {})
    test = ["test", "--data.test", str(synthetic.lists["test"]), "--model.init.checkpoint", str(checkpoint)]
    cpu = ["--trainer.accelerator", "cpu", "--precision", option, "--print-config"]
    with pytest.raises(SystemExit):  # LightningCLI exits after --print-config
        main([*test, *cpu])
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["trainer"]["precision"] == expected
    computed = "bf16" if expected == "bf16-mixed" else "fp32"
    assert captured.err.startswith(f"precision: {expected}, {computed} (")
    code, output = run_cli([*test, *cpu, "--trainer.precision", "16-mixed"], capsys)
    assert code == 1 and "give --precision or --trainer.precision, not both" in output


@pytest.mark.slow  # three trainings in fresh processes: about 25 s on 2 cores
def test_demo_quick_writes_its_results(tmp_path, capsys) -> None:
    """What `tsm demo --quick` must produce: every file, the settings it ran with, and numbers that
    agree with its own per-clip predictions (accuracies themselves are not asserted)."""
    code, output = run_cli(["demo", "--quick", "--out", str(tmp_path)], capsys)
    assert code == 0, output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {
        "tsn",
        "tsm",
        "tsm_online",
        "tsm_online_engines",
        "settings",
        "total_wall_seconds",
        "chance_top1",
    }
    settings = metrics["settings"]
    assert {key: settings[key] for key in QUICK} == QUICK
    assert settings["parallel_trainings"] == 3 and settings["backbone"] == "resnet18"
    assert metrics["chance_top1"] == 25.0  # 4 classes
    class_names = (tmp_path / "data" / "classes.txt").read_text().split()
    assert class_names == synthetic_class_names(4)
    test_lines = (tmp_path / "data" / "test.txt").read_text().splitlines()
    assert len(test_lines) == QUICK["test"]
    expected_videos = [str(tmp_path / "data" / line.split()[0]) for line in test_lines]
    readme = (tmp_path / "README.md").read_text()
    architectures = {  # name: (registered model, shift, shift mode)
        "tsn": ("tsn_resnet18", False, "bidirectional"),
        "tsm": ("tsm_resnet18", True, "bidirectional"),
        "tsm_online": ("tsm_online_resnet18", True, "unidirectional"),
    }
    for name, (model_name, shift, mode) in architectures.items():
        result, folder = metrics[name], tmp_path / name
        assert result["model"] == model_name and result["num_test_clips"] == QUICK["test"]
        assert result["top5"] == 100.0  # top-K with K = 4 classes: every clip counts
        rows = json.loads((folder / "test" / "predictions.json").read_text())
        assert [row["sample"] for row in rows] == expected_videos
        assert result["top1"] == round(100.0 * sum(row["correct"] for row in rows) / len(rows), 2)
        with open(folder / "test" / "per_class.csv") as handle:
            per_class = {row["class"]: row for row in csv.DictReader(handle)}
        assert sum(int(row["clips"]) for row in per_class.values()) == QUICK["test"]
        present = [row for row in per_class.values() if int(row["clips"])]
        recall = [int(row["correct"]) / int(row["clips"]) for row in present]
        assert result["mean_class_accuracy"] == pytest.approx(100.0 * sum(recall) / len(recall), abs=0.01)
        assert {"metrics.json", "confusion_matrix.csv", "confusion_matrix.png", "predictions.csv"} <= {
            path.name for path in (folder / "test").iterdir()
        }
        model, info = tsm.load_checkpoint(folder / "model.safetensors")
        assert info.class_names == class_names and info.data_config.num_segments == QUICK["segments"]
        config = model.config
        assert (config.backbone, config.shift, config.mode) == ("resnet18", shift, mode)
        with open(folder / "metrics.csv") as handle:
            epochs = {row["epoch"] for row in csv.DictReader(handle) if row.get("train/loss_epoch")}
        assert epochs == {"0"}  # one epoch of training
        title = DEMO_MODELS[name][0]
        assert f"| {title} | {result['top1']:.1f} | {result['mean_class_accuracy']:.1f} | 4 |" in readme
        assert f"{title:<30} {result['top1']:6.1f}%" in output
    assert (tmp_path / "training_curves.png").is_file()
    assert f"test top-1 on {QUICK['test']} held-out clips (chance 25%)" in output
    # The online model streamed on three engines: torch's top-1 is the online row's (an independent
    # path: frame by frame with caches vs Lightning's test of whole clips), and the int8 file is
    # the one the demo measured, calibrated on the training videos.
    engines = metrics["tsm_online_engines"]
    rows = engines["engines"]
    assert list(rows) == [
        "PyTorch fp32",
        "PyTorch bf16",
        "ONNX Runtime fp32",
        "ONNX Runtime int8",
        *EXECUTORCH_ROWS,
    ]
    assert rows["PyTorch fp32"]["top1"] == rows["ONNX Runtime fp32"]["top1"] == metrics["tsm_online"]["top1"]
    check = engines["int8_check"]
    assert check["calibration_clips"] == QUICK["train"] and check["check_clips"] == QUICK["test"]
    assert (
        rows["ONNX Runtime int8"]["top1"] == check["int8_top1"]
        and check["fp32_top1"] == rows["PyTorch fp32"]["top1"]
    )
    bf16 = engines["bf16_check"]  # bf16 against fp32 on the same clips, and the bound it is held to
    assert bf16["top1_drop"] == round(rows["PyTorch fp32"]["top1"] - rows["PyTorch bf16"]["top1"], 2)
    assert bf16["max_drop"] == tsm.inference.BF16_MAX_DROP
    assert bf16["within"] == (bf16["top1_drop"] <= bf16["max_drop"])
    assert f"bf16 agrees with fp32 on {bf16['agreement']:.1f}% of the test clips" in output
    int8 = tsm.read_export_metadata(tmp_path / engines["files"]["int8"])
    assert int8["tsm_export"] == "stream" and int8["int8"]["agreement"] == check["agreement"]
    # ExecuTorch (installed by make test): fp32 streams as torch does; int8 is the checked program.
    assert rows["ExecuTorch fp32"]["top1"] == rows["PyTorch fp32"]["top1"]
    executorch = engines["executorch_int8_check"]
    assert rows["ExecuTorch int8"]["top1"] == executorch["int8_top1"]
    written = tsm.read_export_metadata(tmp_path / engines["files"]["executorch_int8"])["int8"]
    assert written["agreement"] == executorch["agreement"] and written["format"] == "PT2E, XNNPACKQuantizer"
    for title, row in rows.items():
        assert f"| {title} | {row['top1']:.1f} | {row['frames_per_second']:.0f} |" in readme
        assert f"  {title:<30} {row['top1']:6.1f}%" in output


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path) -> None:
    """Same keys and shapes but another fold_div would load silently and mispredict: refuse it."""
    path = tmp_path / "fold4.safetensors"
    tsm.save_checkpoint(path, tsm.Recognizer(3, num_segments=2, backbone="resnet18", fold_div=4))
    with pytest.raises(ValueError, match="fold_div: checkpoint 4 vs model 8"):
        init_from_checkpoint(tsm.Recognizer(3, num_segments=2, backbone="resnet18"), str(path))
    same = tsm.Recognizer(3, num_segments=2, backbone="resnet18", fold_div=4)
    init_from_checkpoint(same, str(path))
    reloaded, _ = tsm.load_checkpoint(path)
    expected = reloaded.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in same.state_dict().items())


DEMO_POOL_SCRIPT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from tsm.apps.demo.training import exit_with_parent

def write_pid_and_sleep(path):
    with open(path + ".tmp", "w") as file:
        file.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(120)

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=exit_with_parent)
    pool.submit(write_pid_and_sleep, sys.argv[1])
    time.sleep(120)
"""


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_demo_trainings_end_when_the_demo_process_is_killed(tmp_path) -> None:
    script, pid_file = tmp_path / "demo_pool.py", tmp_path / "worker.pid"
    script.write_text(DEMO_POOL_SCRIPT)
    demo = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        assert _is_running(worker)
        demo.send_signal(signal.SIGTERM)  # not Ctrl-C: nothing reaches the worker but its parent's death
        demo.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _is_running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _is_running(worker), "the training worker outlived the demo process"
    finally:
        demo.kill()


NOT_FOR_USERS = (  # warnings our own defaults used to cause
    "transfer_batch_to_device",
    "worker",  # torch: "This DataLoader will create 4 worker processes"; Lightning: "not many workers"
    "pin_memory",
    "args parameter is intended",
    "exists and is not empty",
)


def test_fit_and_test_with_the_defaults_warn_about_nothing_of_ours(synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # a small machine
    monkeypatch.chdir(tmp_path)
    splits = ["--data.train", str(synthetic.lists["train"]), "--data.val", str(synthetic.lists["val"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = ["fit", *splits, *TINY_DATA, "--model.model", "tsm_resnet18", "--trainer.max_epochs", "1"]
        code, output = run_cli(fit, capsys)
        assert code == 0, output
        best = tmp_path / "runs" / "fit" / "version_0" / "checkpoints" / "best.safetensors"
        test = ["test", "--data.test", str(synthetic.lists["test"]), *TINY_DATA]
        test += ["--model.init.checkpoint", str(best)]
        code, output = run_cli(test, capsys)
        assert code == 0, output
    messages = [str(warning.message) for warning in caught]
    assert [message for message in messages if any(part in message for part in NOT_FOR_USERS)] == []


def test_test_builds_a_foreign_checkpoint_from_its_file(synthetic, tmp_path, capsys, monkeypatch) -> None:
    """A reference checkpoint (architecture from its keys, segments from its name) tests as it predicts."""
    reference = randomize(ReferenceTSN(len(synthetic.class_names), 4, "resnet18")).eval()
    checkpoint = tmp_path / "TSM_kinetics_RGB_resnet18_shift8_blockres_avg_segment4_e50.pth"
    torch.save({"epoch": 50, "arch": "resnet18", "state_dict": data_parallel_state(reference)}, checkpoint)
    monkeypatch.chdir(tmp_path)
    test = ["test", "--data.test", str(synthetic.lists["test"]), *TINY_DATA]
    test += ["--model.init.checkpoint", str(checkpoint)]
    code, output = run_cli(test, capsys)
    assert code == 0, output
    report = tmp_path / "runs" / "test" / "version_0" / "test_report"
    rows = json.loads((report / "predictions.json").read_text())
    settings = json.loads(TINY_DATA[TINY_DATA.index("--data.data_config") + 1])
    config = DataConfig.from_dict(settings, num_segments=4)
    expected = []
    for line in synthetic.lists["test"].read_text().splitlines():
        with torch.no_grad():
            scores = reference(load_clip(synthetic.root / line.split()[0], config))  # one view: (1, K)
        expected.append(synthetic.class_names[int(scores.argmax())])
    assert [row["predicted"] for row in rows] == expected

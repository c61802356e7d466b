"""``tsm convert``: foreign checkpoint -> tsm safetensors file, reloaded and checked."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

import tsm
from foreign_models import MMRecognizer2D, ReferenceTSN, data_parallel_state, randomize
from tsm.cli.main import main

T = 4
NAME = f"TSM_kinetics_RGB_resnet18_shift8_blockres_avg_segment{T}_e50.pth"


def test_convert_round_trip_keeps_the_reference_logits(tmp_path, capsys):
    ref = randomize(ReferenceTSN(3, T, "resnet18"))
    source = tmp_path / NAME
    torch.save({"epoch": 50, "arch": "resnet18", "state_dict": data_parallel_state(ref)}, source)
    labels = tmp_path / "labels.txt"
    labels.write_text("archery\nbowling\ncurling\n\n", encoding="utf-8")
    out = tmp_path / "converted" / "tsm_r18.safetensors"

    assert main(["convert", str(source), str(out), "--class-names", str(labels), "--size", "32"]) == 0
    printed = capsys.readouterr().out
    assert "reference format" in printed and "max |logits difference| = 0" in printed
    assert "num_segments = 4  [file name" in printed and "backbone = 'resnet18'  [weights" in printed
    assert "class names: 3 (archery, bowling, curling)" in printed

    model, info = tsm.load_checkpoint(out)
    assert info.format == "tsm" and info.class_names == ["archery", "bowling", "curling"]
    assert info.model_config == model.config.replace(num_segments=T, fold_div=8, backbone="resnet18")
    assert info.data_config.input_size == 224
    clips = torch.randn(2, T, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clips), ref(clips), rtol=1e-5, atol=1e-5)
    model.train()(clips).logsumexp(dim=1).sum().backward()  # a loaded model fine-tunes
    assert all(p.requires_grad and p.grad is not None for p in model.parameters())


def test_convert_takes_settings_from_options(tmp_path, capsys):
    mm = randomize(MMRecognizer2D("r18", 4, T))
    source = tmp_path / "epoch_50.pth"  # no metadata and no naming convention
    torch.save({"state_dict": mm.state_dict(), "meta": {"epoch": 50}}, source)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(source), str(out), "--size", "32"]) == 1
    assert "--num-segments" in capsys.readouterr().err
    assert not out.exists()

    options = ["--num-segments", str(T), "--fold-div", "8", "--size", "32"]
    assert main(["convert", str(source), str(out), *options]) == 0
    printed = capsys.readouterr().out
    assert "num_segments = 4  [argument]" in printed and "class names: none" in printed
    model, _ = tsm.load_checkpoint(out)
    clips = torch.randn(1, T, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clips), mm(clips), rtol=1e-5, atol=1e-5)


def test_convert_error_paths(tmp_path, capsys):
    source = tmp_path / NAME
    state = data_parallel_state(ReferenceTSN(3, T, "resnet18"))
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=0.1)}, source)
    out = tmp_path / "out.safetensors"

    assert main(["convert", str(source), str(out), "--size", "32"]) == 1
    assert "--allow-pickle" in capsys.readouterr().err

    labels = tmp_path / "labels.txt"
    labels.write_text("only\ntwo\n", encoding="utf-8")
    assert main(["convert", str(source), str(out), "--allow-pickle", "--class-names", str(labels)]) == 1
    assert "2 class names given but the checkpoint has 3 classes" in capsys.readouterr().err
    assert not out.exists()

    assert main(["convert", str(source), str(out), "--class-names", str(tmp_path / "none.txt")]) == 1
    assert "class-names file" in capsys.readouterr().err

    assert main(["convert", str(source), str(out), "--allow-pickle", "--size", "32"]) == 0
    again = tmp_path / "again.safetensors"
    assert main(["convert", str(out), str(again), "--size", "32"]) == 0  # tsm -> tsm works too
    assert "tsm format" in capsys.readouterr().out


def _randomized_model(frames: int) -> tsm.Recognizer:
    model = tsm.create_model("tsm_mobilenet_v2", num_classes=174, num_segments=frames)
    return randomize(model, calibrate_on=torch.randn(2, frames, 3, 32, 32))


def test_a_loaded_model_has_its_weights_in_aligned_memory(tmp_path):
    """Where a model built in memory has them: contiguous, 64-byte aligned (not at the file's offsets)."""
    path = tsm.save_checkpoint(tmp_path / "model.safetensors", _randomized_model(2))
    loaded, _ = tsm.load_checkpoint(path)
    tensors = dict(loaded.state_dict())
    misplaced = [k for k, t in tensors.items() if not t.is_contiguous() or t.data_ptr() % 64]
    assert not misplaced, f"{len(misplaced)} of {len(tensors)} tensors not contiguous and 64-byte aligned"


# Run in a fresh interpreter: oneMKL reads MKL_ENABLE_INSTRUCTIONS once, when it starts. Its SSE4.2
# path sums by address: before the fix it showed a reload's misaligned weights (1.7e-4 here, Intel Xeon).
_RELOAD_ON_AN_ALIGNMENT_SENSITIVE_PATH = """
import sys, torch, tsm
sys.path.insert(0, sys.argv[2])
from foreign_models import randomize
torch.manual_seed(0)
# One frame: matrix-vector products, the most alignment-sensitive kernels.
model = tsm.create_model("tsm_mobilenet_v2", num_classes=174, num_segments=1)
model = randomize(model, calibrate_on=torch.randn(2, 1, 3, 32, 32))
loaded, _ = tsm.load_checkpoint(tsm.save_checkpoint(sys.argv[1], model))
clip = torch.randn(1, 1, 3, 32, 32)
with torch.inference_mode():
    print((model(clip) - loaded.eval()(clip)).abs().max().item(), model(clip).abs().max().item())
"""


def test_a_reload_computes_bit_for_bit_the_same_logits(tmp_path):
    """Same weights, same layout, same alignment: the same kernels, so exactly equal logits."""
    code = [sys.executable, "-c", _RELOAD_ON_AN_ALIGNMENT_SENSITIVE_PATH, str(tmp_path / "m.safetensors")]
    env = {**os.environ, "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}  # no effect without oneMKL (e.g. ARM)
    done = subprocess.run([*code, str(Path(__file__).parent)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    difference, magnitude = map(float, done.stdout.split())
    assert magnitude > 1 and difference == 0

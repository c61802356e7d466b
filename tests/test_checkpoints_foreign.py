"""Loading the reference's and MMAction2's checkpoints: same logits as their own forward passes.

Each test builds a network in the foreign layout (tests/foreign_models.py: the reference's and
MMAction2's module names, shifts, pooling and heads, re-created independently of tsm), saves it
the way that implementation does, loads it with ``tsm.load_checkpoint`` and compares logits.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import tsm
from foreign_models import (
    MMRecognizer2D,
    ReferenceMobileNetV2,
    ReferenceTSN,
    data_parallel_state,
    online_demo_stream,
    randomize,
)
from foreign_models import assert_same_logits as _assert_same_logits
from foreign_models import save_reference_checkpoint as _save_reference
from tsm.checkpoint import UnsafeCheckpointError

T = 4  # frames per clip in these tests
SIZE = 32  # pixels
R18_NAME = f"TSM_kinetics_RGB_resnet18_shift8_blockres_avg_segment{T}_e50.pth"


def _clips(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, T, 3, SIZE, SIZE)


REFERENCE_CASES = [
    # (arch, ReferenceTSN kwargs, file name, expected tsm config)
    (
        "resnet50",
        {},
        f"TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment{T}_e50.pth",
        {"backbone": "resnet50", "shift": True, "place": "blockres", "fold_div": 8, "temporal_pool": False},
    ),
    (
        "resnet18",
        {"is_shift": False},
        f"TSM_kinetics_RGB_resnet18_avg_segment{T}_e50.pth",
        {"backbone": "resnet18", "shift": False},
    ),
    (
        "resnet18",
        {"shift_place": "block", "shift_div": 4},
        f"TSM_something_RGB_resnet18_shift4_block_avg_segment{T}_e45.pth",
        {"backbone": "resnet18", "shift": True, "place": "block", "fold_div": 4},
    ),
    (
        "resnet18",
        {"temporal_pool": True},
        f"TSM_kinetics_RGB_resnet18_shift8_blockres_tpool_avg_segment{T}_e50.pth",
        {"backbone": "resnet18", "shift": True, "temporal_pool": True},
    ),
    (
        "resnet101",
        {},
        f"TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment{T}_e45.pth",
        {"backbone": "resnet101", "shift": True, "place": "blockres"},
    ),
    (
        "mobilenetv2",
        {},
        f"TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment{T}_e100_dense.pth",
        {"backbone": "mobilenet_v2", "shift": True, "fold_div": 8},
    ),
]


@pytest.mark.parametrize(("arch", "kwargs", "file_name", "expected"), REFERENCE_CASES)
def test_reference_checkpoint_gives_the_reference_logits(tmp_path, arch, kwargs, file_name, expected):
    ref = randomize(ReferenceTSN(7, T, arch, **kwargs), calibrate_on=_clips())
    model, info = tsm.load_checkpoint(_save_reference(tmp_path / file_name, ref))
    _assert_same_logits(model, ref, _clips(), torch.float64)  # calibrated deep nets: float32 rounding grows
    assert info.format == "reference"
    assert {key: getattr(info.model_config, key) for key in expected} == expected
    assert info.model_config.num_segments == T and info.model_config.num_classes == 7
    assert info.model_config.mode == "bidirectional"
    assert f"segment{T}" in info.sources["num_segments"]
    assert info.sources["backbone"].startswith("weights")
    if arch == "resnet101":  # n_round: every other block of the deep net is shifted
        assert len(tsm.models.shifted_modules(model)) == 18
    assert info.data_config.num_segments == T
    assert info.data_config.sampling == ("dense" if "_dense" in file_name else "uniform")
    assert info.data_config.flip == ("_something" not in file_name)  # direction-sensitive classes


def test_reference_training_checkpoint_reads_its_folder_name(tmp_path):
    """main.py writes <store_name>/ckpt.best.pth.tar; old PyTorch wrote the legacy (non-zip) format."""
    ref = randomize(ReferenceTSN(5, T, "resnet18"))
    folder = tmp_path / f"TSM_something_RGB_resnet18_shift8_blockres_avg_segment{T}_e45"
    path = _save_reference(folder / "ckpt.best.pth.tar", ref, _use_new_zipfile_serialization=False)
    model, info = tsm.load_checkpoint(path)
    _assert_same_logits(model, ref, _clips())
    assert folder.name in info.sources["num_segments"]
    assert "best_prec1" in info.written_by


def _as_if_saved_on_gpu(path: Path) -> None:
    """Rewrite a torch.save zip so that its tensors say they were on cuda:0 (the reference's were)."""
    with zipfile.ZipFile(path) as source:
        entries = [(item, source.read(item.filename)) for item in source.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as target:
        for item, data in entries:
            if item.filename.endswith("data.pkl"):  # pickle protocol 2: BINUNICODE location strings
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            target.writestr(item, data)


def test_checkpoint_saved_on_a_gpu_loads_on_the_cpu(tmp_path):
    ref = randomize(ReferenceTSN(5, T, "resnet18"))
    path = _save_reference(tmp_path / R18_NAME, ref)
    _as_if_saved_on_gpu(path)
    if not torch.cuda.is_available():  # the rewritten file really names a GPU
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    model, _ = tsm.load_checkpoint(path)
    assert all(p.device.type == "cpu" for p in model.parameters())
    _assert_same_logits(model, ref, _clips())


def test_checkpoint_of_old_pytorch_without_batch_counters(tmp_path):
    ref = randomize(ReferenceTSN(5, T, "resnet18"))
    state = {k: v for k, v in data_parallel_state(ref).items() if "num_batches_tracked" not in k}
    path = tmp_path / R18_NAME
    torch.save({"state_dict": state}, path)
    model, info = tsm.load_checkpoint(path)
    _assert_same_logits(model, ref, _clips())
    assert any("num_batches_tracked" in note for note in info.notes)


def test_online_demo_checkpoint_streams_like_the_demo(tmp_path):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    path = tmp_path / "mobilenetv2_jester_online.pth.tar"
    torch.save(demo.state_dict(), path)  # the demo's file is a plain state dict
    model, info = tsm.load_checkpoint(path, num_segments=T)
    frames = torch.randn(T, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = online_demo_stream(demo, frames)
        actual = model.eval().forward_frames(frames.unsqueeze(0))[0]
    scale = expected.abs().max().item()  # float32 summation order differs: compare at this scale
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * scale)
    assert info.format == "reference-online" and model.is_online
    assert info.model_config.backbone == "mobilenet_v2" and info.model_config.fold_div == 8
    assert len(info.class_names) == 27 and info.class_names[0] == "Doing other things"
    assert info.sources["num_segments"] == "argument"


MMACTION2_CASES = [
    # (backbone, MMRecognizer2D kwargs, file name, config text in meta or None, expected tsm config)
    (
        "r50",
        {},
        f"tsm_imagenet-pretrained-r50_8xb16-1x1x{T}-50e_kinetics400-rgb_20220831-64d69186.pth",
        f"model = dict(type='Recognizer2D', backbone=dict(type='ResNetTSM', depth=50, num_segments={T}, "
        f"shift_div=8), cls_head=dict(type='TSMHead', num_classes=7, num_segments={T}))",
        {"backbone": "resnet50", "place": "blockres", "fold_div": 8},
    ),
    (
        "r18",
        {"temporal_pool": True},
        f"tsm_imagenet-pretrained-r18_8xb16-1x1x{T}-50e_kinetics400-rgb.pth",
        None,
        {"backbone": "resnet18", "temporal_pool": True},
    ),
    (
        "r18",
        {"place": "block", "shift_div": 4},
        "tsm_r18_block_sthv2.pth",
        f"backbone=dict(type='ResNetTSM', depth=18, num_segments={T}, shift_div=4, shift_place='block')",
        {"backbone": "resnet18", "place": "block", "fold_div": 4},
    ),
    (
        "mobilenetv2",
        {},
        f"tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x{T}-100e_kinetics400-rgb_20230414-401127fd.pth",
        f"backbone=dict(type='MobileNetV2TSM', shift_div=8, num_segments={T}, is_shift=True)",
        {"backbone": "mobilenet_v2", "shift": True},
    ),
]


@pytest.mark.parametrize(("backbone", "kwargs", "file_name", "config_text", "expected"), MMACTION2_CASES)
def test_mmaction2_checkpoint_gives_mmaction2_logits(
    tmp_path, backbone, kwargs, file_name, config_text, expected
):
    mm = randomize(MMRecognizer2D(backbone, 7, T, **kwargs), calibrate_on=_clips())
    checkpoint = {"state_dict": mm.state_dict(), "meta": {"mmengine_version": "0.8.4", "epoch": 50}}
    if config_text is None:  # then num_segments comes from the file name and fold_div from an argument
        overrides = {"fold_div": 8}
    else:
        checkpoint["meta"]["config" if "block" in file_name else "cfg"] = config_text  # 0.x / 1.x
        overrides = {}
    torch.save(checkpoint, tmp_path / file_name)
    model, info = tsm.load_checkpoint(tmp_path / file_name, **overrides)
    _assert_same_logits(model, mm, _clips(), torch.float64)
    assert info.format == "mmaction2"
    assert {key: getattr(info.model_config, key) for key in expected} == expected
    assert info.model_config.num_segments == T
    expected_source = "file name" if config_text is None else "checkpoint config"
    assert info.sources["num_segments"].startswith(expected_source)


def test_wrong_fold_div_changes_the_logits(tmp_path):
    """Control: the comparison above is sensitive to the settings read from the file name."""
    ref = randomize(ReferenceTSN(5, T, "resnet18"))
    path = _save_reference(tmp_path / R18_NAME, ref)
    model, info = tsm.load_checkpoint(path, fold_div=4)
    assert info.sources["fold_div"] == "argument"
    clips = _clips()
    with torch.no_grad():
        assert not torch.allclose(model.eval()(clips), ref(clips), atol=1e-3)


def test_file_name_that_disagrees_with_the_weights_is_reported(tmp_path):
    ref = randomize(ReferenceTSN(5, T, "resnet18", is_shift=False))
    path = _save_reference(
        tmp_path / f"TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment{T}_e50.pth", ref
    )
    model, info = tsm.load_checkpoint(path)
    _assert_same_logits(model, ref, _clips())
    assert info.model_config.backbone == "resnet18" and not info.model_config.shift
    joined = " ".join(info.notes)
    assert "backbone='resnet50' but the weights say 'resnet18'" in joined
    assert "shift=True but the weights say False" in joined


def test_reference_head_without_dropout_is_the_new_fc(tmp_path):
    """With --dropout 0 the reference keeps its head as base_model.fc / base_model.classifier."""
    for arch, head in (("resnet18", "fc"), ("mobilenetv2", "classifier")):
        ref = randomize(ReferenceTSN(5, T, arch), calibrate_on=_clips())
        state = {
            key.replace("module.new_fc.", f"module.base_model.{head}."): value
            for key, value in data_parallel_state(ref).items()
        }
        path = tmp_path / f"TSM_kinetics_RGB_{arch}_shift8_blockres_avg_segment{T}_e50.pth"
        torch.save({"state_dict": state}, path)
        model, _ = tsm.load_checkpoint(path)
        _assert_same_logits(model, ref, _clips(), torch.float64)


# --- error paths ----------------------------------------------------------------------------------
def test_unknown_setting_is_named(tmp_path):
    path = _save_reference(tmp_path / "ckpt.pth.tar", randomize(ReferenceTSN(5, T, "resnet18")))
    with pytest.raises(TypeError, match=r"unknown model settings \['num_segment'\].*num_segments"):
        tsm.load_checkpoint(path, num_segment=T)


def test_missing_settings_are_named_with_the_fix(tmp_path):
    path = _save_reference(tmp_path / "ckpt.pth.tar", randomize(ReferenceTSN(5, T, "resnet18")))
    with pytest.raises(ValueError, match=r"num_segments and fold_div.*--num-segments.*--fold-div"):
        tsm.load_checkpoint(path)
    with pytest.raises(ValueError, match=r"its fold_div .*--fold-div") as error:
        tsm.load_checkpoint(path, num_segments=T)
    assert "num_segments" not in str(error.value)
    _model, info = tsm.load_checkpoint(path, num_segments=T, fold_div=8)
    assert info.sources["num_segments"] == info.sources["fold_div"] == "argument"


def test_checkpoint_needing_full_unpickling_is_refused_unless_allowed(tmp_path):
    ref = randomize(ReferenceTSN(5, T, "resnet18"))
    path = tmp_path / R18_NAME
    torch.save({"state_dict": data_parallel_state(ref), "args": argparse.Namespace(lr=0.01)}, path)
    with pytest.raises(
        UnsafeCheckpointError, match=r"argparse\.Namespace.*allow_pickle=True.*--allow-pickle"
    ):
        tsm.load_checkpoint(path)
    model, _ = tsm.load_checkpoint(path, allow_pickle=True)
    _assert_same_logits(model, ref, _clips())


def test_missing_and_unexpected_keys_are_summarised(tmp_path):
    state = data_parallel_state(randomize(ReferenceTSN(5, T, "resnet18")))
    state = {k: v for k, v in state.items() if "layer4" not in k}
    state["module.base_model.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / R18_NAME
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match=r"2-2-2-0 basic blocks.*not a torchvision"):
        tsm.load_checkpoint(path)
    with pytest.raises(ValueError) as error:
        tsm.load_checkpoint(path, backbone="resnet18")
    message = str(error.value)
    assert "missing keys: base_model.layer4.0.conv1.net.weight" in message and "in all)" in message
    assert "unexpected keys: base_model.extra_head.weight" in message
    assert len(message) < 800


def test_shape_mismatch_names_the_layer_and_both_shapes(tmp_path):
    path = _save_reference(
        tmp_path / R18_NAME,
        randomize(ReferenceTSN(5, T, "resnet18")),
    )
    with pytest.raises(ValueError, match=r"new_fc\.weight: checkpoint \(5, 512\) vs model \(10, 512\)"):
        tsm.load_checkpoint(path, num_classes=10)


def test_unsupported_models_are_refused_with_the_reason(tmp_path):
    ref = ReferenceTSN(5, T, "resnet18")
    ref.base_model.conv1 = nn.Conv2d(10, 64, 7, 2, 3, bias=False)  # a Flow model (5 x 2 channels)
    path = _save_reference(
        tmp_path / f"TSM_kinetics_Flow_resnet18_shift8_blockres_avg_segment{T}_e50.pth", ref
    )
    with pytest.raises(ValueError, match=r"10 input channels.*optical flow"):
        tsm.load_checkpoint(path)
    state = data_parallel_state(ReferenceTSN(5, T, "resnet18"))
    state["module.base_model.layer2.0.nl.g.0.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, path)
    placement = r"non-local blocks after \(stage, block\) \[\('layer2', 0\)\]"
    with pytest.raises(ValueError, match=placement + ".*published"):
        tsm.load_checkpoint(path)
    state = MMRecognizer2D("r18", 5, T).state_dict()
    state["backbone.layer2.0.non_local_block.g.conv.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match=placement):
        tsm.load_checkpoint(path)


def test_files_that_are_no_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tsm.load_checkpoint(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"cannot read .* as a PyTorch checkpoint"):
        tsm.load_checkpoint(junk)
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, unknown)
    with pytest.raises(ValueError, match=r"unrecognised checkpoint layout \(first keys: encoder\.weight\)"):
        tsm.load_checkpoint(unknown)
    backbone_only = tmp_path / "resnet18-f37072fd.pth"
    torch.save({f"base_model.{k}": v for k, v in nn.Linear(2, 2).state_dict().items()}, backbone_only)
    with pytest.raises(ValueError, match="no classifier"):
        tsm.load_checkpoint(backbone_only)
    plain = tmp_path / "resnet18.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, plain)
    with pytest.raises(ValueError, match="without tsm metadata"):
        tsm.load_checkpoint(plain)

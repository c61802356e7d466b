"""MobileOne-S4 TSM: the fused form equals the branches, MMAction2's files load with their logits
(training and deploy form, the 16-frame model with its 8-frame backbone), ImageNet init, export."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import tsm
from foreign_models import MMRecognizer2D, assert_same_logits, randomize
from tsm.export import export_model, verify_export
from tsm.models import check_streamable, shifted_modules
from tsm.models.backbones.mobileone_network import MobileOne, MobileOneArch, MobileOneBlock

T = 4
SIZE = 32
TINY = MobileOneArch((1, 2, 2, 1), (0.25, 0.25, 0.25, 0.25), (2, 1, 3, 1), (0, 0, 1, 1))
MM_CONFIG = (
    "model = dict(\n    type='Recognizer2D',\n    backbone=dict(\n        type='MobileOneTSM',\n"
    "        arch='s4',\n        shift_div=8,\n        num_segments={backbone},\n        is_shift=True,\n"
    "        init_cfg=dict(type='Pretrained', checkpoint='mobileone-s4_8xb32_in1k_20221110-28d888cb.pth',"
    " prefix='backbone')),\n    cls_head=dict(\n        type='TSMHead',\n        num_segments={head},\n"
    "        num_classes=7,\n        in_channels=2048))\n"
)


def _clips(frames: int = T, batch: int = 2, seed: int = 4) -> torch.Tensor:
    return torch.randn(batch, frames, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _mm_name(frames: int, deploy: bool = False) -> str:
    variant = "mobileone-s4_deploy" if deploy else "mobileone-s4"
    return f"tsm_imagenet-pretrained-{variant}_8xb16-1x1x{frames}-50e_kinetics400-rgb_20230825-a7f8876b.pth"


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel_size", "convs", "stride", "groups", "se"),
    [
        (6, 6, 3, 2, 1, 6, False),  # depthwise with identity, scale and two conv branches
        (6, 6, 3, 1, 2, 6, True),  # strided: no identity branch
        (6, 8, 1, 3, 1, 1, True),  # pointwise that widens: no identity, no scale branch
        (8, 8, 1, 1, 1, 1, False),  # pointwise with identity
        (4, 8, 3, 1, 1, 2, False),  # grouped, widening
    ],
)
def test_reparameterized_block_equals_its_branches(
    in_channels, out_channels, kernel_size, convs, stride, groups, se
):
    block = randomize(MobileOneBlock(in_channels, out_channels, kernel_size, convs, stride, groups, se))
    x = torch.randn(3, in_channels, 7, 6)
    with torch.no_grad():
        expected = block(x)
        block.reparameterize()
        actual = block(x)
    assert block.reparameterized and not hasattr(block, "branch_conv_list")
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * expected.abs().max().item())


def test_reparameterized_network_equals_the_multi_branch_form():
    net = randomize(MobileOne(TINY, num_classes=5), calibrate_on=torch.randn(4, 3, SIZE, SIZE))
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = net(x)
        actual = net.reparameterize()(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * expected.abs().max().item())
    assert not any(".branch_" in key and "reparam" not in key for key in net.state_dict())


def test_s4_layout_is_mmpretrains():
    """Widths, SE blocks and keys of the S4 arch; the meta device keeps this instant."""
    with torch.device("meta"):
        net = MobileOne("s4")
    keys = net.state_dict()
    assert keys["stage0.branch_conv_list.0.conv.weight"].shape == (64, 3, 3, 3)
    assert keys["stage1.1.branch_conv_list.0.conv.weight"].shape == (192, 64, 1, 1)
    assert keys["stage3.19.branch_conv_list.0.conv.weight"].shape == (896, 896, 1, 1)
    assert keys["stage4.1.branch_conv_list.0.conv.weight"].shape == (2048, 896, 1, 1)
    se_blocks = {key.split(".se.")[0] for key in keys if ".se." in key}
    assert se_blocks == {f"stage3.{i}" for i in range(10, 20)} | {"stage4.0", "stage4.1"}
    assert keys["stage4.1.se.conv1.conv.weight"].shape == (128, 2048, 1, 1)  # 2048 // 16
    assert "stage1.1.branch_norm.running_var" not in keys  # 64 -> 192 keeps no identity
    assert "stage1.3.branch_norm.running_var" in keys


def _save_mm(path, mm: nn.Module, backbone: int, head: int, with_config: bool = True) -> None:
    checkpoint = {"state_dict": mm.state_dict(), "meta": {"mmengine_version": "0.8.4"}}
    if with_config:
        checkpoint["meta"]["cfg"] = MM_CONFIG.format(backbone=backbone, head=head)
    torch.save(checkpoint, path)


@pytest.mark.parametrize("deploy", [False, True])
def test_mmaction2_mobileone_checkpoint_gives_mmaction2_logits(tmp_path, deploy):
    mm = randomize(MMRecognizer2D("mobileone-s4", 7, T), calibrate_on=_clips(seed=1))
    if deploy:  # MMAction2's deploy config: the same weights, switched
        mm.backbone.switch_to_deploy()
    _save_mm(tmp_path / _mm_name(T, deploy), mm, T, T)
    model, info = tsm.load_checkpoint(tmp_path / _mm_name(T, deploy))
    assert_same_logits(model, mm, _clips(), torch.float64)
    config = info.model_config
    assert config.backbone == "mobileone_s4" and config.place == "block"
    assert config.reparameterized == deploy and config.backbone_segments is None
    assert len(shifted_modules(model)) == 2 * (2 + 8 + 10 + 1)  # stage0's empty shift is left out


def test_sixteen_frame_model_keeps_its_eight_frame_backbone(tmp_path):
    """MMAction2's 1x1x16 config sets num_segments=16 on the head only: the backbone shifts 8-frame
    windows. Loaded so, and said; a 16-frame backbone would give other logits."""
    mm = randomize(MMRecognizer2D("mobileone-s4", 7, 8, backbone_segments=4), calibrate_on=_clips(8, seed=1))
    _save_mm(tmp_path / _mm_name(8), mm, backbone=4, head=8)
    model, info = tsm.load_checkpoint(tmp_path / _mm_name(8))
    clips = _clips(8)
    assert_same_logits(model, mm, clips, torch.float64)
    assert info.model_config.num_segments == 8 and info.model_config.backbone_segments == 4
    assert any("backbone shifts 4-frame windows" in note for note in info.notes)
    whole = tsm.Recognizer(info.model_config.replace(backbone_segments=None)).eval()
    whole.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(whole.double()(clips.double()), mm(clips.double()), atol=1e-3)
    with pytest.raises(ValueError, match="4-frame windows cannot stream"):
        check_streamable(model)


def test_published_sixteen_frame_file_name_alone_gives_the_eight_frame_backbone(tmp_path):
    mm = randomize(
        MMRecognizer2D("mobileone-s4", 7, 16, backbone_segments=8), calibrate_on=_clips(16, seed=1)
    )
    _save_mm(tmp_path / _mm_name(16), mm, 8, 16, with_config=False)
    model, info = tsm.load_checkpoint(tmp_path / _mm_name(16), fold_div=8)
    assert_same_logits(model, mm, _clips(16), torch.float64)
    assert "tsm_mobileone_s4.py" in info.sources["backbone_segments"]


def test_reparameterized_model_saves_and_loads_fused(tmp_path):
    model = randomize(
        tsm.create_model("tsm_mobileone_s4", num_classes=5, num_segments=T), calibrate_on=_clips(seed=1)
    ).double()  # a deep random network: float32 rounding would grow beyond the tolerance
    clips = _clips().double()
    with torch.no_grad():
        expected = model(clips)
        fused = model.reparameterize()
        torch.testing.assert_close(fused(clips), expected, rtol=0, atol=1e-5 * expected.abs().max().item())
    path = tsm.save_checkpoint(tmp_path / "fused.safetensors", fused)
    loaded, info = tsm.load_checkpoint(path)
    assert info.model_config.reparameterized
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(clips), fused(clips), rtol=0, atol=0)


def test_mobileone_trains():
    model = tsm.create_model("tsm_mobileone_s4", num_classes=3, num_segments=2).train()
    loss = nn.functional.cross_entropy(model(_clips(2)), torch.tensor([0, 2]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == len(list(model.parameters())) and all(torch.isfinite(g).all() for g in grads)


def test_imagenet_init_from_mmpretrains_file(tmp_path, monkeypatch):
    """mmpretrain saves its ImageNet classifier as backbone.* + head.fc.* in a state_dict; tsm takes the
    backbone (from a local file, or from torch's hub cache / a download for backbone_weights='imagenet')."""
    source = randomize(MobileOne("s4"))
    state = {f"backbone.{k}": v for k, v in source.state_dict().items() if not k.startswith("head.")}
    state |= {"head.fc.weight": torch.zeros(1000, 2048), "head.fc.bias": torch.zeros(1000)}
    path = tmp_path / "mobileone-s4_8xb32_in1k_20221110-28d888cb.pth"
    torch.save({"meta": {"epoch": 300}, "state_dict": state}, path)
    model = tsm.create_model("tsm_mobileone_s4", num_classes=4, num_segments=T, backbone_weights=str(path))
    loaded = model.base_model.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("stage0."):
            assert torch.equal(loaded[key], value), key
        elif not key.startswith("head."):  # stage1-4 blocks are wrapped by their shift
            stage, block, rest = key.split(".", 2)
            assert torch.equal(loaded[f"{stage}.{block}.net.{rest}"], value), key
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copy(path, cache / path.name)  # the file the spec names, already downloaded: no network
    cached = tsm.create_model("tsm_mobileone_s4", num_classes=4, num_segments=T, backbone_weights="imagenet")
    assert all(torch.equal(value, loaded[key]) for key, value in cached.base_model.state_dict().items())


def test_mobileone_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match=r"mobileone_s4 supports place='block'"):
        tsm.Recognizer(5, num_segments=T, backbone="mobileone_s4")  # blockres is the default placement
    with pytest.raises(ValueError, match="fold_div >= 4"):
        tsm.Recognizer(5, num_segments=T, backbone="mobileone_s4", place="block", fold_div=2)
    with pytest.raises(ValueError, match="reparameterized=True is for multi-branch backbones"):
        tsm.Recognizer(5, num_segments=T, backbone="resnet18", reparameterized=True)
    with pytest.raises(ValueError, match=r"only multi-branch backbones \(MobileOne\) can be reparameterized"):
        tsm.Recognizer(5, num_segments=T, backbone="resnet18").reparameterize()
    with pytest.raises(ValueError, match="backbone_segments=3 must be a positive int that divides"):
        tsm.Recognizer(5, num_segments=T, backbone="mobileone_s4", place="block", backbone_segments=3)


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_fused_mobileone_exports(tmp_path, format):
    """At 64 px: statistics calibrated on 32 px frames of 1x1 final maps make float32 outputs chaotic."""
    size = 64
    calibration = torch.randn(4, T, 3, size, size, generator=torch.Generator().manual_seed(1))
    model = randomize(
        tsm.create_model("tsm_mobileone_s4", num_classes=6, num_segments=T), calibrate_on=calibration
    )
    model.reparameterize()
    path = tmp_path / ("model.onnx" if format == "onnx" else "model.pt")
    video = torch.randn(2, T, 3, size, size, generator=torch.Generator().manual_seed(2))
    check = export_model(
        model, path, frame_size=size, check_inputs={"video": video}, onnx_exporter="torchscript"
    )
    assert check.passed, check.summary()
    other = tsm.Recognizer(model.config).eval()  # not vacuous: one changed bias fails the check
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.base_model.stage3[0].net.branch_reparam.bias.add_(0.5)
    assert not verify_export(path, other).passed

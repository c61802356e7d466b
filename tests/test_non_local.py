"""Non-local TSM: the block against mmcv's and the reference's semantics, both publishers' files
loaded with their logits, the mode read and never guessed, memory, streaming and export."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import tsm
from foreign_models import (
    MMNonLocal3d,
    MMRecognizer2D,
    ReferenceNonLocalBlock3D,
    ReferenceTSN,
    assert_same_logits,
    randomize,
    save_reference_checkpoint,
)
from test_shift import _saved_bytes
from tsm.export import export_model, verify_export
from tsm.models import check_streamable
from tsm.models.non_local import NonLocal, add_non_local, non_local_blocks

T = 4
SIZE = 32
MODES = ["embedded_gaussian", "gaussian", "dot_product"]
NL_REFERENCE_NAME = f"TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment{T}_e100_dense_nl.pth"


def _clips(batch: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randn(batch, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _mmcv_keys_to_tsm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Written out for the test: mmcv's ConvModule names and 1x1x1 kernels -> tsm's NonLocal."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("conv_out.bn.", "W.1.").replace("conv_out.conv.", "W.0.").replace(".conv.", ".")
        renamed[key] = value.flatten(2)[..., None] if value.dim() == 5 else value
    return renamed


def _as_clip(frames: torch.Tensor, segments: int) -> torch.Tensor:
    """(N*T, C, H, W) -> the (N, C, T, H, W) view the publishers' 3D blocks take."""
    return frames.view(-1, segments, *frames.shape[1:]).transpose(1, 2).contiguous()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sub_sample", [True, False])
@pytest.mark.parametrize(
    ("clips", "segments", "channels", "height", "width"), [(2, 3, 6, 4, 5), (1, 2, 9, 5, 3)]
)
def test_block_matches_mmcv_non_local3d(mode, sub_sample, clips, segments, channels, height, width):
    """Odd sizes too: max pooling floors them (MaxPool3d (1, 2, 2) drops the last row/column)."""
    mm = randomize(MMNonLocal3d(channels, sub_sample=sub_sample, use_scale=False, mode=mode), 5)
    block = NonLocal(channels, segments, mode, sub_sample).eval()
    block.load_state_dict(_mmcv_keys_to_tsm(mm.state_dict()))
    x = torch.randn(clips * segments, channels, height, width)
    with torch.no_grad():
        expected = mm(_as_clip(x, segments))
        actual = _as_clip(block(x), segments)
    assert (expected - _as_clip(x, segments)).abs().max() > 0.1  # the block does change its input
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_block_matches_the_reference_after_folding_its_bias():
    ref = randomize(ReferenceNonLocalBlock3D(8), 2)
    block = NonLocal(8, 3).eval()
    state = {
        key: value.flatten(2)[..., None] if value.dim() == 5 else value
        for key, value in ref.state_dict().items()
    }
    state["W.1.running_mean"] = state["W.1.running_mean"] - state.pop("W.0.bias")
    block.load_state_dict(state)
    x = torch.randn(6, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(_as_clip(block(x), 3), ref(_as_clip(x, 3)), rtol=0, atol=1e-5)


def test_fresh_block_is_the_identity_and_clips_stay_apart():
    block = NonLocal(8, 2).eval()
    x = torch.randn(4, 8, 4, 4)
    assert torch.equal(block(x), x)  # zero-initialised BatchNorm: pretrained networks start unchanged
    randomize(block)
    with torch.no_grad():
        changed = x.clone()
        changed[2:] += 1.0  # the second clip only
        assert torch.equal(block(changed)[:2], block(x)[:2])
        assert not torch.allclose(block(changed)[2:], block(x)[2:] + 1.0)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode):
    block = randomize(NonLocal(4, 2, mode)).double().train()
    x = torch.randn(4, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


@pytest.mark.parametrize("mode", MODES)
def test_block_keeps_no_affinity_for_backward(mode):
    """The (T*H*W) x (T*h*w) affinity is 1 MiB here, ten times what the block needs to keep."""
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    affinity_bytes = (4 * 16 * 16) * (4 * 8 * 8) * 4
    assert _saved_bytes(NonLocal(8, 4, mode).train(), x) < affinity_bytes / 4


def test_tsm_non_local_keeps_no_more_for_backward_than_tsn_non_local():
    clips = torch.randn(1, T, 3, SIZE, SIZE)
    tsm_nl = tsm.create_model("tsm_resnet50_nl", num_classes=5, num_segments=T).train()
    tsn_nl = tsm.create_model("tsn_resnet50_nl", num_classes=5, num_segments=T).train()
    assert len(non_local_blocks(tsm_nl)) == len(non_local_blocks(tsn_nl)) == 5
    assert _saved_bytes(tsm_nl, clips) == _saved_bytes(tsn_nl, clips)


def test_non_local_model_trains():
    model = tsm.create_model("tsm_resnet50_nl", num_classes=3, num_segments=T).train()
    nn.functional.cross_entropy(model(_clips()), torch.tensor([0, 2])).backward()
    for block in non_local_blocks(model):  # the zero-initialised output BatchNorm learns first
        assert block.W[1].weight.grad.abs().sum() > 0
        assert torch.isfinite(block.theta.weight.grad).all()


def test_native_checkpoint_keeps_the_mode(tmp_path):
    model = randomize(tsm.create_model("tsm_resnet50_nl_dot_product", num_classes=5, num_segments=T))
    loaded, info = tsm.load_checkpoint(tsm.save_checkpoint(tmp_path / "nl.safetensors", model))
    assert info.model_config.non_local == "dot_product"
    with torch.no_grad():
        assert torch.equal(loaded.eval()(_clips()), model(_clips()))


# --- the reference's checkpoints --------------------------------------------------------------------
def test_reference_non_local_checkpoint_gives_the_reference_logits(tmp_path):
    ref = randomize(ReferenceTSN(7, T, "resnet50", non_local=True), calibrate_on=_clips(seed=1))
    model, info = tsm.load_checkpoint(save_reference_checkpoint(tmp_path / NL_REFERENCE_NAME, ref))
    assert_same_logits(model, ref, _clips(), torch.float64)
    assert info.model_config.non_local == "embedded_gaussian"
    assert "_nl" in info.sources["non_local"] and "5 non-local blocks" in info.sources["non_local"]
    assert any("folded into the running mean" in note for note in info.notes)
    assert info.data_config.sampling == "dense"
    # Control: the comparison sees the non-local blocks (zero them and the logits move).
    for block in non_local_blocks(model):
        nn.init.zeros_(block.W[1].weight)
        nn.init.zeros_(block.W[1].bias)
    with torch.no_grad():
        assert not torch.allclose(model(_clips().double()), ref(_clips().double()), atol=1e-3)


def test_reference_training_checkpoint_without_a_name_uses_its_only_mode(tmp_path):
    ref = randomize(ReferenceTSN(5, T, "resnet50", non_local=True), calibrate_on=_clips(seed=1))
    model, info = tsm.load_checkpoint(
        save_reference_checkpoint(tmp_path / "ckpt.pth.tar", ref), num_segments=T, fold_div=8
    )
    assert_same_logits(model, ref, _clips(), torch.float64)
    assert info.sources["non_local"].startswith("the reference's only non-local mode")


# --- MMAction2's checkpoints ------------------------------------------------------------------------
def _mm_config_text(mode: str, use_scale: bool = False) -> str:
    """The model part of the config MMAction2 stores in meta['cfg'] (its r50-nl-* configs, merged)."""
    return (
        "model = dict(\n    type='Recognizer2D',\n    backbone=dict(\n        type='ResNetTSM',\n"
        "        pretrained='torchvision://resnet50',\n        depth=50,\n        norm_eval=False,\n"
        f"        shift_div=8,\n        num_segments={T},\n"
        "        non_local=((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0)),\n"
        f"        non_local_cfg=dict(\n            sub_sample=True,\n            use_scale={use_scale},\n"
        "            norm_cfg=dict(type='BN3d', requires_grad=True),\n"
        f"            mode='{mode}')),\n    cls_head=dict(\n        type='TSMHead',\n        num_classes=7,\n"
        f"        in_channels=2048,\n        num_segments={T},\n        is_shift=True))\n"
        "test_pipeline = [dict(type='SampleFrames', clip_len=1, frame_interval=1, test_mode=True)]\n"
    )


# The date and hash suffixes of the published files (MMAction2's configs/recognition/tsm/metafile.yml).
_MM_SUFFIXES = {
    "embedded_gaussian": "20220831-35eddb57",
    "gaussian": "20220831-7e54dacf",
    "dot_product": "20220831-108bfde5",
}


def _mm_name(mode: str) -> str:
    return (
        f"tsm_imagenet-pretrained-r50-nl-{mode.replace('_', '-')}_8xb16-1x1x{T}-50e_kinetics400-rgb_"
        f"{_MM_SUFFIXES[mode]}.pth"
    )


def _mm_non_local(mode: str) -> MMRecognizer2D:
    cfg = {"sub_sample": True, "use_scale": False, "norm_cfg": {"type": "BN3d"}, "mode": mode}
    return randomize(MMRecognizer2D("r50", 7, T, non_local_cfg=cfg), calibrate_on=_clips(seed=1))


@pytest.mark.parametrize("mode", MODES)
def test_mmaction2_non_local_checkpoint_gives_mmaction2_logits(tmp_path, mode):
    mm = _mm_non_local(mode)
    path = tmp_path / _mm_name(mode)
    torch.save({"state_dict": mm.state_dict(), "meta": {"cfg": _mm_config_text(mode)}}, path)
    model, info = tsm.load_checkpoint(path)
    assert_same_logits(model, mm, _clips(), torch.float64)
    assert info.model_config.non_local == mode
    # gaussian blocks are told by their weights (no theta/phi); the other two by the config
    assert ("weights" if mode == "gaussian" else "non_local_cfg") in info.sources["non_local"]


def test_mmaction2_mode_comes_from_the_file_name_without_config(tmp_path):
    mm = _mm_non_local("dot_product")
    path = tmp_path / _mm_name("dot_product")
    torch.save({"state_dict": mm.state_dict()}, path)
    model, info = tsm.load_checkpoint(path, fold_div=8)
    assert_same_logits(model, mm, _clips(), torch.float64)
    assert info.sources["non_local"].startswith("file name ('nl-dot-product')")


def test_mode_is_never_guessed(tmp_path):
    mm = _mm_non_local("dot_product")
    path = tmp_path / f"tsm_r50_8xb16-1x1x{T}-50e_kinetics400-rgb.pth"  # no mode in the name, no config
    torch.save({"state_dict": mm.state_dict()}, path)
    with pytest.raises(ValueError, match=r"theta/phi weights.*non_local='embedded_gaussian' or non_local="):
        tsm.load_checkpoint(path, fold_div=8)
    # Control: the mode matters, so guessing would give other logits.
    model, info = tsm.load_checkpoint(path, fold_div=8, non_local="embedded_gaussian")
    assert info.sources["non_local"] == "argument"
    with torch.no_grad():
        assert not torch.allclose(model.eval()(_clips()), mm(_clips()), atol=1e-3)
    # The weights tell gaussian blocks (no theta/phi) apart from the other two.
    gaussian = tmp_path / _mm_name("gaussian").replace("gaussian", "embedded-gaussian")
    torch.save({"state_dict": _mm_non_local("gaussian").state_dict()}, gaussian)
    _, info = tsm.load_checkpoint(gaussian, fold_div=8)
    assert info.model_config.non_local == "gaussian"
    assert any("says non_local='embedded_gaussian' but the weights say 'gaussian'" in n for n in info.notes)


def test_scaled_embedded_gaussian_is_refused(tmp_path):
    path = tmp_path / _mm_name("embedded_gaussian")
    state = _mm_non_local("embedded_gaussian").state_dict()
    torch.save(
        {"state_dict": state, "meta": {"cfg": _mm_config_text("embedded_gaussian", use_scale=True)}}, path
    )
    with pytest.raises(ValueError, match=r"use_scale=True.*unscaled"):
        tsm.load_checkpoint(path)


# --- building, streaming, export --------------------------------------------------------------------
def test_non_local_recognizer_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="unknown non-local mode 'concatenation'"):
        tsm.Recognizer(5, num_segments=T, backbone="resnet50", non_local="concatenation")
    with pytest.raises(ValueError, match="temporal pooling"):
        tsm.Recognizer(5, num_segments=T, backbone="resnet50", non_local="gaussian", temporal_pool=True)
    with pytest.raises(ValueError, match=r"layer2, which has 2 blocks.*ResNets: 34/50/101/152"):
        tsm.Recognizer(5, num_segments=T, backbone="resnet18", non_local="gaussian")
    with pytest.raises(ValueError, match="non-local blocks are not supported by mobilenet_v2"):
        tsm.Recognizer(5, num_segments=T, backbone="mobilenet_v2", non_local="gaussian")
    model = tsm.create_model("tsm_resnet50_nl", num_classes=5, num_segments=T)
    with pytest.raises(ValueError, match="twice"):
        add_non_local(model.base_model, T, tsm.models.backbone_spec("resnet50").non_local_sites)


def test_streaming_refuses_non_local_with_the_reason():
    model = tsm.create_model("tsm_online_resnet50", num_classes=5, num_segments=T, non_local="gaussian")
    with pytest.raises(ValueError, match=r"non-local blocks cannot stream.*whole clip, future frames"):
        check_streamable(model)


@pytest.mark.parametrize(
    ("mode", "format"), [("embedded_gaussian", "onnx"), ("dot_product", "onnx"), ("gaussian", "torchscript")]
)
def test_non_local_model_exports(tmp_path, mode, format):
    # Random statistics, not calibrated ones: those make float32 (onnxruntime's) outputs chaotic here.
    model = randomize(tsm.Recognizer(6, num_segments=T, backbone="resnet34", non_local=mode))
    path = tmp_path / ("model.onnx" if format == "onnx" else "model.pt")
    check = export_model(
        model, path, frame_size=SIZE, check_inputs={"video": _clips()}, onnx_exporter="torchscript"
    )
    assert check.passed, check.summary()
    # Not vacuous: the same network with its non-local blocks switched off fails the check.
    without = tsm.Recognizer(model.config).eval()
    without.load_state_dict(model.state_dict())
    for block in non_local_blocks(without):
        nn.init.zeros_(block.W[1].weight)
    assert not verify_export(path, without).passed


@pytest.mark.slow
def test_non_local_model_exports_with_the_dynamo_exporter(tmp_path):
    """PyTorch's default (torch.export-based) ONNX exporter: attention as 4-D (one head) tensors."""
    model = randomize(tsm.Recognizer(6, num_segments=T, backbone="resnet34", non_local="embedded_gaussian"))
    check = export_model(model, tmp_path / "model.onnx", frame_size=SIZE, check_inputs={"video": _clips()})
    assert check.passed, check.summary()

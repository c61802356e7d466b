"""Backbone surgery, temporal pooling, the recognizer, parameter groups and the model registry."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import torch
import torchvision
from torch import nn

import tsm
from tsm.download import MIRROR_VARIABLE, DownloadError
from tsm.models import add_temporal_pool, backbone_builder, shifted_modules


def shifted_names(net: nn.Module) -> list[str]:
    return [name for name, module in net.named_modules() if isinstance(module, tsm.TemporalShift)]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [(18, 8), (34, 16), (50, 16), (101, 18), (152, 26)],
)
def test_resnet_shift_counts_follow_n_round(depth, expected):
    """All blocks are shifted, except every other block once layer3 has >= 23 blocks."""
    net = tsm.make_temporal_shift(torchvision.models.get_model(f"resnet{depth}"), num_segments=8)
    names = shifted_names(net)
    assert len(names) == expected
    if depth >= 101:
        assert all(int(name.split(".")[1]) % 2 == 0 for name in names)


def test_blockres_wraps_conv1_and_keeps_identity_unshifted():
    net = tsm.make_temporal_shift(torchvision.models.resnet50(), num_segments=4)
    assert shifted_names(net)[:2] == ["layer1.0.conv1", "layer1.1.conv1"]
    assert "layer1.0.conv1.net.weight" in net.state_dict()
    block = net.layer1[1].eval()
    x = torch.randn(8, 256, 6, 6)
    plain = torchvision.models.resnet50().layer1[1].eval()
    plain.load_state_dict({k.replace("conv1.net.", "conv1."): v for k, v in block.state_dict().items()})
    # Identity path sees x itself, only conv1 sees the shifted frames.
    out = plain.relu(plain.bn1(plain.conv1(tsm.temporal_shift(x, 4))))
    out = plain.relu(plain.bn2(plain.conv2(out)))
    expected = plain.relu(plain.bn3(plain.conv3(out)) + x)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


def test_block_placement_wraps_whole_blocks():
    net = tsm.make_temporal_shift(torchvision.models.resnet18(), num_segments=4, place="block")
    assert shifted_names(net) == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    assert "layer1.0.net.conv1.weight" in net.state_dict()


def test_mobilenet_v2_positions():
    net = tsm.make_temporal_shift(torchvision.models.mobilenet_v2(), num_segments=8)
    positions = [int(name.split(".")[1]) for name in shifted_names(net)]
    assert positions == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]
    assert all(name.endswith("conv.0.0") for name in shifted_names(net))


def test_temporal_pool_matches_naive_max_over_time():
    x = torch.randn(2 * 5, 3, 2, 2)
    out = tsm.temporal_pool(x, num_segments=5)
    assert out.shape == (2 * 3, 3, 2, 2)
    clips = x.view(2, 5, 3, 2, 2)
    for n in range(2):
        for t_out, t in enumerate(range(0, 5, 2)):
            window = clips[n, max(t - 1, 0) : t + 2]
            assert torch.equal(out[n * 3 + t_out], window.max(dim=0).values)


def test_temporal_pool_network_stages():
    net = tsm.make_temporal_shift(torchvision.models.resnet50(), num_segments=8, temporal_pool=True)
    assert isinstance(net.layer2, tsm.TemporalPool)
    assert "layer2.net.0.conv1.net.weight" in net.state_dict()
    segments = [m.num_segments for m in shifted_modules(net)]
    assert segments == [8] * 3 + [4] * 13
    model = tsm.Recognizer(7, num_segments=8, backbone="resnet18", temporal_pool=True).eval()
    clips = torch.randn(2, 8, 3, 32, 32)
    assert model.forward_frames(clips).shape == (2, 4, 7)
    assert model(clips).shape == (2, 7)


def test_converting_twice_and_unsupported_networks_are_refused():
    net = tsm.make_temporal_shift(torchvision.models.resnet18(), num_segments=8)
    with pytest.raises(ValueError, match="converting it twice is refused"):
        tsm.make_temporal_shift(net, num_segments=8)
    with pytest.raises(TypeError, match="supported are torchvision ResNet"):
        tsm.make_temporal_shift(torchvision.models.vgg11(), num_segments=8)
    with pytest.raises(ValueError, match="unknown shift placement"):
        tsm.make_temporal_shift(torchvision.models.resnet18(), num_segments=8, place="everywhere")
    with pytest.raises(ValueError, match="twice"):
        add_temporal_pool(add_temporal_pool(torchvision.models.resnet18(), 8), 8)


def test_recognizer_head_and_consensus():
    model = tsm.Recognizer(11, num_segments=4, backbone="resnet18", dropout=0.5).eval()
    assert model.new_fc.out_features == 11
    assert model.new_fc.bias.abs().sum() == 0
    assert 0.0005 < model.new_fc.weight.std().item() < 0.0015
    assert not any(k.startswith("base_model.fc.") for k in model.state_dict())
    clips = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        frames = model.forward_frames(clips)
        assert frames.shape == (3, 4, 11)
        torch.testing.assert_close(model(clips), frames.mean(dim=1))


def test_recognizer_equals_manual_tsn_computation():
    """Frames go through the backbone as one batch of N*T; the clip score is the mean logit."""
    model = tsm.Recognizer(5, num_segments=3, backbone="resnet18", shift=False).eval()
    clips = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        per_frame = torch.stack([model.new_fc(model.base_model(clips[:, t])) for t in range(3)], dim=1)
        torch.testing.assert_close(model(clips), per_frame.mean(dim=1), atol=1e-5, rtol=1e-5)


def test_tsn_has_no_shift():
    assert shifted_modules(tsm.create_model("tsn_resnet50", num_classes=3)) == []
    assert len(shifted_modules(tsm.create_model("tsm_resnet50", num_classes=3))) == 16


def test_wrong_clip_shapes_get_clear_errors():
    model = tsm.Recognizer(5, num_segments=8, backbone="resnet18")
    with pytest.raises(ValueError, match="T=4 frames but the model was built with num_segments=8"):
        model(torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        model(torch.randn(8, 3, 32, 32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 3, "backbone": "vgg16"}, "unknown backbone 'vgg16'"),
        ({"num_classes": 3, "mode": "forward"}, "unknown shift mode"),
        ({"num_classes": 3, "dropout": 1.0}, "dropout"),
        ({"num_classes": 3, "backbone": "resnet18", "reparameterized": True}, "no branches to fuse"),
        (
            {"num_classes": 3, "backbone": "mobilenet_v2", "non_local": "gaussian"},
            "not supported by mobilenet",
        ),
        (
            {"num_classes": 3, "num_segments": 8, "backbone_segments": 3},
            "must be a positive int that divides",
        ),
        ({"num_classes": 3, "pretrained": "imagenet"}, "backbone_weights='imagenet'"),
        (
            {"num_classes": 3, "backbone": "mobilenet_v2", "temporal_pool": True},
            "temporal pooling is not supported by mobilenet_v2",
        ),
    ],
)
def test_recognizer_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tsm.Recognizer(**kwargs)


@pytest.mark.parametrize("fc_lr5", [False, True])
def test_param_groups_partition_parameters(fc_lr5):
    model = tsm.Recognizer(5, num_segments=2, backbone="resnet18")
    groups = model.param_groups(lr=0.01, weight_decay=1e-4, fc_lr5=fc_lr5)
    seen = [id(p) for group in groups for p in group["params"]]
    assert len(seen) == len(set(seen)) == len(list(model.parameters()))
    by_name = {group["name"]: group for group in groups}
    assert by_name["weight"]["lr"] == 0.01 and by_name["weight"]["weight_decay"] == 1e-4
    assert by_name["norm"]["weight_decay"] == 0
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert {id(p) for p in by_name["norm"]["params"]} == norm_ids
    if fc_lr5:
        assert by_name["fc_weight"]["params"] == [model.new_fc.weight]
        assert by_name["fc_weight"]["lr"] == pytest.approx(0.05)
        assert by_name["fc_bias"]["lr"] == pytest.approx(0.1) and by_name["fc_bias"]["weight_decay"] == 0
        assert "bias" not in by_name  # ResNet convs have no biases: the fc bias was the only one
    else:
        assert any(p is model.new_fc.weight for p in by_name["weight"]["params"])
        assert by_name["bias"]["params"] == [model.new_fc.bias]
        assert by_name["bias"]["lr"] == 0.02 and by_name["bias"]["weight_decay"] == 0
    torch.optim.SGD(groups, lr=0.01, momentum=0.9)  # accepted as is


def test_partial_bn_freezes_all_but_first_batch_norm():
    model = tsm.Recognizer(5, num_segments=2, backbone="resnet18", partial_bn=True).train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms[0].training and norms[0].weight.requires_grad
    assert all(not m.training and not m.weight.requires_grad for m in norms[1:])
    before = norms[1].running_mean.clone()
    model(torch.randn(1, 2, 3, 32, 32))
    assert torch.equal(norms[1].running_mean, before)
    full = tsm.Recognizer(5, num_segments=2, backbone="resnet18").train()
    assert all(m.training for m in full.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])
def test_pretrained_from_local_file(tmp_path, backbone):
    source = torchvision.models.get_model(backbone)
    path = tmp_path / f"{backbone}.pth"
    torch.save(source.state_dict(), path)
    model = tsm.Recognizer(3, num_segments=2, backbone=backbone, backbone_weights=path)
    loaded = {k.replace(".net.", "."): v for k, v in model.base_model.state_dict().items()}
    for key, value in source.state_dict().items():
        if not key.startswith(("fc.", "classifier.")):
            assert torch.equal(loaded[key], value), key


def test_pretrained_file_that_does_not_fit(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(ValueError, match="do not fit resnet18"):
        tsm.Recognizer(3, backbone="resnet18", backbone_weights=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tsm.Recognizer(3, backbone="resnet18", backbone_weights=tmp_path / "missing.pth")


def test_imagenet_download_failure_names_the_cache_path_and_the_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    target = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(DownloadError, match=f"put the file at {target}.*{MIRROR_VARIABLE}"):
        tsm.Recognizer(3, backbone="resnet18", backbone_weights="imagenet")
    with pytest.raises(ValueError, match="has no weights 'IMAGENET9K'"):
        backbone_builder.imagenet_state_dict("resnet18", "IMAGENET9K")


@pytest.mark.parametrize(
    ("backbone", "filename"),
    [
        ("resnet18", "resnet18-f37072fd.pth"),
        ("mobileone_s4", "mobileone-s4_8xb32_in1k_20221110-28d888cb.pth"),
    ],
)
def test_imagenet_weights_are_verified_like_published_checkpoints(monkeypatch, tmp_path, backbone, filename):
    """The ImageNet files go through the verified downloader: a mirror's file whose sha256 does not
    start with the prefix in its name, or a web page saved under its name, is refused and not cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.as_uri())
    (mirror / filename).write_bytes(b"not the published weights")
    with pytest.raises(DownloadError, match=r"has sha256 .* starts with"):
        tsm.Recognizer(3, backbone=backbone, shift=False, backbone_weights="imagenet")
    (mirror / filename).write_bytes(b"<!DOCTYPE html><html>moved</html>")
    with pytest.raises(DownloadError, match="web page"):
        tsm.Recognizer(3, backbone=backbone, shift=False, backbone_weights="imagenet")
    assert not list((tmp_path / "torch" / "hub" / "checkpoints").glob("*.pth"))


def test_registry():
    names = tsm.list_models()
    for name in (
        "tsm_resnet50",
        "tsn_resnet50",
        "tsm_mobilenet_v2",
        "tsm_resnet18",
        "tsm_online_mobilenet_v2",
    ):
        assert name in names
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=4)
    assert model.is_online and model.config.backbone == "mobilenet_v2"
    assert tsm.create_model("tsm_resnet18", num_classes=3, dropout=0.1).config.dropout == 0.1
    with pytest.raises(ValueError, match="unknown model 'tsm_vgg'"):
        tsm.create_model("tsm_vgg")

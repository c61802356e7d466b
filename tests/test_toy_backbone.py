"""A backbone that is no ResNet variant, added as one spec and nothing else, goes through every
part of tsm: it builds as TSN and TSM, trains, streams frame by frame, exports, and round-trips
through this project's checkpoints and through the reference's file layout (its weights reveal it)."""

from __future__ import annotations

import re

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tsm
from tsm.export import export_model
from tsm.inference import StreamingRecognizer
from tsm.models import (
    BACKBONES,
    BackboneSpec,
    Setting,
    register_backbone,
    shifted_modules,
)
from tsm.ops import TemporalShift
from tsm.training import OptimizerConfig, RecognizerModule

T = 4


class ToyBlock(nn.Module):
    """A residual block: conv-BN-ReLU-conv-BN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm_a = nn.BatchNorm2d(channels)
        self.conv_b = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm_b = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm_a(self.conv_a(x)))
        return torch.relu(x + self.norm_b(self.conv_b(y)))


class ToyNet(nn.Module):
    """A stem, ``blocks`` of two residual blocks, global pooling and an ImageNet-style head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16))
        self.blocks = nn.Sequential(ToyBlock(16), ToyBlock(16))
        self.head = nn.Linear(16, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def _shift_toy(net, segments_per_stage, fold_div, place, mode) -> None:
    """Shift before each block's first conv (the residual path stays unshifted)."""
    for block in net.blocks:
        block.conv_a = TemporalShift(block.conv_a, segments_per_stage[0], fold_div, mode)


_SHIFTED = re.compile(r"^base_model\.blocks\.(\d+)\.conv_a\.net\.")


def _reveal_toy(state) -> dict[str, Setting] | None:
    if not any(key.startswith("base_model.blocks.") for key in state):
        return None
    shifted = {match[1] for key in state if (match := _SHIFTED.match(key))}
    settings = {
        "backbone": Setting("toynet", "weights: ToyNet blocks"),
        "temporal_pool": Setting(False, "weights: no temporal pool"),
        "shift": Setting(bool(shifted), f"weights: {len(shifted)} shifted blocks"),
    }
    if shifted:
        settings["place"] = Setting("blockres", "weights: shifts wrap conv_a")
    return settings


TOY = BackboneSpec(
    name="toynet",
    build=ToyNet,
    network_type=ToyNet,
    head="head",
    insert_shifts=_shift_toy,
    placements=("blockres",),
    reveal=_reveal_toy,
)


@pytest.fixture
def toy_backbone(monkeypatch):
    monkeypatch.setattr("tsm.models.specs.BACKBONES", dict(BACKBONES))
    register_backbone(TOY)
    return TOY


def _clips(count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, T, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_the_toy_backbone_builds_as_tsn_and_tsm_and_refuses_what_its_spec_lacks(toy_backbone):
    assert "toynet" in tsm.list_backbones()
    tsm_model = tsm.Recognizer(3, num_segments=T, backbone="toynet")
    assert (
        len(shifted_modules(tsm_model)) == 2
        and shifted_modules(tsm.Recognizer(3, backbone="toynet", shift=False)) == []
    )
    with torch.no_grad():
        assert tsm_model.eval()(_clips()).shape == (2, 3)
    with pytest.raises(ValueError, match="temporal pooling is not supported by toynet"):
        tsm.Recognizer(3, backbone="toynet", temporal_pool=True)
    with pytest.raises(ValueError, match="non-local blocks are not supported by toynet"):
        tsm.Recognizer(3, backbone="toynet", non_local="gaussian")
    with pytest.raises(ValueError, match="no ImageNet weights for toynet"):
        tsm.Recognizer(3, backbone="toynet", backbone_weights="imagenet")


def test_the_toy_backbone_trains(toy_backbone, tmp_path):
    torch.manual_seed(0)
    network = tsm.Recognizer(2, num_segments=T, backbone="toynet", dropout=0.0)
    before = {key: value.clone() for key, value in network.state_dict().items()}
    module = RecognizerModule(network, num_classes=2, num_segments=T, optimizer=OptimizerConfig(lr=0.05))
    loader = DataLoader(TensorDataset(_clips(8), torch.arange(8) % 2), batch_size=4)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader)
    changed = [key for key, value in network.state_dict().items() if not torch.equal(value, before[key])]
    assert any(key.startswith("base_model.blocks.0.conv_a.net.") for key in changed)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])


def test_the_toy_backbone_streams_as_the_offline_model(toy_backbone):
    model = tsm.Recognizer(3, num_segments=T, backbone="toynet", mode="unidirectional").eval()
    clip = _clips(1)
    with torch.no_grad():
        offline = model.forward_frames(clip)[0]
    stream = StreamingRecognizer(model)
    online = torch.stack([stream.step(clip[:, t])[0] for t in range(T)])
    torch.testing.assert_close(online, offline, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("suffix", "streaming"), [(".onnx", False), (".pt", True)])
def test_the_toy_backbone_exports(toy_backbone, tmp_path, suffix, streaming):
    model = tsm.Recognizer(3, num_segments=T, backbone="toynet", mode="unidirectional")
    check = export_model(
        model, tmp_path / f"toy{suffix}", streaming=streaming, frame_size=32, onnx_exporter="torchscript"
    )
    assert check.passed, check.summary()


def test_the_toy_backbone_round_trips_through_both_file_kinds(toy_backbone, tmp_path):
    model = tsm.Recognizer(3, num_segments=T, backbone="toynet", fold_div=4).eval()
    for module in model.modules():  # statistics an init would not have: a wrong mapping shows
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_()
    clips = _clips()
    with torch.no_grad():
        expected = model(clips)
    native, info = tsm.load_checkpoint(tsm.save_checkpoint(tmp_path / "toy.safetensors", model))
    assert info.model_config == model.config
    # The reference's layout: DataParallel keys, settings in the file name; the weights reveal the backbone.
    path = tmp_path / "TSM_kinetics_RGB_toynet_shift4_blockres_avg_segment4_e1.pth"
    torch.save({"state_dict": {f"module.{key}": value for key, value in model.state_dict().items()}}, path)
    foreign, foreign_info = tsm.load_checkpoint(path)
    assert foreign_info.format == "reference" and foreign_info.sources["backbone"] == "weights: ToyNet blocks"
    assert foreign_info.model_config == model.config
    with torch.no_grad():
        for loaded in (native, foreign):
            torch.testing.assert_close(loaded.eval()(clips), expected, rtol=0, atol=0)


@pytest.fixture
def toy_architecture(toy_backbone):
    """An architecture of the toy backbone registered from here; unregistered afterwards."""
    config = tsm.register_model("tsm_toynet_fold4", backbone="toynet", fold_div=4, dropout=0.0)
    yield config
    tsm.unregister_model("tsm_toynet_fold4")


def test_a_backbone_and_an_architecture_registered_from_outside_are_listed_and_built(toy_architecture):
    """Registering the backbone gives its three standard architectures; register_model adds others."""
    assert tsm.list_models("toynet") == ["tsm_online_toynet", "tsm_toynet", "tsm_toynet_fold4", "tsn_toynet"]
    expected = {  # name: (shift, mode, fold_div)
        "tsm_toynet": (True, "bidirectional", 8),
        "tsn_toynet": (False, "bidirectional", 8),
        "tsm_online_toynet": (True, "unidirectional", 8),
        "tsm_toynet_fold4": (True, "bidirectional", 4),
    }
    for name, (shift, mode, fold_div) in expected.items():
        model = tsm.create_model(name, num_classes=3, num_segments=T).eval()
        config = model.config
        assert (config.backbone, config.shift, config.mode) == ("toynet", shift, mode)
        assert config.fold_div == fold_div
        assert len(shifted_modules(model)) == (2 if shift else 0)
        with torch.no_grad():
            assert model(_clips()).shape == (2, 3)
    assert tsm.create_model("tsm_toynet_fold4").config == toy_architecture  # 400 classes, 8 frames
    with pytest.raises(ValueError, match=r"^model 'tsm_toynet_fold4' is registered already \("):
        tsm.register_model("tsm_toynet_fold4", backbone="toynet")
    with pytest.raises(ValueError, match=r"^model 'tsm_online_toynet' is registered already"):
        tsm.register_model("tsm_online_toynet", backbone="toynet")  # a standard one too
    with pytest.raises(ValueError, match="standard architecture of a registered backbone"):
        tsm.unregister_model("tsm_toynet")


def test_a_tag_registered_from_outside_is_listed_and_gone_with_its_architecture(toy_architecture):
    import dataclasses

    published = tsm.pretrained_info("tsm_resnet50.reference_kinetics400_8f")
    tag = dataclasses.replace(
        published, name="tsm_toynet_fold4.mine_kinetics400_4f", legacy_name="", url="https://example.org/m.pth",
        model_config=toy_architecture.replace(num_segments=T),
    )  # fmt: skip
    tsm.register_pretrained(tag)
    assert tsm.list_pretrained("toynet") == [tag.name]
    assert tsm.create_model(tag.name).config == toy_architecture.replace(num_segments=T)
    with pytest.raises(ValueError, match="registered already"):
        tsm.register_pretrained(tag)
    with pytest.raises(ValueError, match=r"ARCHITECTURE of tsm\.list_models"):
        tsm.register_pretrained(dataclasses.replace(tag, name="tsm_vgg.mine"))
    tsm.unregister_model("tsm_toynet_fold4")  # its tags go with it
    assert tsm.list_pretrained("toynet") == [] and "tsm_toynet_fold4" not in tsm.list_models()
    tsm.register_model("tsm_toynet_fold4", toy_architecture)  # for the fixture to remove


def test_names_of_a_backbone_go_with_it(monkeypatch):
    """The registry reads the backbones each time: the toy backbone's names leave with it."""
    with monkeypatch.context() as patch:
        patch.setattr("tsm.models.specs.BACKBONES", dict(BACKBONES))
        register_backbone(TOY)
        assert "tsm_online_toynet" in tsm.list_models()
    assert tsm.list_models("toynet") == []
    with pytest.raises(ValueError, match="unknown model 'tsm_toynet'"):
        tsm.create_model("tsm_toynet")

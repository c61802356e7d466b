"""ImageNet initialisation from torchvision weights: a local file or the weights API, every backbone.

No downloads: the weights API is exercised through torch hub's cache folder, where the tests put
a file of random weights under the name torchvision would download.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights

import tsm
from foreign_models import ReferenceMobileNetV2, randomize
from tsm.download import MIRROR_VARIABLE, DownloadError
from tsm.models import backbone_spec, build_backbone, list_backbones

TORCHVISION_BACKBONES = [name for name in list_backbones() if backbone_spec(name).weights_name is not None]

FEATURE_WIDTHS = {"resnet18": 512, "resnet34": 512, "mobilenet_v2": 1280}


def _torchvision_state(name: str) -> dict[str, torch.Tensor]:
    net = torchvision.models.get_model(name, weights=None)
    with torch.no_grad():
        for module in net.modules():  # BatchNorm statistics that an init would not produce
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 1.5)
    return net.state_dict()


def _assert_loaded(net: nn.Module, state: dict[str, torch.Tensor], head: str) -> None:
    loaded = net.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith(head)}
    assert set(loaded) == set(body)  # the classifier is gone
    for key, value in body.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("name", TORCHVISION_BACKBONES)
def test_every_backbone_loads_a_local_torchvision_file(tmp_path, name):
    state = _torchvision_state(name)
    if name in ("resnet101", "resnet152"):  # both file kinds; safetensors writes the large ones fastest
        path = tmp_path / f"{name}.safetensors"
        save_file(state, path)
    else:
        path = tmp_path / f"{name}-imagenet.pth"
        torch.save(state, path)
    net, width = build_backbone(name, path)
    head = "classifier." if name == "mobilenet_v2" else "fc."
    _assert_loaded(net, state, head)
    assert width == FEATURE_WIDTHS.get(name, 2048)
    assert isinstance(net.classifier if name == "mobilenet_v2" else net.fc, nn.Identity)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """A torch hub folder with random "downloaded" torchvision weights; nothing can download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    return tmp_path / "hub" / "checkpoints"


def _cache(hub_cache: Path, weights, state) -> None:
    torch.save(state, hub_cache / os.path.basename(weights.url))


def test_weights_api_names_and_enums(hub_cache):
    state = _torchvision_state("resnet18")
    _cache(hub_cache, ResNet18_Weights.IMAGENET1K_V1, state)
    names = ("imagenet", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1", ResNet18_Weights.DEFAULT)
    for weights in names:
        net, _ = build_backbone("resnet18", weights)
        _assert_loaded(net, state, "fc.")


def test_recognizer_starts_from_imagenet_before_the_shift(hub_cache):
    state = _torchvision_state("mobilenet_v2")
    _cache(hub_cache, MobileNet_V2_Weights.IMAGENET1K_V1, state)
    model = tsm.Recognizer(5, num_segments=4, backbone="mobilenet_v2", backbone_weights="imagenet")
    shifted = model.base_model.features[3].conv[0][0]
    assert isinstance(shifted, tsm.TemporalShift)
    assert torch.equal(shifted.net.weight, state["features.3.conv.0.0.weight"])
    assert model.new_fc.weight.std() < 0.01  # the new head, not ImageNet's classifier
    assert all(p.requires_grad and not p.is_meta for p in model.parameters())


def test_imagenet_errors_name_the_problem(tmp_path, monkeypatch, hub_cache):
    with pytest.raises(ValueError, match=r"no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        build_backbone("resnet18", "IMAGENET9K")
    with pytest.raises(ValueError, match=r"weights of another model.*ResNet18_Weights"):
        build_backbone("resnet18", MobileNet_V2_Weights.IMAGENET1K_V1)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    target = hub_cache / "resnet18-f37072fd.pth"
    expected = rf"cannot download .*resnet18-f37072fd\.pth.*put the file at {target}"
    with pytest.raises(DownloadError, match=expected):
        build_backbone("resnet18", "imagenet")

    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_backbone("resnet18", tmp_path / "absent.pth")
    wrong_depth = tmp_path / "resnet34.pth"
    torch.save(_torchvision_state("resnet34"), wrong_depth)
    with pytest.raises(ValueError, match=r"do not fit resnet18: unexpected keys"):
        build_backbone("resnet18", wrong_depth)
    wrong_shape = tmp_path / "resnet18-flow.pth"
    state = _torchvision_state("resnet18")
    state["conv1.weight"] = torch.zeros(64, 10, 7, 7)
    torch.save(state, wrong_shape)
    with pytest.raises(ValueError, match=r"conv1\.weight: file \(64, 10, 7, 7\) vs resnet18 \(64, 3, 7, 7\)"):
        build_backbone("resnet18", wrong_shape)
    recognizer = tmp_path / "recognizer.pth"
    torch.save({f"base_model.{k}": v for k, v in state.items()}, recognizer)
    with pytest.raises(ValueError, match=r"tsm\.load_checkpoint"):
        build_backbone("resnet18", recognizer)


def test_reference_mobilenet_imagenet_file(tmp_path):
    """The reference started MobileNetV2 from its own ImageNet file, in its own layout."""
    reference = randomize(ReferenceMobileNetV2())
    path = tmp_path / "mobilenetv2_1.0-f2a8633.pth.tar"
    torch.save(reference.state_dict(), path)
    net, _ = build_backbone("mobilenet_v2", path)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(images), reference.features(images).mean(3).mean(2))

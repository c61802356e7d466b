"""The network RecognizerModule trains comes one way: ``model`` (a name, a ModelConfig or a built
Recognizer) and ``init`` (a ModelInit: ImageNet backbone, a model to fine-tune from, or a trained
model that is the network)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import tsm
from tsm.training import GRADIENT_CLIP_VAL, ModelInit, RecognizerModule

T = 2


def _trained(path, num_classes: int = 5, class_names: list[str] | None = None) -> tsm.Recognizer:
    """A saved tsm checkpoint of a TSM ResNet-18 with statistics a fresh network would not have."""
    torch.manual_seed(1)
    model = tsm.create_model("tsm_resnet18", num_classes=num_classes, num_segments=T)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
    tsm.save_checkpoint(path, model, class_names)
    return model


def _same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], keys) -> bool:
    return all(torch.equal(first[key], second[key]) for key in keys)


def test_one_source_of_weights_at_a_time() -> None:
    assert ModelInit() == ModelInit(None, None, None)
    with pytest.raises(ValueError, match=r"^model init: give one of .*, not backbone_weights and finetune"):
        ModelInit(backbone_weights="imagenet", finetune_from="k400.pth")
    with pytest.raises(ValueError, match="not finetune_from and checkpoint"):
        ModelInit(finetune_from="a.pth", checkpoint="b.pth")


def test_finetune_from_starts_every_weight_but_a_classifier_of_another_size(tmp_path) -> None:
    path = tmp_path / "k400.safetensors"
    source = _trained(path, num_classes=5).state_dict()
    init = ModelInit(finetune_from=str(path))
    module = RecognizerModule("tsm_resnet18", num_classes=3, num_segments=T, init=init)
    state = module.model.state_dict()
    backbone = [key for key in state if not key.startswith("new_fc.")]
    assert backbone and _same(state, source, backbone)
    assert state["new_fc.weight"].shape == (3, 512)  # fresh: the data's 3 classes
    blank = RecognizerModule("tsm_resnet18", num_classes=3, num_segments=T).model.state_dict()
    assert not _same(blank, source, backbone)  # the test can tell the two apart


def test_a_checkpoint_is_the_network_with_its_class_names(tmp_path) -> None:
    path = tmp_path / "trained.safetensors"
    trained = _trained(path, num_classes=4, class_names=["a", "b", "c", "d"])
    init = ModelInit(checkpoint=str(path))
    module = RecognizerModule("tsn_resnet50", num_classes=4, num_segments=T, init=init)  # model: not used
    assert module.model.config == trained.config and module.class_names == ["a", "b", "c", "d"]
    assert _same(module.model.state_dict(), trained.state_dict(), trained.state_dict())
    with pytest.raises(ValueError, match=r"predicts 4 classes but the data has 3.*init\.finetune_from"):
        RecognizerModule(num_classes=3, num_segments=T, init=init)
    with pytest.raises(ValueError, match=r"init\.checkpoint is the network"):
        RecognizerModule(trained, num_classes=4, num_segments=T, init=init)
    with pytest.raises(ValueError, match=r"init\.backbone_weights initialises a network built here"):
        RecognizerModule(trained, num_classes=4, num_segments=T, init=ModelInit(backbone_weights="imagenet"))


def test_a_lightning_checkpoint_rebuilds_the_trained_network_without_its_init(tmp_path) -> None:
    """The trained network's config and class names are stored, its init is not: the file it was
    fine-tuned from may be gone. A checkpoint of tsm 0.1 (checkpoint and backbone_weights among its
    hyperparameters) loads too."""
    path = tmp_path / "k400.safetensors"
    _trained(path)
    module = RecognizerModule(
        "tsm_resnet18", num_classes=2, num_segments=T, init=ModelInit(finetune_from=str(path)),
        class_names=["left", "right"],
    )  # fmt: skip
    clips = TensorDataset(torch.randn(4, T, 3, 32, 32), torch.arange(4) % 2)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, gradient_clip_val=GRADIENT_CLIP_VAL,
    )  # fmt: skip
    trainer.fit(module, DataLoader(clips, batch_size=2))
    saved = tmp_path / "trained.ckpt"
    trainer.save_checkpoint(saved)
    path.unlink()
    restored = RecognizerModule.load_from_checkpoint(saved, weights_only=True)
    assert restored.model.config == module.model.config and restored.class_names == ["left", "right"]
    assert _same(restored.model.state_dict(), module.model.state_dict(), module.model.state_dict())
    old = torch.load(saved, weights_only=True)
    old["hyper_parameters"].update(checkpoint=None, backbone_weights=None)
    old["hyper_parameters"].pop("init")
    torch.save(old, tmp_path / "old.ckpt")
    assert RecognizerModule.load_from_checkpoint(tmp_path / "old.ckpt", weights_only=True).model.config == (
        module.model.config
    )

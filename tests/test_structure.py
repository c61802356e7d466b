"""The package's layering and the tables that make it extensible: backbones, export formats,
and the typed data config."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import tsm
from tsm.data import DataConfig
from tsm.export import format_for
from tsm.models import BACKBONES, BackboneSpec, register_backbone, shifted_modules
from tsm.models.specs import backbone_spec

PACKAGE = Path(tsm.__file__).parent
# Each package and the packages it may import (besides itself and the modules at the top level).
ALLOWED = {
    "ops": set(),
    "models": {"ops"},
    "data": set(),
    "checkpoint": {"ops", "models", "data"},
    "export": {"ops", "models", "data"},
    "engine": {"ops", "models", "data", "checkpoint"},
    "inference": {"ops", "models", "data", "checkpoint", "export"},
    "apps": {"ops", "models", "data", "checkpoint", "export", "engine", "inference"},
    "cli": {"ops", "models", "data", "checkpoint", "export", "engine", "inference", "apps"},
}


def _imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        packages = (m.split(".")[1] for m in modules if m.startswith("tsm."))
        names |= {name for name in packages if (PACKAGE / name).is_dir()}
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_never_import_higher_ones(package: str) -> None:
    for path in sorted((PACKAGE / package).rglob("*.py")):
        forbidden = _imported_packages(path) - ALLOWED[package] - {package}
        assert not forbidden, f"{path.relative_to(PACKAGE)} imports tsm.{', tsm.'.join(sorted(forbidden))}"


def test_every_package_is_in_the_layer_table() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


def test_import_tsm_loads_neither_the_cli_nor_lightning() -> None:
    code = "import sys, tsm; print(sorted(m for m in sys.modules if m.startswith(('tsm.cli', 'lightning'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- backbones ------------------------------------------------------------------------------------
def test_a_new_backbone_is_one_spec(monkeypatch) -> None:
    """Registering one spec makes a backbone buildable, shiftable and listed."""
    monkeypatch.setattr("tsm.models.specs.BACKBONES", dict(BACKBONES))
    resnet = backbone_spec("resnet50")
    register_backbone(
        BackboneSpec(
            name="resnext50_32x4d",
            build=torchvision.models.resnext50_32x4d,
            network_type=torchvision.models.ResNet,
            head="fc",
            insert_shifts=resnet.insert_shifts,
            placements=resnet.placements,
            supports_temporal_pool=True,
            reveal=resnet.reveal,
        )
    )
    assert "resnext50_32x4d" in tsm.list_backbones()
    model = tsm.Recognizer(3, num_segments=2, backbone="resnext50_32x4d", temporal_pool=True)
    assert len(shifted_modules(model)) == 16
    assert model.base_model.layer1[0].conv2.groups == 32
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 2, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match="registered already"):
        register_backbone(resnet)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        tsm.Recognizer(3, backbone="resnext50_32x4d", pretrained="imagenet")


def test_every_registered_backbone_reveals_itself_from_its_weights() -> None:
    """The spec's reveal reads backbone, shift and placement back from a model's own keys."""
    from tsm.models.specs import reveal_backbone

    for name, spec in BACKBONES.items():
        place = spec.placements[0]  # MobileOne shifts whole blocks only
        with torch.device("meta"):
            model = tsm.Recognizer(3, num_segments=2, backbone=name, place=place)
        settings = reveal_backbone(model.state_dict())
        assert settings is not None and settings["backbone"].value == name, name
        assert settings["shift"].value is True and settings["place"].value == place, name
        assert spec.head in ("fc", "classifier", "head")


# --- export formats -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "format", "expected"),
    [("m.onnx", None, "onnx"), ("m.pt", None, "torchscript"), ("m.TS", None, "torchscript")],
)
def test_export_format_comes_from_the_suffix(name, format, expected) -> None:
    assert format_for(name, format).name == expected


@pytest.mark.parametrize(
    ("name", "format", "message"),
    [
        ("model.pt2", None, r"cannot tell the export format of 'model\.pt2'.*\.onnx \(onnx\)"),
        ("model", None, r"suffix '\(none\)'"),
        ("model.onnx", "torchscript", r"a torchscript file must end in \.pt or \.ts"),
        ("model.onnx", "tflite", "unknown export format 'tflite'"),
    ],
)
def test_unknown_or_disagreeing_export_suffixes_are_errors(name, format, message, tmp_path) -> None:
    with pytest.raises(ValueError, match=message):
        format_for(name, format)
    with pytest.raises(ValueError, match=message):
        tsm.export_model(tsm.create_model("tsn_resnet18", num_classes=2), tmp_path / name, format=format)
    assert not list(tmp_path.iterdir())


# --- data config ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_segments": 0}, "num_segments must be a positive integer, got 0"),
        ({"input_size": 2.5}, "input_size must be a positive integer"),
        ({"resize": -1}, "resize must be a positive integer or null"),
        ({"sampling": "random"}, "sampling is 'random', not one of 'uniform', 'dense'"),
        ({"test_views": "five"}, "test_views is 'five'"),
        ({"train_pipeline": "crop"}, "train_pipeline is 'crop'"),
        ({"num_clips": 3}, "num_clips must be 1 for uniform sampling"),
        ({"mean": (0.5, 0.5)}, r"mean needs 3 values \(RGB\)"),
        ({"scales": (1.0, 1.5)}, r"scales must be fractions in \(0, 1\]"),
        ({"flip_label_map": {"1": "x"}}, "flip_label_map must map labels to labels"),
        ({"frame_template": "img.jpg"}, "frame_template needs a"),
        ({"max_distort": -1}, "max_distort must be an integer >= 0"),
    ],
)
def test_each_bad_data_config_field_gets_its_own_error(settings, message) -> None:
    with pytest.raises(ValueError, match=f"data config: {message}"):
        DataConfig(**settings)
    with pytest.raises(ValueError, match=f"data config: {message}"):
        DataConfig().replace(**settings)


def test_data_config_round_trips_and_reads_old_checkpoint_dicts() -> None:
    config = DataConfig(num_segments=16, sampling="dense", flip_label_map={3: 4, 4: 3}, scales=[1, 0.5])
    assert DataConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["flip_label_map"] == {"3": 4, "4": 3} and config.scales == (1.0, 0.5)
    assert config.test_clips == 10 and config.views_per_sample == 10
    # What version 0.1 wrote: every key, num_clips resolved, JSON lists.
    old = {**DataConfig().to_dict(), "num_clips": 1, "scales": [1, 0.875, 0.75, 0.66], "mean": [0.5] * 3}
    assert DataConfig.from_dict(old).mean == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"unknown settings \['num_segment'\]"):
        DataConfig.from_dict({"num_segment": 8})
    assert DataConfig(full_res=True, resize=256).test_crop_size == 256
    assert DataConfig(full_res=True, resize=None).test_crop_size == 224
    assert DataConfig(twice_sample=True, test_views="three").views_per_sample == 6


def test_checkpoints_store_and_return_the_data_config(tmp_path) -> None:
    model = tsm.create_model("tsm_resnet18", num_classes=2, num_segments=4)
    config = DataConfig(num_segments=8, input_size=32, test_views="three")
    path = tsm.save_checkpoint(tmp_path / "m.safetensors", model, data_config=config)
    _, info = tsm.load_checkpoint(path)
    assert info.data_config == config.replace(num_segments=4)  # the model's T decides

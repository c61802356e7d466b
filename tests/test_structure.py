"""The package's layering and the tables that make it extensible: backbones, export formats,
and the typed data config."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import tsm
from tsm.data import DataConfig
from tsm.export import format_for
from tsm.models import BACKBONES, register_backbone, shifted_modules
from tsm.models.specs import backbone_spec

PACKAGE = Path(tsm.__file__).parent
# Each package and the packages it may import (besides itself and the modules at the top level).
ALLOWED = {
    "ops": set(),
    "models": {"ops"},
    "data": set(),
    "checkpoint": {"ops", "models", "data"},
    "export": {"ops", "models", "data"},
    "training": {"ops", "models", "data", "checkpoint"},
    "inference": {"ops", "models", "data", "checkpoint", "export"},
    "apps": {"ops", "models", "data", "checkpoint", "export", "training", "inference"},
    "hub": {"ops", "models", "data", "checkpoint", "export"},
    "cli": {"ops", "models", "data", "checkpoint", "export", "training", "inference", "apps", "hub"},
    "engine": {"training"},  # the deprecated alias of tsm.training, for one release
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


def _module_name(path: Path) -> str:
    parts = ("tsm", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Each module of src/tsm and the tsm modules it imports, at the top or inside functions
    (``from tsm.a import b`` imports ``tsm.a.b`` when that is a module, else ``tsm.a``)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name.startswith("tsm")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tsm"):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    edges.add(submodule if submodule in modules else node.module)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_two_modules_import_each_other() -> None:
    """No import cycle between modules of src/tsm, counting imports inside functions."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_every_package_is_in_the_layer_table() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


def test_the_library_root_and_top_modules_import_no_app() -> None:
    """The root re-exports the library, lazily or not: no app and no CLI, even inside a function;
    the modules at the top (errors, fileio, download) serve every layer and import no package."""
    assert not _imported_packages(PACKAGE / "__init__.py") & {"apps", "cli"}
    for path in PACKAGE.glob("*.py"):
        if path.name not in ("__init__.py", "version.py"):
            assert _imported_packages(path) == set(), path.name


ENGINE_ALIAS = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import tsm.engine
    from tsm.engine import RecognizerModule
    from tsm.engine.module import RecognizerModule as FromSubmodule
    import tsm.engine.optim
import tsm.training.module, tsm.training.optim
assert RecognizerModule is FromSubmodule is tsm.training.module.RecognizerModule
assert tsm.engine.optim is tsm.training.optim
print("\\n".join(str(w.message) for w in caught if w.category is DeprecationWarning))
"""


def test_the_old_training_package_name_imports_the_same_objects_with_a_warning() -> None:
    """``tsm.engine`` is ``tsm.training`` for one more release: its names and submodules are
    tsm.training's own objects, and each first import warns."""
    result = subprocess.run([sys.executable, "-c", ENGINE_ALIAS], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "tsm.engine is deprecated: import tsm.training instead",
        "tsm.engine.module is deprecated: import tsm.training.module instead",
        "tsm.engine.optim is deprecated: import tsm.training.optim instead",
    ]


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
        dataclasses.replace(
            resnet,
            name="resnext50_32x4d",
            build=torchvision.models.resnext50_32x4d,
            weights_name=None,
            layouts={},
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
        tsm.Recognizer(3, backbone="resnext50_32x4d", backbone_weights="imagenet")


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


# --- model config ---------------------------------------------------------------------------------
def test_what_a_model_setting_is_is_said_once_in_its_field() -> None:
    config = tsm.ModelConfig
    assert set(config.settings_in_weights()) == {
        "num_classes", "backbone", "shift", "place", "temporal_pool", "non_local", "reparameterized"
    }  # fmt: skip
    assert set(config.settings_beyond_weights()) == {"num_segments", "fold_div", "mode", "backbone_segments"}
    assert set(config.architecture_settings()) == set(config().to_dict()) - {"dropout", "partial_bn"}
    # the two windows of one network compare equal; another window is another network
    whole = tsm.ModelConfig(num_segments=8, backbone_segments=8)
    assert whole.architecture() == tsm.ModelConfig(num_segments=8).architecture()
    assert whole.replace(num_segments=16).window == 8  # a window stays when the clip grows


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_classes": True}, "num_classes must be a positive int"),
        ({"fold_div": 1}, "fold_div must be an int >= 2"),
        ({"mode": "forward"}, "unknown shift mode"),
        ({"backbone": "vgg16"}, "unknown backbone 'vgg16'"),
        ({"place": "inside"}, "unknown shift placement 'inside'"),
        ({"backbone": "mobilenet_v2", "place": "block"}, "mobilenet_v2 supports place='blockres' only"),
        ({"backbone": "mobilenet_v2", "temporal_pool": True}, "temporal pooling is not supported"),
        ({"temporal_pool": True, "num_segments": 1}, "temporal_pool needs num_segments >= 2"),
        ({"temporal_pool": True, "backbone_segments": 4}, "temporal_pool needs backbone_segments"),
        ({"non_local": "concatenation"}, "unknown non-local mode"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"reparameterized": True}, "no branches to fuse"),
        ({"depth": 50}, r"unknown settings \['depth'\]"),
    ],
)
def test_each_bad_model_config_field_gets_its_own_error(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        tsm.ModelConfig.from_dict(settings)
    with pytest.raises(ValueError, match=message):
        tsm.ModelConfig().replace(**settings)


def test_model_configs_of_older_checkpoints_load(tmp_path) -> None:
    """tsm 0.1 wrote a plain dict without the later settings (non_local, backbone_segments,
    reparameterized); such files load with their defaults."""
    from safetensors.torch import load_file, save_file

    model = tsm.create_model("tsm_resnet18", num_classes=3, num_segments=4)
    path = tsm.save_checkpoint(tmp_path / "new.safetensors", model)
    metadata = dict(tsm.checkpoint.read_native_metadata(path))
    old = model.config.to_dict()
    for key in ("non_local", "backbone_segments", "reparameterized"):
        del old[key]
    metadata["model_config"] = json.dumps(old)
    save_file(load_file(path), tmp_path / "old.safetensors", metadata=metadata)
    loaded, info = tsm.load_checkpoint(tmp_path / "old.safetensors")
    assert info.model_config == model.config and loaded.config == model.config
    assert tsm.ModelConfig.from_dict(model.config.to_dict()) == model.config
    assert tsm.Recognizer(old).config == model.config  # a dict works wherever a config does


# --- dataset catalog ------------------------------------------------------------------------------
def test_every_public_dataset_is_one_complete_row() -> None:
    from tsm.data import PUBLIC_DATASETS, dataset_class_names, dataset_named_in_file

    counts = {"kinetics400": 400, "kinetics600": 600, "kinetics700": 700, "sthv1": 174, "sthv2": 174}
    counts |= {"jester": 27, "ucf101": 101, "hmdb51": 51}
    assert set(PUBLIC_DATASETS) == set(counts)
    words = [word for row in PUBLIC_DATASETS.values() for word in row.file_name_tokens]
    assert len(words) == len(set(words))  # a file-name word names one dataset
    for name, row in PUBLIC_DATASETS.items():
        assert len(dataset_class_names(name)) == counts[name] and callable(row.read_annotations)
        assert all(dataset_named_in_file(word) is row for word in row.file_name_tokens)
        flips = row.training_flips("reference")
        assert flips == {"flip": not row.direction_sensitive}
    mm = PUBLIC_DATASETS["sthv2"].training_flips("mmaction2")
    assert mm["flip"] and mm["flip_label_map"]["86"] == 87  # MMAction2 flips SSv2 and swaps the classes

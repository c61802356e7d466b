"""tsm models on the Hugging Face Hub: ``save_pretrained`` then ``hf-hub:`` loading through
huggingface_hub's real download code and cache, against a loopback stand-in for the Hub's file
endpoints (tests/hub_server.py) and offline; revisions, tokens, the one-line errors and what they
leave in the cache; the card; ``push_to_hub`` up to huggingface_hub's commit call; the exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

import tsm
from hub_server import StandInHub, cache_files, commits, set_offline, use_stand_in  # noqa: F401
from stream_helpers import random_eval_model, synthetic_video
from tsm.checkpoint import HubError
from tsm.cli.main import main
from tsm.data import DataConfig

CLASSES = ["push", "pull", "wave"]
DATA = DataConfig(resize=40, input_size=32)
FRAMES = 4
REPO = "tsm-test/model"
NAME = f"hf-hub:{REPO}"


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture
def hub(tmp_path, cache, monkeypatch):
    """The stand-in Hub, with huggingface_hub pointed at it and at an empty cache under tmp_path."""
    server = StandInHub().start()
    use_stand_in(monkeypatch, server, cache)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    yield server
    server.stop()


def _model(architecture: str = "tsm_resnet18") -> tsm.Recognizer:
    return random_eval_model(architecture, num_segments=FRAMES, num_classes=len(CLASSES))


def _logits(model: tsm.Recognizer, clip: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(clip)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def _published(hub: StandInHub, folder: Path, repo: str = REPO, **options) -> str:
    return hub.add_commit(repo, folder, **options)


# --- the round trip -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("architecture", "view_average"), [("tsm_online_mobilenet_v2", "logits"), ("tsm_resnet18", "softmax")]
)
def test_save_pretrained_then_hf_hub_gives_the_same_logits_classes_and_pipeline(
    architecture, view_average, hub, cache, tmp_path, monkeypatch
) -> None:
    model = _model(architecture)
    folder = tsm.save_pretrained(
        model, tmp_path / "repo", class_names=CLASSES, data_config=DATA, view_average=view_average
    )
    assert sorted(path.name for path in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    commit = _published(hub, folder)
    clip = torch.randn(2, FRAMES, 3, 32, 32)
    loaded, info = tsm.load_checkpoint(NAME)
    assert torch.equal(_logits(loaded, clip), _logits(model, clip))  # bit for bit
    assert loaded.config == model.config and loaded.config.is_online == (architecture != "tsm_resnet18")
    assert info.class_names == CLASSES and info.data_config == DATA.replace(num_segments=FRAMES)
    assert info.view_average == view_average
    snapshot = f"models--tsm-test--model/snapshots/{commit}"
    assert {
        f"{snapshot}/config.json",
        f"{snapshot}/model.safetensors",
        "models--tsm-test--model/refs/main",
    } <= set(cache_files(cache))
    assert not [name for name in cache_files(cache) if name.endswith(".incomplete")]
    # The weights came from the CDN (a large file), without the token-bearing header the Hub gets.
    assert [r.path for r in hub.requests if r.server == "cdn"] and hub.hub_requests("model.safetensors")
    # Offline, from the cache alone: no request at all.
    asked = len(hub.requests)
    set_offline(monkeypatch, True)
    again, again_info = tsm.load_checkpoint(NAME)
    assert torch.equal(_logits(again, clip), _logits(model, clip)) and again_info.class_names == CLASSES
    assert torch.equal(_logits(tsm.create_model(NAME, pretrained=True), clip), _logits(model, clip))
    assert tsm.create_model(NAME).config == model.config  # the network from config.json, fresh weights
    assert len(hub.requests) == asked


def test_revisions_pin_the_weights_and_an_unknown_one_is_a_one_line_error(hub, cache, tmp_path) -> None:
    first, second = _model(), _model()
    torch.nn.init.normal_(second.new_fc.weight)
    first_commit = _published(hub, tsm.save_pretrained(first, tmp_path / "v1", class_names=CLASSES))
    _published(hub, tsm.save_pretrained(second, tmp_path / "v2", class_names=CLASSES))  # main moves on
    clip = torch.randn(1, FRAMES, 3, 32, 32)
    assert torch.equal(_logits(tsm.load_checkpoint(NAME)[0], clip), _logits(second, clip))
    assert torch.equal(_logits(tsm.load_checkpoint(f"{NAME}@{first_commit}")[0], clip), _logits(first, clip))
    before = cache_files(cache)
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint(f"{NAME}@no-such-branch")
    assert f"{NAME}@no-such-branch: the repo {REPO} has no revision 'no-such-branch'" in _one_line(error)
    assert cache_files(cache) == before  # nothing written for it


def test_repos_that_are_not_tsm_models_are_refused_before_their_weights(hub, cache, tmp_path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    tsm.save_checkpoint(plain / "model.safetensors", _model(), class_names=CLASSES)
    _published(hub, plain, "tsm-test/plain")
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint("hf-hub:tsm-test/plain")
    assert "hf-hub:tsm-test/plain is not a tsm model: the repo has no config.json" in _one_line(error)
    timm_like = tmp_path / "timm"
    timm_like.mkdir()
    (timm_like / "config.json").write_text(json.dumps({"architecture": "resnet50", "num_classes": 1000}))
    _published(hub, timm_like, "tsm-test/timm")
    with pytest.raises(HubError) as error:
        tsm.create_model("hf-hub:tsm-test/timm")
    assert "its config.json says library_name=None, not 'tsm'" in _one_line(error)
    assert hub.hub_requests("model.safetensors") == []
    # huggingface_hub notes that the file does not exist (.no_exist, refs); no file was downloaded.
    assert not [name for name in cache_files(cache) if "/blobs/" in name and "plain" in name]


def test_a_repo_from_a_newer_tsm_is_refused_before_its_weights(hub, cache, tmp_path) -> None:
    folder = tsm.save_pretrained(_model(), tmp_path / "repo", class_names=CLASSES)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 2, "tsm_version": "9.0.0"}))
    _published(hub, folder)
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint(NAME)
    message = _one_line(error)
    assert (
        f"{NAME} was written by tsm 9.0.0 (config format 2), newer than this tsm {tsm.__version__}" in message
    )
    assert "upgrade tsm (pip install -U 'tsm[hub]')" in message
    # The same format with a model setting this tsm does not know: also a newer tsm's repo.
    config["model_config"]["shift_kernel"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    _published(hub, folder)
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint(NAME)
    assert "cannot be read by tsm" in _one_line(error) and "shift_kernel" in str(error.value)
    assert hub.hub_requests("model.safetensors") == []
    assert not [name for name in cache_files(cache) if name.endswith("model.safetensors")]


def test_offline_without_a_cache_names_the_repo_and_the_cache(hub, cache, monkeypatch) -> None:
    set_offline(monkeypatch, True)
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint(NAME)
    message = _one_line(error)
    assert (
        f"config.json of {NAME} is not in the Hugging Face cache {cache}, and HF_HUB_OFFLINE is set"
        in message
    )
    assert hub.requests == [] and cache_files(cache) == []
    with pytest.raises(ValueError, match="not a valid hf-hub:ORG/NAME"):
        tsm.load_checkpoint("hf-hub:no-slash")


def test_a_private_repo_needs_its_token_which_never_leaves_the_hub(hub, tmp_path, monkeypatch) -> None:
    _published(hub, tsm.save_pretrained(_model(), tmp_path / "repo", class_names=CLASSES), token="hf_secret")
    with pytest.raises(HubError) as error:
        tsm.load_checkpoint(NAME)
    assert (
        "or it is private and no token with access to it was sent (hf auth login, or HF_TOKEN)"
        in _one_line(error)
    )
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert tsm.load_checkpoint(NAME)[1].class_names == CLASSES
    assert {r.authorization for r in hub.requests if r.server == "cdn"} == {None}
    assert "Bearer hf_secret" in {r.authorization for r in hub.hub_requests()}


# --- the card -----------------------------------------------------------------------------------
def _metrics_file(folder: Path) -> Path:
    """A metrics.json written by tsm test's own report writer."""
    from tsm.training.evaluation import write_evaluation_report

    scores = torch.eye(3)[[0, 1, 2, 0, 1, 1]] + 0.1
    write_evaluation_report(folder, scores, torch.tensor([0, 1, 2, 0, 1, 2]), CLASSES)
    return folder / "metrics.json"


def test_model_card_load_parses_the_card_and_its_metadata(tmp_path) -> None:
    metrics = _metrics_file(tmp_path / "test")
    folder = tsm.save_pretrained(
        _model(),
        tmp_path / "repo",
        class_names=CLASSES,
        data_config=DATA.replace(test_views="three"),
        repo_id="tsm-test/gestures",
        metrics=metrics,
        dataset="ucf101",
        license="apache-2.0",
        base_model="hf-hub:tsm-test/base@v1",
    )
    card = ModelCard.load(folder / "README.md")
    data = card.data
    assert (data.library_name, data.pipeline_tag, data.license) == (
        "tsm",
        "video-classification",
        "apache-2.0",
    )
    assert {"tsm", "offline", "resnet18", "tsm_resnet18"} <= set(data.tags)
    assert data.datasets == ["ucf101"] and data.base_model == "tsm-test/base"
    top1 = {result.metric_name: result.metric_value for result in data.eval_results}
    expected = json.loads(metrics.read_text())
    assert top1 == {
        "top-1 accuracy": round(expected["top1"], 2),
        "top-5 accuracy": round(expected["top5"], 2),
        "mean class accuracy": round(expected["mean_class_accuracy"], 2),
    }
    assert {result.dataset_name for result in data.eval_results} == {"UCF101"}
    assert data.to_dict()["model-index"][0]["name"] == "gestures"
    text = card.text
    assert "tsm predict video.mp4 --checkpoint hf-hub:tsm-test/gestures" in text and "tsm stream" not in text
    assert "4 frames x 1 uniform clip x 3 crops of 32 px" in text
    assert all(f"{index}. {name}" in text for index, name in enumerate(CLASSES))
    assert "top-1 83.33%" in text and "@inproceedings{lin2019tsm" in text


# --- the hooks: CLI options, fine-tuning, tsm test ---------------------------------------------
def test_hf_hub_names_work_where_checkpoints_are_taken(hub, tmp_path, capsys) -> None:
    online = _model("tsm_online_mobilenet_v2")
    _published(hub, tsm.save_pretrained(online, tmp_path / "repo", class_names=CLASSES, data_config=DATA))
    video = synthetic_video(tmp_path / "clip.mp4", frames=8)
    assert main(["predict", str(video), "--checkpoint", NAME, "--engine", "torch", "--topk", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{video}: ") and any(name in out for name in CLASSES)
    exported = tmp_path / "step.onnx"
    args = [
        "export",
        NAME,
        "--out",
        str(exported),
        "--streaming",
        "--onnx-exporter",
        "torchscript",
        "--no-check",
    ]
    assert main(args) == 0 and exported.is_file()
    fresh = tsm.create_model("tsm_online_mobilenet_v2", num_classes=5, num_segments=FRAMES)
    tsm.init_from_checkpoint(fresh, NAME)  # fine-tuning: the backbone's weights, a fresh classifier
    assert torch.equal(fresh.base_model.features[0][0].weight, online.base_model.features[0][0].weight)
    from tsm.cli.ckpt_path import check_ckpt_path
    from tsm.cli.lightning_app import protocol_defaults

    # tsm test --model.init.checkpoint hf-hub:...: the repo's frames and pipeline as defaults
    defaults = protocol_defaults(NAME)
    assert defaults["data.num_segments"] == FRAMES
    assert defaults["data.data_config"] == DATA.replace(num_segments=FRAMES).to_dict()
    with pytest.raises(ValueError, match=f"write --model.init.checkpoint {NAME}"):
        check_ckpt_path(NAME)  # --ckpt_path keeps Lightning's meaning
    assert tsm.checkpoint.model_config_of(NAME) == online.config  # --model.model hf-hub:...


@pytest.mark.slow
def test_the_environment_variables_alone_point_tsm_at_the_hub_and_the_cache(hub, tmp_path) -> None:
    """HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE as a user sets them, in a fresh process."""
    _published(hub, tsm.save_pretrained(_model(), tmp_path / "repo", class_names=CLASSES, data_config=DATA))
    video = synthetic_video(tmp_path / "clip.mp4", frames=8)
    cache = tmp_path / "user-cache"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING"))}
    env |= {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "user-hf")}
    command = [
        sys.executable,
        "-m",
        "tsm.cli.main",
        "predict",
        str(video),
        "--checkpoint",
        NAME,
        "--engine",
        "torch",
    ]
    online = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert online.returncode == 0, online.stderr
    asked = len(hub.requests)
    assert asked and [name for name in cache_files(cache) if name.endswith("model.safetensors")]
    offline = subprocess.run(
        command, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300
    )
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == online.stdout and len(hub.requests) == asked
    missing = [*command[:-3], "hf-hub:tsm-test/other", "--engine", "torch"]
    failed = subprocess.run(
        missing, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert f"is not in the Hugging Face cache {cache}" in failed.stderr


# --- push_to_hub --------------------------------------------------------------------------------
def test_push_uploads_what_save_pretrained_writes_in_one_commit(
    commits,  # noqa: F811
    tmp_path,
    capsys,
) -> None:
    checkpoint = tsm.save_checkpoint(
        tmp_path / "m.safetensors", _model(), class_names=CLASSES, data_config=DATA
    )
    metrics = _metrics_file(tmp_path / "test")
    options = [
        "--metrics",
        str(metrics),
        "--dataset",
        "ucf101",
        "--exports",
        "onnx",
        "--onnx-exporter",
        "torchscript",
    ]
    assert main(["hub", "push", str(checkpoint), "tsm-test/pushed", "--private", *options]) == 0
    assert "in one commit: https://hub.invalid/tsm-test/pushed/commit/0123" in capsys.readouterr().out
    created, commit = commits
    assert created == {"create_repo": "tsm-test/pushed", "private": True, "exist_ok": True}
    assert set(commit["files"]) == {"README.md", "config.json", "model.safetensors", "exports/model.onnx"}
    local = tsm.save_pretrained(
        checkpoint, tmp_path / "local", repo_id="tsm-test/pushed", metrics=metrics, dataset="ucf101"
    )
    pushed = _written(
        tmp_path, commit, "model.safetensors"
    )  # safetensors' header order varies: compare contents
    local_weights = local / "model.safetensors"
    assert tsm.checkpoint.read_native_metadata(pushed) == tsm.checkpoint.read_native_metadata(local_weights)
    assert all(
        torch.equal(a, b)
        for a, b in zip(*(load_file(p).values() for p in (pushed, local_weights)), strict=True)
    )
    card = commit["files"]["README.md"].decode()
    assert card.startswith((local / "README.md").read_text().split("## Citation")[0])  # the same card...
    assert "| onnx | `exports/model.onnx` | PASS" in card  # ...which also lists the export and its check
    config = json.loads(commit["files"]["config.json"])
    assert config["files"]["exports"] == {"onnx": "exports/model.onnx"} and config["label_names"] == CLASSES
    assert (
        tsm.read_export_metadata(_written(tmp_path, commit, "exports/model.onnx"))["class_names"] == CLASSES
    )


def _written(tmp_path: Path, commit: dict, name: str) -> Path:
    path = tmp_path / "uploaded" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(commit["files"][name])
    return path


def test_push_refuses_a_model_without_class_names_or_with_a_pipeline_it_cannot_write(
    commits,  # noqa: F811
    tmp_path,
    capsys,
) -> None:
    nameless = tsm.save_checkpoint(tmp_path / "nameless.safetensors", _model())
    assert main(["hub", "push", str(nameless), "tsm-test/x"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "has no class names" in error and "--class-names FILE" in error
    with pytest.raises(ValueError, match="the test pipeline of the model cannot be written to a Hub repo"):
        tsm.push_to_hub(_model(), "tsm-test/x", class_names=CLASSES, data_config={"num_segment": 8})
    with pytest.raises(ValueError, match="2 class names for the model, which has 3 classes"):
        tsm.push_to_hub(_model(), "tsm-test/x", class_names=CLASSES[:2])
    assert commits == []
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(CLASSES) + "\n")
    assert main(["hub", "push", str(nameless), "tsm-test/x", "--class-names", str(names)]) == 0
    assert json.loads(commits[-1]["files"]["config.json"])["label_names"] == CLASSES


# --- exports ------------------------------------------------------------------------------------
def test_the_exports_are_one_table_that_follows_tsm_exports_formats(monkeypatch) -> None:
    from tsm.export import FORMATS
    from tsm.hub import hub_exports

    assert {name: row.path for name, row in hub_exports().items()} == {
        "onnx": "exports/model.onnx",
        "executorch": "exports/model.pte",
        "torchscript": "exports/model.pt",
        "int8": "exports/model_int8.onnx",
        "web": "exports/web",
    }
    # A format tsm.export learns (a made-up one, say) is offered to Hub repos with no other change.
    monkeypatch.setitem(
        FORMATS, "tflite", FORMATS["onnx"].__class__("tflite", (".tflite",), "x", *[None] * 3)
    )
    assert hub_exports()["tflite"].path == "exports/model.tflite"


def test_exports_are_written_checked_and_listed_and_refusals_leave_nothing(tmp_path) -> None:
    online = _model("tsm_online_mobilenet_v2")
    folder = tsm.save_pretrained(
        online,
        tmp_path / "repo",
        class_names=CLASSES,
        data_config=DATA,
        exports=["onnx", "torchscript"],
        export_settings=tsm.hub.ExportSettings(onnx_exporter="torchscript"),
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["files"]["exports"] == {"onnx": "exports/model.onnx", "torchscript": "exports/model.pt"}
    assert (
        tsm.read_export_metadata(folder / "exports/model.onnx")["tsm_export"] == "stream"
    )  # online: the step
    card = (folder / "README.md").read_text()
    assert (
        "| onnx | `exports/model.onnx` | PASS" in card and "| torchscript | `exports/model.pt` | PASS" in card
    )
    for exports, message in (
        (["int8"], "the int8 export is calibrated on real videos: give them"),
        (["tflite"], "unknown export 'tflite': use onnx, executorch, torchscript, int8, web"),
    ):
        with pytest.raises(ValueError, match=message):
            tsm.save_pretrained(
                online, tmp_path / "refused", class_names=CLASSES, data_config=DATA, exports=exports
            )
    with pytest.raises(ValueError, match="runs the model frame by frame"):
        tsm.save_pretrained(
            _model(), tmp_path / "refused", class_names=CLASSES, data_config=DATA, exports=["web"]
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["repo"]  # no folder, no temporary left
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists and is not a tsm model folder"):
        tsm.save_pretrained(online, tmp_path / "photos", class_names=CLASSES)
    again = tsm.save_pretrained(
        online, folder, class_names=CLASSES, data_config=DATA
    )  # replaces an earlier one
    assert not (again / "exports").exists()


@pytest.mark.slow
def test_int8_and_web_exports_through_tsm_hub_save(tmp_path, capsys) -> None:
    from tsm.data import generate_synthetic_dataset
    from tsm.export.ort_web import install_ort_web

    dataset = generate_synthetic_dataset(tmp_path / "data", train=4, val=1, test=2, size=32, frames=8)
    model = random_eval_model("tsm_online_resnet18", num_segments=FRAMES, num_classes=4)
    checkpoint = tsm.save_checkpoint(
        tmp_path / "m.safetensors",
        model,
        dataset.class_names,
        dataset.data_config.replace(num_segments=FRAMES),
    )
    dist = tmp_path / "ort-dist"
    install_ort_web(dist)
    command = ["hub", "save", str(checkpoint), str(tmp_path / "repo"), "--exports", "int8,web"]
    command += [
        "--onnx-exporter",
        "torchscript",
        "--calibration",
        str(dataset.lists["train"]),
        "--check",
        str(dataset.lists["test"]),
        "--max-drop",
        "100",
    ]
    assert main([*command, "--ort-web", str(dist)]) == 0
    folder = tmp_path / "repo"
    assert tsm.read_export_metadata(folder / "exports/model_int8.onnx")["int8"]
    assert (folder / "exports/web/page-config.json").is_file() and (
        folder / "exports/web/model/model.onnx"
    ).is_file()
    card = (folder / "README.md").read_text()
    assert (
        "| int8 | `exports/model_int8.onnx` | int8 vs fp32 on" in card
        and "| web | `exports/web` | PASS" in card
    )

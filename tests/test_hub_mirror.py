"""The published zoo mirrored on the Hub: ``tsm hub mirror`` turns a published file (made here in the
publisher's layout, served through a file:// ``TSM_WEIGHTS_MIRROR`` as in tests/test_pretrained.py)
into a repo; ``TSM_HUB_MIRROR`` then fetches published files from such repos, on the loopback
stand-in for the Hub (tests/hub_server.py), verified against the zoo's and the mirror's sha256."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import tsm
from foreign_models import MMRecognizer2D, ReferenceTSN, assert_same_logits, data_parallel_state, randomize
from hub_server import StandInHub, cache_files, commits, use_stand_in  # noqa: F401
from tsm.checkpoint import HUB_MIRROR_VARIABLE, MIRROR_VARIABLE, registry
from tsm.cli.main import main
from tsm.download import DownloadError

REFERENCE = "tsm_mobilenet_v2.reference_kinetics400_8f_dense"
MMACTION2 = "tsm_mobilenet_v2.mmaction2_kinetics400_8f"
ORG = "tsm-mirror"


@pytest.fixture
def published(tmp_path, monkeypatch) -> Path:
    """The publishers' host as a file:// TSM_WEIGHTS_MIRROR folder, and an empty torch hub cache."""
    folder = tmp_path / "publisher"
    folder.mkdir()
    monkeypatch.setenv(MIRROR_VARIABLE, folder.as_uri())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(HUB_MIRROR_VARIABLE, raising=False)
    return folder


@pytest.fixture
def hub(tmp_path, monkeypatch):
    server = StandInHub().start()
    use_stand_in(monkeypatch, server, tmp_path / "hf-cache")
    yield server
    server.stop()


def _publish_reference(folder: Path) -> torch.nn.Module:
    """The reference's 8-frame MobileNetV2 TSM (random, calibrated), saved as its main.py saves it."""
    ref = randomize(ReferenceTSN(400, 8, "mobilenetv2"), calibrate_on=torch.randn(2, 8, 3, 32, 32))
    state = {"epoch": 100, "arch": "mobilenetv2", "state_dict": data_parallel_state(ref), "best_prec1": 69.5}
    torch.save(state, folder / tsm.pretrained_info(REFERENCE).filename)
    return ref


def _publish_mmaction2(folder: Path, monkeypatch) -> torch.nn.Module:
    """MMAction2's MobileNetV2 TSM; its zoo row gets this file's sha256 prefix (as its real name has)."""
    mm = randomize(MMRecognizer2D("mobilenetv2", 400, 8), calibrate_on=torch.randn(2, 8, 3, 32, 32))
    path = folder / tsm.pretrained_info(MMACTION2).filename
    torch.save({"state_dict": mm.state_dict()}, path)
    _set_sha256_prefix(monkeypatch, hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    return mm


def _set_sha256_prefix(monkeypatch, prefix: str) -> None:
    info = dataclasses.replace(tsm.pretrained_info(MMACTION2), sha256_prefix=prefix)
    monkeypatch.setitem(registry._TAGS, MMACTION2, info)  # for the duration of the test


def _mirror(name: str, out: Path) -> Path:
    assert main(["hub", "mirror", ORG, name, "--out", str(out)]) == 0
    return out / name


def test_a_mirror_repo_records_the_published_file_and_loads_as_the_publisher_tests(
    published, hub, tmp_path, capsys
) -> None:
    ref = _publish_reference(published)
    folder = _mirror(REFERENCE, tmp_path / "mirrors")
    info = tsm.pretrained_info(REFERENCE)
    original = (published / info.filename).read_bytes()
    sha256 = hashlib.sha256(original).hexdigest()
    assert (
        f"{REFERENCE} -> {ORG}/{REFERENCE}: {folder} (published file sha256 {sha256})"
        in capsys.readouterr().out
    )
    assert (folder / "original" / info.filename).read_bytes() == original
    record = json.loads((folder / "config.json").read_text())["published"]
    assert record == {
        "name": REFERENCE,
        "publisher": "The reference (mit-han-lab/temporal-shift-module)",
        "url": info.url,
        "filename": info.filename,
        "sha256": sha256,
        "license": "mit",
        "license_source": "mit-han-lab/temporal-shift-module LICENSE (MIT License)",
        "top1": 69.5,
        "top1_measured_on": "Kinetics-400 validation set",
        "protocol": "8 frames x 10 dense clips x 3 crops of 256 px",
        "reported_in": "mit-han-lab/temporal-shift-module README.md",
    }
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "mit" and card.data.datasets == ["kinetics400"]
    (reported,) = card.data.eval_results
    assert reported.metric_value == 69.5 and "8 frames x 10 dense clips x 3 crops" in reported.metric_name
    assert info.url in card.text and sha256 in card.text and "tsm has not reproduced this figure" in card.text
    # As a repo on the Hub, it is the published model: logits, classes, the publisher's protocol.
    hub.add_commit(f"{ORG}/{REFERENCE}", folder)
    model, loaded = tsm.load_checkpoint(f"hf-hub:{ORG}/{REFERENCE}")
    assert_same_logits(model, ref, torch.randn(2, 8, 3, 32, 32), torch.float64)
    _, direct = tsm.load_pretrained(REFERENCE)
    assert loaded.class_names == direct.class_names and len(loaded.class_names) == 400
    assert loaded.data_config == direct.data_config and loaded.data_config.sampling == "dense"
    assert hub.hub_requests("original/") == []  # hf-hub: loading takes the converted weights only


def test_tsm_hub_mirror_fetches_the_published_file_from_the_hub_and_verifies_it(
    published, hub, tmp_path, monkeypatch
) -> None:
    mm = _publish_mmaction2(published, monkeypatch)
    folder = _mirror(MMACTION2, tmp_path / "mirrors")
    repo = f"{ORG}/{MMACTION2}"
    hub.add_commit(repo, folder)
    # A new machine: nothing cached, and the publisher's host is gone.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "new-torch-home"))
    (published / tsm.pretrained_info(MMACTION2).filename).unlink()
    monkeypatch.setenv(HUB_MIRROR_VARIABLE, ORG)
    model, info = tsm.load_pretrained(MMACTION2, progress=False)
    assert_same_logits(model, mm, torch.randn(2, 8, 3, 32, 32), torch.float64)
    assert info.view_average == "softmax" and info.class_names == tsm.data.dataset_class_names(
        "kinetics400", order="mmaction2"
    )
    filename = tsm.pretrained_info(MMACTION2).filename
    assert [r.path.split("/resolve/")[1] for r in hub.hub_requests() if r.method == "HEAD"] == [
        "main/config.json",
        f"{hub.repos[repo].branches['main']}/original/{filename}",
    ]
    assert not (tmp_path / "new-torch-home").exists()  # it stays in huggingface_hub's cache
    # A zoo hash the mirror's copy does not have: refused, whatever the mirror says.
    _set_sha256_prefix(monkeypatch, "00000000")
    with pytest.raises(DownloadError, match=r"but the published file name says it starts with 00000000"):
        tsm.load_pretrained(MMACTION2, progress=False)


def test_a_mirror_copy_that_is_not_what_it_recorded_is_refused(published, hub, tmp_path, monkeypatch) -> None:
    _publish_reference(published)
    folder = _mirror(REFERENCE, tmp_path / "mirrors")
    filename = tsm.pretrained_info(REFERENCE).filename
    (folder / "original" / filename).write_bytes(b"tampered" + (folder / "original" / filename).read_bytes())
    hub.add_commit(f"{ORG}/{REFERENCE}", folder)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "new-torch-home"))
    monkeypatch.setenv(HUB_MIRROR_VARIABLE, ORG)
    with pytest.raises(
        DownloadError, match=rf"{filename} from hf-hub:{ORG}/{REFERENCE} has sha256 .* the mirror"
    ):
        tsm.load_pretrained(REFERENCE, progress=False)


def test_a_mirror_without_the_model_falls_back_to_the_publisher(
    published, hub, tmp_path, monkeypatch
) -> None:
    ref = _publish_reference(published)
    monkeypatch.setenv(HUB_MIRROR_VARIABLE, "someone-else")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = tsm.load_pretrained(REFERENCE, progress=False)
    assert_same_logits(model, ref, torch.randn(2, 8, 3, 32, 32), torch.float64)
    (warning,) = [w for w in caught if HUB_MIRROR_VARIABLE in str(w.message)]
    assert f"there is no model repo someone-else/{REFERENCE}" in str(warning.message)
    assert str(warning.message).endswith(f"fetching {REFERENCE} from its publisher instead")
    assert not [name for name in cache_files(tmp_path / "hf-cache") if "/blobs/" in name]


def test_mirroring_pushes_one_commit_per_repo(published, commits, monkeypatch) -> None:  # noqa: F811
    _publish_reference(published)
    (mirrored,) = tsm.mirror_published(ORG, [REFERENCE], progress=False)
    (created, commit) = commits
    assert created["create_repo"] == mirrored.repo_id == f"{ORG}/{REFERENCE}" and created["private"] is False
    filename = tsm.pretrained_info(REFERENCE).filename
    assert set(commit["files"]) == {"README.md", "config.json", "model.safetensors", f"original/{filename}"}
    assert commit["files"][f"original/{filename}"] == (published / filename).read_bytes()
    assert tsm.pretrained_info(REFERENCE).url in commit["message"] and mirrored.location.endswith(
        "/commit/0123"
    )


def test_what_is_mirrored_by_default_and_what_cannot_be() -> None:
    from tsm.hub.mirror import mirrored_names

    buildable = [name for name in tsm.list_pretrained() if tsm.pretrained_info(name).buildable]
    assert [info.name for info in mirrored_names()] == buildable and len(buildable) >= 25
    with pytest.raises(ValueError, match="cannot be mirrored: optical-flow input"):
        mirrored_names(["tsm_resnet50.reference_kinetics400_flow_8f"])

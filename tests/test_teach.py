"""Teaching (tsm.apps.teach): clips made from videos, cached features that are exactly the model's,
the classifier, runs and their logs, and a model taught two new motions of the synthetic task."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import torch
import yaml

import tsm
from teach_helpers import BASE_FILE, files_under, synthetic_video, teachnet_registered
from tsm.apps.teach import (
    ClipRefused,
    FeatureCache,
    FitSettings,
    RunBusy,
    TeachLimits,
    TeachProject,
    TeachSession,
    fit_classifier,
    held_out_split,
    taught_model,
)
from tsm.cli.main import main
from tsm.data import load_clip, write_video
from tsm.inference import prediction_data_config

NEW_MOTIONS = ["move_down", "move_up"]  # a pair the base never saw: only the order of frames tells them apart


@pytest.fixture(scope="module")
def base():
    """The small online base of tests/teach_base.py (trained on move_right/left, grow, shrink)."""
    with teachnet_registered():
        model, info = tsm.load_checkpoint(BASE_FILE)
        yield model, info, prediction_data_config(info, model.num_segments)


def test_a_video_becomes_a_clip_at_the_pipelines_size_and_an_even_frame_rate(tmp_path):
    """Frames at uneven times (a recording's) become a 15 fps clip whose frame at each tick is the
    one shown then; the short side becomes the pipeline's resize; a thumbnail is written."""
    colours = np.random.default_rng(0).integers(0, 256, (6, 3))
    times = [0.0, 0.05, 0.4, 0.45, 1.0, 1.3]  # seconds; frame i is shown from times[i]
    frames = np.broadcast_to(colours[:, None, None, :], (6, 48, 64, 3)).astype(np.uint8).copy()
    source = write_video(tmp_path / "uneven.mp4", frames, timestamps=times, pix_fmt="yuv444p")
    project = TeachProject(tmp_path / "project")
    clip = project.add_clip(" wave ", source, short_side=32)
    assert (clip.label, clip.width, clip.height) == ("wave", 42, 32)  # 64x48 scaled to a short side of 32
    assert clip.path == project.clips_dir / "wave" / f"{clip.id}.mp4"
    decoded = tsm.read_frames(clip.path, range(tsm.probe(clip.path).num_frames))
    ticks = np.arange(0, 1.3 + 1e-9, 1 / 15)
    assert len(decoded) == len(ticks) == 20 and tsm.probe(clip.path).fps == 15
    shown = [max(i for i, start in enumerate(times) if start <= tick + 1e-6) for tick in ticks]
    mean_colours = decoded.float().mean(dim=(2, 3))
    assert torch.allclose(mean_colours, torch.tensor(colours[shown]).float(), atol=6)
    assert project.thumbnail(clip).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert [c.id for c in project.clips()] == [clip.id]


def test_bad_videos_labels_and_full_projects_are_refused_leaving_nothing_behind(tmp_path):
    limits = TeachLimits(max_clip_seconds=2, max_clips=2, max_classes=1)
    project = TeachProject(tmp_path / "project", limits=limits)
    rng = np.random.default_rng(1)
    before = files_under(project.root)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(ClipRefused, match="not a readable video"):
        project.add_clip("wave", garbage, 32)
    long_video = synthetic_video(tmp_path, "grow", rng, frames=40)  # 2.6 s at 15 fps
    with pytest.raises(ClipRefused, match="longer than the limit of 2 s"):
        project.add_clip("wave", long_video, 32)
    for label in ["", "../up", ".hidden", "x" * 41, "a/b"]:
        with pytest.raises(ValueError, match="bad class name"):
            project.add_clip(label, synthetic_video(tmp_path, "grow", rng), 32)
    assert files_under(project.root) == before  # nothing half-written, no empty class folder
    assert not any(project.clips_dir.iterdir())
    project.add_clip("wave", synthetic_video(tmp_path, "grow", rng), 32)
    with pytest.raises(ValueError, match="1 classes, the limit"):
        project.add_clip("clap", synthetic_video(tmp_path, "grow", rng), 32)
    project.add_clip("wave", synthetic_video(tmp_path, "grow", rng), 32)
    with pytest.raises(ValueError, match="2 clips, the limit"):
        project.add_clip("wave", synthetic_video(tmp_path, "grow", rng), 32)
    # Deleting the last clip of a class removes its folder: tsm fit would see a class without clips.
    for clip in project.clips():
        project.delete_clip(clip)
    assert not any(project.clips_dir.iterdir()) and not any(project.thumbnails_dir.iterdir())
    assert project.find_clip("../teach") is None


def test_the_classifier_is_the_same_whatever_the_scale_of_the_features():
    """Trained on standardised features and folded back: features scaled and shifted per dimension
    give the same classifier outputs (on their own inputs), and the classes are learnt."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)
    features = torch.randn(60, 16, generator=generator, dtype=torch.float64)
    features += 2 * torch.nn.functional.one_hot(labels, 16)
    scale = torch.rand(16, generator=generator, dtype=torch.float64) * 50 + 0.1
    moved = features * scale + torch.randn(16, generator=generator, dtype=torch.float64) * 100
    settings = FitSettings(steps=100)
    first, losses = fit_classifier(features, labels, 3, settings)
    second, _ = fit_classifier(moved, labels, 3, settings)
    with torch.no_grad():
        outputs = first(features)
        torch.testing.assert_close(second(moved), outputs, rtol=1e-9, atol=1e-9)
    assert (outputs.argmax(dim=1) == labels).float().mean() > 0.95 and losses[-1] < losses[0]


def test_the_held_out_split_keeps_a_share_of_every_class_and_never_all_of_one():
    labels = [0] * 10 + [1] * 3 + [2] * 2 + [3]
    train, held = held_out_split(labels, 0.2, seed=0)
    assert sorted(train + held) == list(range(len(labels))) and not set(train) & set(held)
    assert [sum(labels[i] == k for i in held) for k in range(4)] == [2, 1, 1, 0]
    assert held_out_split(labels, 0.0, seed=0) == (list(range(len(labels))), [])


@pytest.mark.parametrize(("engine", "tolerance"), [("torch", 1e-5), ("onnxruntime", 1e-4)])
def test_cached_features_give_exactly_the_taught_models_logits(base, tmp_path, engine, tolerance):
    """The classifier on a clip's cached test-view feature is the taught model on that clip as
    tsm.load_clip gives it (what tsm predict and tsm test see); on a training view, the model on
    that view's frames. The features are PyTorch's, or ONNX Runtime's within its tolerance."""
    model, _, config = base
    rng = np.random.default_rng(2)
    video = synthetic_video(tmp_path, "move_down", rng)
    settings = FitSettings(views=3)
    cache = FeatureCache(model, config, settings, engine)
    found = cache.features(video)
    assert found.train.shape == (3, cache.feature_dim) and found.test.shape == (cache.feature_dim,)
    assert cache.features(video) is found  # computed once
    classifier = torch.nn.Linear(cache.feature_dim, 2)
    taught = taught_model(model, classifier)
    assert taught.num_classes == 2 and model.num_classes == 4  # the base is left as it was
    with torch.no_grad():
        expected = taught(load_clip(video, config))[0]
        torch.testing.assert_close(classifier(found.test), expected, rtol=tolerance, atol=tolerance)
        training_views = torch.stack(cache.clip_views(video)[:-1])
        close = {"rtol": tolerance, "atol": tolerance}
        torch.testing.assert_close(classifier(found.train), taught(training_views), **close)
    # Another clip file (same name, new content) is not confused with it.
    os.utime(video, ns=(1, 1))
    assert cache.features(video) is not found


@pytest.fixture(scope="module")
def taught(base, tmp_path_factory):
    """A project with 10 clips of each new motion, taught in one run."""
    model, _, config = base
    folder = tmp_path_factory.mktemp("teach")
    project = TeachProject(folder / "project", str(BASE_FILE))
    rng = np.random.default_rng(3)
    for name in NEW_MOTIONS:
        for _ in range(10):
            project.add_clip(name, synthetic_video(folder / "videos", name, rng), config.resize)
    session = TeachSession(project, model, config)
    installed = []
    run = session.start(lambda *served: installed.append(served))
    status = session.wait(120)
    return project, session, run, status, installed


def test_a_model_taught_two_new_motions_from_ten_clips_each_recognises_held_out_clips(taught, tmp_path):
    """The issue's bar: >= 90 % on held-out clips of two motions the base never saw (here the
    move_down / move_up pair, which differ only in the order of their frames)."""
    _, run, status, installed = taught[1:]
    assert status["state"] == "done", status
    [(model, info, served_run)] = installed
    model.eval()  # load_checkpoint gives a model in training mode
    assert served_run == run == "run-001" and info.class_names == NEW_MOTIONS
    rng = np.random.default_rng(4)
    correct = 0
    with torch.no_grad():
        for label, name in enumerate(NEW_MOTIONS):
            for _ in range(40):
                video = synthetic_video(tmp_path, name, rng)
                correct += int(model(load_clip(video, info.data_config)).mean(dim=0).argmax()) == label
    assert correct / 80 >= 0.9, f"{correct}/80 held-out clips"
    assert status["held_out_clips"] == 4 and status["train_clips"] == 16


def test_a_run_writes_its_checkpoint_and_log_and_the_project_reopens_on_it(base, taught):
    project, session, run, status, _ = taught
    log = json.loads((project.runs_dir / f"{run}.json").read_text())
    assert log["outcome"] == "done" and log["classes"] == NEW_MOTIONS
    assert log["clips"] == dict.fromkeys(NEW_MOTIONS, 10)
    assert log["held_out_accuracy"] == status["held_out_accuracy"] and log["settings"]["views"] == 4
    assert log["seconds_to_live"] > 0 and len(log["losses"]) > 2
    _, info = tsm.load_checkpoint(project.model_path(run))
    assert info.class_names == NEW_MOTIONS and info.data_config == base[2]
    reopened = TeachProject(project.root)
    assert reopened.base == str(BASE_FILE) and reopened.served_model_path() == project.model_path(run)
    assert session.status()["served"] == run


def test_a_failed_run_leaves_what_was_served_and_says_why(taught):
    project, session, run, _, _ = taught
    started = threading.Event()

    def failing(*_):
        started.set()
        raise RuntimeError("the engine would not load")

    failed = session.start(failing)
    with pytest.raises(RunBusy):
        session.start(failing)
    status = session.wait(120)
    assert started.is_set() and status["state"] == "failed" and status["error"] == "the engine would not load"
    assert status["served"] == run
    assert TeachProject(project.root).served_model_path() == project.model_path(run)
    assert not project.model_path(failed).exists()  # no checkpoint of a run that did not go live
    assert json.loads((project.runs_dir / f"{failed}.json").read_text())["outcome"] == "failed"


def test_a_run_needs_two_classes_of_two_clips(base, tmp_path):
    model, _, config = base
    project = TeachProject(tmp_path / "project")
    rng = np.random.default_rng(5)
    session = TeachSession(project, model, config)
    with pytest.raises(ValueError, match="at least two classes"):
        session.start(lambda *_: None)
    for name in ["wave", "wave", "clap"]:
        project.add_clip(name, synthetic_video(tmp_path, "grow", rng), config.resize)
    with pytest.raises(ValueError, match="at least two clips of clap"):
        session.start(lambda *_: None)
    offline = tsm.Recognizer(2, backbone="teachnet", num_segments=8)  # bi-directional: cannot stream
    with pytest.raises(ValueError, match="online"):
        TeachSession(project, offline, config)


def test_tsm_fit_trains_on_the_project_with_its_config(base, taught, tmp_path, capsys, monkeypatch):
    """DIR/clips is a class-folder dataset; DIR/fit.yaml (the base's network and pipeline, from the
    served run's weights) makes tsm fit fine-tune every layer on it."""
    project, _, run, _, _ = taught
    config = yaml.safe_load((project.root / "fit.yaml").read_text())
    assert config["model"]["init"]["finetune_from"] == str(project.model_path(run))
    assert config["data"]["data_config"]["flip"] is False
    monkeypatch.chdir(tmp_path)
    arguments = ["fit", "--config", str(project.root / "fit.yaml"), "--data.train", str(project.clips_dir)]
    arguments += ["--data.batch_size=4", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    assert main(arguments) == 0, capsys.readouterr()
    model, info = tsm.load_checkpoint(tmp_path / "runs/fit/version_0/checkpoints/last.safetensors")
    assert info.class_names == NEW_MOTIONS and model.is_online
    assert info.data_config.input_size == base[2].input_size

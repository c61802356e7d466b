"""VideoDataset layouts, bad-file policy through collate and DataLoader workers, synthetic task, CLI."""

from __future__ import annotations

import functools
import itertools
import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from PIL import Image

import tsm.data.synth as synth
from tsm.cli.main import main
from tsm.data import (
    FailedSample,
    VideoBatch,
    VideoDataset,
    generate_synthetic_dataset,
    load_clip,
    probe,
    read_frames,
    render_synthetic_clip,
    summarize_failures,
    synthetic_class_names,
    write_video,
)

CONFIG = {"num_segments": 4, "resize": 32, "input_size": 32}


@functools.cache
def _synthetic() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tsm-synth-"))
    generate_synthetic_dataset(root, train=8, val=4, test=4, size=32, frames=12, seed=3)
    return root


def _copy_tree(tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(_synthetic(), tmp_path / "synth"))


def test_synthetic_dataset_files_and_lists() -> None:
    root = _synthetic()
    assert (root / "classes.txt").read_text().split() == synthetic_class_names(4)
    lines = (root / "train.txt").read_text().splitlines()
    assert len(lines) == 8 and {line.split()[1] for line in lines} == {"0", "1", "2", "3"}
    info = probe(root / lines[0].split()[0])
    assert (info.num_frames, info.width, info.height) == (12, 32, 32)
    config = json.loads((root / "data_config.json").read_text())
    assert config["flip_label_map"] == {"0": 1, "1": 0}
    dataset = VideoDataset(root / "train.txt", data_config=config)
    assert dataset.class_names == synthetic_class_names(4) and dataset.layout == "video_list"


def test_synthetic_pairs_are_time_reverses() -> None:
    for forward, backward in (
        ("move_right", "move_left"),
        ("grow", "shrink"),
        ("rotate_clockwise", "rotate_anticlockwise"),
        ("move_down", "move_up"),
    ):
        clip = render_synthetic_clip(forward, 32, 10, np.random.default_rng(7))
        reverse = render_synthetic_clip(backward, 32, 10, np.random.default_rng(7))
        np.testing.assert_array_equal(reverse, clip[::-1])
        assert not np.array_equal(clip[0], clip[-1])  # it moves
    a = render_synthetic_clip("grow", 32, 10, np.random.default_rng(1))
    b = render_synthetic_clip("grow", 32, 10, np.random.default_rng(2))
    assert not np.array_equal(a, b)  # random appearance


def test_synthetic_motion_direction() -> None:
    for motion, axis in (("move_right", 1), ("move_down", 0)):
        clip = render_synthetic_clip(motion, 48, 8, np.random.default_rng(0)).astype(np.float32)
        background = synth._Canvas(48, np.random.default_rng(0)).background * 255  # same first draws
        masks = np.abs(clip - background).sum(-1) > 30
        centres = [np.nonzero(mask)[axis].mean() for mask in masks]
        assert all(b > a for a, b in itertools.pairwise(centres)), motion


def test_synthetic_is_deterministic(tmp_path: Path) -> None:
    generate_synthetic_dataset(tmp_path, train=2, val=0, test=0, size=32, frames=12, seed=3)
    for line in (tmp_path / "train.txt").read_text().splitlines():
        name = line.split()[0]
        torch.testing.assert_close(
            read_frames(tmp_path / name, range(12)), read_frames(_synthetic() / name, range(12))
        )


def test_video_list_train_and_eval_shapes() -> None:
    root = _synthetic()
    train = VideoDataset(root / "train.txt", data_config=CONFIG)
    clip, label, index = train[0]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32 and label in (0, 1) and index == 0
    evaluation = VideoDataset(root / "val.txt", train=False, data_config={**CONFIG, "test_views": "three"})
    clip, label, index = evaluation[2]
    assert clip.shape == (3, 4, 3, 32, 32) and label == 2 and index == 2
    torch.testing.assert_close(clip, load_clip(evaluation.records[2].path, evaluation.data_config))


def test_num_segments_argument_overrides_config() -> None:
    dataset = VideoDataset(_synthetic() / "train.txt", num_segments=2, data_config=CONFIG)
    assert dataset.data_config.num_segments == 2 and dataset[0][0].shape[0] == 2


def test_class_folders_layout(tmp_path: Path) -> None:
    for name in ("b_class", "a_class"):
        (tmp_path / name).mkdir()
        write_video(tmp_path / name / "x.mp4", np.zeros((6, 16, 16, 3), np.uint8))
    (tmp_path / "a_class" / "notes.txt").write_text("not a video")
    dataset = VideoDataset(tmp_path, train=False, data_config={**CONFIG, "resize": 16, "input_size": 16})
    assert dataset.class_names == ["a_class", "b_class"] and dataset.layout == "class_folders"
    assert [record.label for record in dataset.records] == [0, 1]
    assert dataset[1][0].shape == (1, 4, 3, 16, 16)
    with pytest.raises(ValueError, match="folder names"):
        VideoDataset(tmp_path, classes=["x", "y"])


def test_raw_frame_list_layout(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
    (tmp_path / "video1").mkdir()
    for number, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(tmp_path / "video1" / f"img_{number:05d}.png")
    (tmp_path / "frames.txt").write_text("video1 6 1\n")
    config = {
        **CONFIG,
        "resize": None,
        "input_size": 24,
        "frame_template": "img_{:05d}.png",
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    }
    dataset = VideoDataset(tmp_path / "frames.txt", train=False, data_config=config)
    assert dataset.layout == "frame_list" and dataset.class_names == ["0", "1"]
    clip, label, _ = dataset[0]
    expected = torch.from_numpy(frames[[0, 2, 3, 5]]).permute(0, 3, 1, 2).float() / 255  # int(1.5 * i + 0.75)
    torch.testing.assert_close(clip[0], expected)
    assert label == 1


def test_raw_frame_list_bad_entries_and_config_errors(tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "frames.txt").write_text("empty_dir 0 0\nmissing_dir 5 1\nempty_dir 3 0\n")
    dataset = VideoDataset(tmp_path / "frames.txt", train=False, data_config=CONFIG)
    reasons = [dataset[i].reason for i in range(3)]
    assert "no frames" in reasons[0] and "not found" in reasons[1] and "img_00001.jpg" in reasons[2]
    # A configuration that cannot fit the frames is an error, not a bad file.
    too_big = {**CONFIG, "resize": None, "input_size": 64, "test_views": "three"}
    with pytest.raises(ValueError, match="smaller than the crop"):
        VideoDataset(_synthetic() / "val.txt", train=False, data_config=too_big)[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("video.mp4", "cannot parse"),
        ("video.mp4 x", "cannot parse"),
        ("dir 12 3 x", "cannot parse"),
        ("v.mp4 -1", "negative"),
    ],
)
def test_wrong_list_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "list.txt").write_text(f"ok.mp4 0\n{line}\n")
    with pytest.raises(ValueError, match=rf"list.txt:2: .*{message}|list.txt:2: {message}"):
        VideoDataset(tmp_path / "list.txt")


def test_missing_source_and_mixed_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset source not found"):
        VideoDataset(tmp_path / "missing.txt")
    (tmp_path / "mixed.txt").write_text("a.mp4 0\nb 10 1\n")
    with pytest.raises(ValueError, match="mixes"):
        VideoDataset(tmp_path / "mixed.txt")


def _damaged_dataset(tmp_path: Path) -> Path:
    """The synthetic train list with a missing, an empty, a truncated and a garbage file."""
    root = _copy_tree(tmp_path)
    names = [line.split()[0] for line in (root / "train.txt").read_text().splitlines()]
    (root / names[0]).unlink()
    (root / names[1]).write_bytes(b"")
    data = (root / names[2]).read_bytes()
    (root / names[2]).write_bytes(data[: len(data) // 2])
    (root / names[3]).write_bytes(bytes(range(256)) * 8)
    return root


def test_bad_files_are_marked_replaced_in_training_and_dropped_in_eval(tmp_path: Path) -> None:
    root = _damaged_dataset(tmp_path)
    evaluation = VideoDataset(root / "train.txt", train=False, data_config=CONFIG)
    samples = [evaluation[i] for i in range(len(evaluation))]
    failed = [sample for sample in samples if isinstance(sample, FailedSample)]
    assert [sample.index for sample in failed] == [0, 1, 2, 3]
    assert "not found" in failed[0].reason and "empty" in failed[1].reason
    batch = evaluation.collate(samples[:6])
    assert batch.clips.shape == (2, 1, 4, 3, 32, 32) and len(batch.failures) == 4
    assert batch.labels.tolist() == [0, 1] and batch.indices.tolist() == [4, 5]
    empty = evaluation.collate(samples[:2])
    assert empty.clips.numel() == 0 and empty.labels.shape == empty.indices.shape == (0,)
    assert len(empty.failures) == 2

    train = VideoDataset(root / "train.txt", train=True, data_config=CONFIG)
    batch = train.collate([train[i] for i in range(8)])
    assert batch.clips.shape == (8, 4, 3, 32, 32)  # failed samples replaced by good ones
    assert {sample.index for sample in batch.failures} >= {0, 1, 2, 3}
    assert batch.indices[:4].tolist() == [4, 5, 6, 7]  # the good ones, then their replacements
    labels = [record.label for record in train.records]
    assert batch.labels.tolist() == [labels[index] for index in batch.indices.tolist()]
    assert all(index >= 4 for index in batch.indices.tolist())
    report = summarize_failures(failed + failed[:1])
    assert report.startswith("5 failed samples from 4 bad files:")
    assert report.count("(2 times)") == 1 and all(sample.path in report for sample in failed)
    assert summarize_failures([]) == ""
    with pytest.raises(FileNotFoundError):
        VideoDataset(root / "train.txt", data_config=CONFIG, on_error="raise")[0]


def test_failures_reach_the_main_process_through_workers(tmp_path: Path) -> None:
    root = _damaged_dataset(tmp_path)
    dataset = VideoDataset(root / "train.txt", train=False, data_config=CONFIG)
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=dataset.collate)
    batches = list(loader)
    failed = sorted(sample.index for batch in batches for sample in batch.failures)
    assert failed == [0, 1, 2, 3]
    assert sum(len(batch.labels) for batch in batches) == 4


def test_batches_survive_pickling_and_lightning_transfer(tmp_path: Path) -> None:
    root = _damaged_dataset(tmp_path)
    dataset = pickle.loads(pickle.dumps(VideoDataset(root / "train.txt", train=False, data_config=CONFIG)))
    batch = dataset.collate([dataset[i] for i in (0, 5)])
    moved = move_data_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, VideoBatch) and moved.failures == batch.failures
    torch.testing.assert_close(moved.clips, batch.clips)
    assert moved.indices.tolist() == [5]


def test_all_bad_training_data_raises_clearly(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    dataset = VideoDataset(tmp_path / "list.txt", data_config=CONFIG, max_resample=3)
    with pytest.raises(RuntimeError, match="tsm data check"):
        dataset.collate([dataset[0]])


def test_cli_synth_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--train",
                "2",
                "--val",
                "1",
                "--test",
                "1",
                "--size",
                "32",
                "--frames",
                "6",
                "--classes",
                "6",
            ]
        )
        == 0
    )
    assert (out / "classes.txt").read_text().split() == synthetic_class_names(6)
    assert main(["data", "check", str(out / "train.txt")]) == 0
    assert "0 bad" in capsys.readouterr().out
    (out / "train" / "move_right_00000.mp4").write_bytes(b"broken")
    assert main(["data", "check", str(out / "train.txt"), "--workers", "1"]) == 1
    report = capsys.readouterr().out
    assert "BAD" in report and "move_right_00000.mp4" in report and "1 bad" in report
    assert main(["data", "probe", str(out / "test" / "move_right_00000.mp4")]) == 0
    assert "6 frames" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "nothing.txt")]) == 1
    assert "dataset source not found" in capsys.readouterr().err

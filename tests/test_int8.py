"""INT8 export: calibrated on real decoded clips (bad videos skipped and counted), checked on
others, self-describing, run by the onnxruntime engine; refusals leave no file."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
import torch

import tsm
from stream_helpers import random_eval_model, stream_frame_logits
from tsm.cli.main import main
from tsm.data import VideoDataset, format_list_line, generate_synthetic_dataset
from tsm.export import Int8Refused, export_int8, read_export_metadata
from tsm.export.calibration import single_view_config
from tsm.inference import streaming_engine

SIZE = 32
SEGMENTS = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Real H.264 videos of the synthetic task: 5 to calibrate on, 3 to check on."""
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("int8") / "data", train=5, val=1, test=3, size=SIZE, frames=8
    )


def checkpoint_of(model, dataset, path):
    config = dataset.data_config.replace(num_segments=SEGMENTS)
    return tsm.save_checkpoint(path, model, dataset.class_names, config)


def test_streaming_int8_calibrates_on_a_list_with_a_missing_video(dataset, tmp_path, capsys):
    model = random_eval_model("tsm_online_resnet18", num_segments=SEGMENTS, num_classes=4)
    checkpoint = checkpoint_of(model, dataset, tmp_path / "online.safetensors")
    calibration = tmp_path / "calibration.txt"  # the training videos, and one that is gone
    records = VideoDataset(dataset.lists["train"]).records
    missing = tmp_path / "gone.mp4"
    lines = [format_list_line(record.path, record.label) for record in records]
    calibration.write_text("".join(lines[:2]) + format_list_line(str(missing), 1) + "".join(lines[2:]))
    out = tmp_path / "online_int8.onnx"
    args = [
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "--streaming",
        "--int8",
        "--calibration",
        str(calibration),
    ]
    args += ["--check", str(dataset.lists["test"]), "--onnx-exporter", "torchscript", "--max-drop", "100"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "int8 vs fp32 on 3 clips not used for calibration" in printed
    assert "calibrated on 5 clips (20 inputs), 1 unreadable videos skipped" in printed
    assert [line for line in printed.splitlines() if line.startswith("  skipped ")] == [
        f"  skipped video not found: {missing} (check the path and the dataset root)"
    ]
    metadata = read_export_metadata(out)
    assert metadata["tsm_export"] == "stream" and metadata["class_names"] == dataset.class_names
    assert metadata["data_config"]["input_size"] == SIZE and metadata["num_segments"] == SEGMENTS
    report = metadata["int8"]
    assert (
        report["format"] == "QDQ" and report["calibration_clips"] == 5 and report["calibration_inputs"] == 20
    )
    assert len(report["skipped"]) == 1 and str(missing) in report["skipped"][0]
    # The file runs under the onnxruntime engine; the report's figures are recomputed independently.
    engine = streaming_engine(out, engine="onnxruntime")
    assert engine.name == "onnxruntime" and engine.precision == "int8" and ", int8, " in engine.reason
    fp32 = streaming_engine(model, "torch")
    check = VideoDataset(
        dataset.lists["test"],
        data_config=single_view_config(dataset.data_config, SEGMENTS, SIZE),
        train=False,
    )
    fp32_top, int8_top, labels, largest = [], [], [], 0.0
    for sample in (check[i] for i in range(len(check))):
        expected, actual = (
            stream_frame_logits(fp32, sample.clip[0]),
            stream_frame_logits(engine, sample.clip[0]),
        )
        largest = max(largest, float((expected - actual).abs().max()))
        fp32_top.append(int(expected.mean(0).argmax()))
        int8_top.append(int(actual.mean(0).argmax()))
        labels.append(sample.label)
    assert report["agreement"] == pytest.approx(
        100 * sum(a == b for a, b in zip(fp32_top, int8_top, strict=True)) / 3
    )
    assert report["fp32_top1"] == pytest.approx(
        100 * sum(a == y for a, y in zip(fp32_top, labels, strict=True)) / 3
    )
    assert report["int8_top1"] == pytest.approx(
        100 * sum(a == y for a, y in zip(int8_top, labels, strict=True)) / 3
    )
    assert report["max_logit_difference"] == pytest.approx(largest, rel=1e-5)
    operators = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= operators and largest > 0  # really int8


def tied_in_int8(model: tsm.Recognizer, clips: torch.Tensor) -> None:
    """Make classes 0 and 1 differ by less than int8 can resolve: fp32 says 1 on every frame of
    ``clips``, int8 sees two equal rows and says 0 (the first of equal maxima)."""
    with torch.no_grad():
        features = model.base_model(clips.flatten(0, 1))  # (frames, C), >= 0 after ReLU + pooling
        channel = int(features.min(0).values.argmax())
        assert features[:, channel].min() > 0
        big = (channel + 1) % features.shape[1]
        weight = torch.zeros_like(model.new_fc.weight)
        weight[0, big] = weight[1, big] = 1.0  # the largest weight of rows 0 and 1: scale 1/127
        weight[1, channel] = 0.3 / 127  # rounds to 0 in int8, per row or per column alike...
        weight[2, channel] = 1.0  # ...as column `channel` also holds a 1 (row 2, never the top class)
        model.new_fc.weight.copy_(weight)
        model.new_fc.bias.copy_(torch.tensor([0.0, 0.0, -100.0, -100.0]))


def test_refusal_above_max_drop_leaves_no_file(dataset, tmp_path, capsys):
    model = random_eval_model("tsm_resnet18", num_segments=SEGMENTS, num_classes=4)
    config = single_view_config(dataset.data_config, SEGMENTS, SIZE)
    check = VideoDataset(dataset.lists["test"], data_config=config, train=False)
    tied_in_int8(model, torch.stack([check[i].clip[0] for i in range(len(check))]))
    check_list = tmp_path / "check.txt"  # every check clip labelled 1: fp32 gets them all right
    check_list.write_text("".join(format_list_line(record.path, 1) for record in check.records))
    checkpoint = checkpoint_of(model, dataset, tmp_path / "tied.safetensors")
    out = tmp_path / "out" / "tied_int8.onnx"
    with pytest.raises(
        Int8Refused, match=r"int8 top-1 is 100\.0 points below fp32 \(0\.0% vs 100\.0% on 3 check"
    ):
        export_int8(
            model,
            out,
            dataset.lists["train"],
            frame_size=SIZE,
            data_config=dataset.data_config,
            check=check_list,
            onnx_exporter="torchscript",
        )
    assert list(out.parent.iterdir()) == []  # neither the file nor the temporary folder
    args = [
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "--int8",
        "--calibration",
        str(dataset.lists["train"]),
    ]
    code = main([*args, "--check", str(check_list), "--onnx-exporter", "torchscript", "--max-drop", "99"])
    err = capsys.readouterr().err
    assert (
        code == 1
        and err.startswith("tsm export: error: int8 top-1 is 100.0 points below")
        and err.count("\n") == 1
    )
    assert list(out.parent.iterdir()) == []
    # Allowed a drop of 100 points, the same export is written: the refusal above was the check's.
    report = export_int8(
        model,
        out,
        dataset.lists["train"],
        frame_size=SIZE,
        data_config=dataset.data_config,
        check=check_list,
        max_drop=100,
        onnx_exporter="torchscript",
    )
    assert (report.fp32_top1, report.int8_top1, report.agreement) == (100.0, 0.0, 0.0)
    assert [path.name for path in out.parent.iterdir()] == [out.name]


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        ("missing.txt", "dataset source not found"),
        ("garbage.txt", "cannot parse"),
        ("bad_videos.txt", "no readable video to calibrate on"),
        (None, "--int8 needs --calibration SOURCE"),
    ],
)
def test_bad_calibration_sources_are_one_line_errors_without_a_file(
    dataset, tmp_path, capsys, calibration, message
):
    model = random_eval_model("tsm_online_resnet18", num_segments=SEGMENTS, num_classes=4)
    checkpoint = checkpoint_of(model, dataset, tmp_path / "online.safetensors")
    (tmp_path / "garbage.txt").write_text("this line has no label\n")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "bad_videos.txt").write_text("broken.mp4 0\nalso_missing.mp4 1\n")
    out = tmp_path / "out" / "m.onnx"
    args = [
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "--streaming",
        "--int8",
        "--onnx-exporter",
        "torchscript",
    ]
    if calibration is not None:
        args += ["--calibration", str(tmp_path / calibration), "--check", str(dataset.lists["test"])]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("tsm export: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


def test_a_small_class_folder_source_keeps_a_share_for_the_check(tmp_path, capsys):
    """15 clips in class folders, fewer than the 64 calibration asks for by default, no --check: a
    quarter of them (4) is held out for the check and the report says so; one clip is refused."""
    data = generate_synthetic_dataset(tmp_path / "synth", train=15, val=1, test=1, size=SIZE, frames=8)
    folders = tmp_path / "clips"
    for record in VideoDataset(data.lists["train"]).records:
        target = folders / data.class_names[record.label] / Path(record.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(record.path, target)
    model = random_eval_model("tsm_online_resnet18", num_segments=SEGMENTS, num_classes=4)
    checkpoint = checkpoint_of(model, data, tmp_path / "online.safetensors")
    out = tmp_path / "step_int8.onnx"
    args = ["export", str(checkpoint), "--out", str(out), "--streaming", "--int8", "--calibration"]
    args += [str(folders), "--onnx-exporter", "torchscript", "--max-drop", "100"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "int8 vs fp32 on 4 clips not used for calibration" in printed
    assert "calibrated on 11 clips (44 inputs)" in printed and "4 of its clips were held out" in printed
    report = read_export_metadata(out)["int8"]
    assert (report["calibration_clips"], report["check_clips"], report["held_out"]) == (11, 4, 4)
    lonely = tmp_path / "one"
    shutil.copytree(folders, lonely)
    for video in sorted(lonely.rglob("*.mp4"))[1:]:
        video.unlink()
    assert main([*args[:7], str(lonely), *args[8:]]) == 1
    err = capsys.readouterr().err
    assert "the calibration source has 1 clip: nothing is left to check the int8 model on" in err
    assert err.count("\n") == 1

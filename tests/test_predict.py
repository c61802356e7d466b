"""Offline prediction (Predictor, tsm predict), streaming from a file (tsm stream), tsm export."""

from __future__ import annotations

import json

import pytest
import torch

import tsm
from foreign_models import MMRecognizer2D, randomize
from stream_helpers import random_eval_model, synthetic_video
from tsm.cli.main import main
from tsm.data import frame_transform, load_clip, open_frames, read_frames
from tsm.inference import Predictor, StreamingRecognizer, prediction_data_config, stream_predictions

CLASSES = ["move_right", "move_left", "grow", "shrink"]
DATA_CONFIG = {"num_segments": 4, "resize": 40, "input_size": 32}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two videos, a corrupt file, an offline and an online checkpoint."""
    root = tmp_path_factory.mktemp("predict")
    videos = [synthetic_video(root / "a.mp4", "grow", 10), synthetic_video(root / "b.mp4", "move_left", 12)]
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all")
    checkpoints = {}
    for name in ("tsm_resnet18", "tsm_online_resnet18"):
        model = random_eval_model(name, num_segments=4, num_classes=len(CLASSES))
        checkpoints[name] = tsm.save_checkpoint(root / f"{name}.safetensors", model, CLASSES, DATA_CONFIG)
    return root, videos, corrupt, checkpoints


def test_predictor_averages_views_with_the_checkpoint_pipeline(files):
    _, videos, _, checkpoints = files
    predictor = Predictor.from_checkpoint(checkpoints["tsm_resnet18"], views="three", clips=2, topk=3)
    prediction = predictor.predict_video(videos[0])
    assert prediction.views == 6 and len(prediction.classes) == 3
    # Independent: every view through the model alone, logits averaged, then softmax.
    model, info = tsm.load_checkpoint(checkpoints["tsm_resnet18"])
    config = tsm.DataConfig.from_dict(DATA_CONFIG, test_views="three", twice_sample=True)
    views = load_clip(videos[0], config)
    assert views.shape == (6, 4, 3, 32, 32)
    with torch.no_grad():
        logits = torch.stack([model.eval()(view[None])[0] for view in views])
    probabilities = logits.mean(0).softmax(0)
    expected = probabilities.topk(3)
    assert prediction.classes == [CLASSES[i] for i in expected.indices]
    torch.testing.assert_close(torch.tensor(prediction.scores), expected.values, rtol=1e-4, atol=1e-6)
    softmax_first = Predictor(model, info, views="three", clips=2, average="softmax").scores(videos[0])
    torch.testing.assert_close(softmax_first, logits.softmax(1).mean(0), rtol=1e-4, atol=1e-6)


def test_predictor_averages_views_as_the_checkpoints_publisher(files, tmp_path):
    """MMAction2 tests with the mean of the views' softmax (average_clips='prob'), the reference and
    tsm with the mean of their logits: Predictor follows the file unless told otherwise."""
    _, videos, _, _ = files
    with torch.random.fork_rng():  # the same network whatever ran before
        torch.manual_seed(0)
        mm = randomize(MMRecognizer2D("r18", len(CLASSES), 4), calibrate_on=torch.randn(2, 4, 3, 32, 32))
    with torch.no_grad():
        mm.cls_head.fc_cls.weight.mul_(0.05)  # logits of a few units: the two averages differ
    path = tmp_path / "tsm_imagenet-pretrained-r18_8xb16-1x1x4-50e_kinetics400-rgb.pth"
    torch.save({"state_dict": mm.state_dict()}, path)
    model, info = tsm.load_checkpoint(path, fold_div=8)
    assert info.view_average == "softmax"
    views = load_clip(videos[0], prediction_data_config(info, 4, views="ten"))
    with torch.no_grad():
        logits = model.eval()(views)
    by_default = Predictor(model, info, views="ten").scores(videos[0])
    torch.testing.assert_close(by_default, logits.softmax(1).mean(0), rtol=1e-4, atol=1e-6)
    told = Predictor(model, info, views="ten", average="logits").scores(videos[0])
    torch.testing.assert_close(told, logits.mean(0).softmax(0), rtol=1e-4, atol=1e-6)
    # Control: at the tolerance used above, the two ways of averaging are told apart.
    assert not torch.allclose(by_default, told, rtol=1e-4, atol=1e-6)


def test_bad_files_get_an_error_and_the_others_a_prediction(files):
    root, videos, corrupt, checkpoints = files
    predictions = tsm.predict(
        [videos[0], corrupt, root / "missing.mp4", videos[1]], checkpoints["tsm_resnet18"]
    )
    assert [p.error is None for p in predictions] == [True, False, False, True]
    assert "not found" in predictions[2].error and "invalid" in predictions[1].error.lower()
    assert predictions[0].classes and predictions[0].classes[0] in CLASSES


def test_predict_options_are_checked(files):
    _, _, _, checkpoints = files
    with pytest.raises(ValueError, match="1 or 2 clips"):
        Predictor.from_checkpoint(checkpoints["tsm_resnet18"], clips=3)
    with pytest.raises(ValueError, match="unknown views"):
        Predictor.from_checkpoint(checkpoints["tsm_resnet18"], views="five")
    assert prediction_data_config(None, 8, clips=2).twice_sample is True


def test_cli_predict_json(files, capsys):
    _, videos, corrupt, checkpoints = files
    code = main(["predict", str(videos[1]), str(corrupt), "--checkpoint", str(checkpoints["tsm_resnet18"])])
    out, err = capsys.readouterr()
    assert code == 1 and "corrupt.mp4: error:" in err and out.startswith(str(videos[1]))
    code = main(
        ["predict", str(videos[1]), "--checkpoint", str(checkpoints["tsm_resnet18"]), "--json", "--topk", "2"]
    )
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["views"] == 1 and [t["class"] in CLASSES for t in record["top"]] == [True] * 2


def test_stream_predictions_equal_offline_per_frame_logits(files):
    _, videos, _, checkpoints = files
    model, info = tsm.load_checkpoint(checkpoints["tsm_online_resnet18"])
    events = list(stream_predictions(videos[1], StreamingRecognizer(model), CLASSES, info.data_config))
    assert [e.index for e in events] == list(range(12))
    transform = frame_transform(info.data_config)
    frames = torch.stack([transform(f) for f in read_frames(videos[1], range(12))])  # decoded independently
    offline = tsm.Recognizer(model.config.replace(num_segments=12)).eval()
    offline.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = offline.forward_frames(frames[None])[0].softmax(1)
    torch.testing.assert_close(torch.stack([e.probabilities for e in events]), expected, rtol=1e-4, atol=1e-6)
    assert [e.label for e in events] == [CLASSES[i] for i in expected.argmax(1)]


def test_cli_stream_writes_video_and_timeline(files, tmp_path, capsys):
    _, videos, _, checkpoints = files
    out_video, timeline = tmp_path / "annotated.mp4", tmp_path / "timeline.png"
    code = main(
        [
            "stream",
            str(videos[0]),
            "--checkpoint",
            str(checkpoints["tsm_online_resnet18"]),
            "--smooth-window",
            "12",
            "--agree",
            "2",
            "--out-video",
            str(out_video),
            "--timeline",
            str(timeline),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "frames/s in the model" in out and "  frame      0  " in out
    assert tsm.probe(out_video).num_frames == 10
    assert timeline.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["stream", str(videos[0]), "--checkpoint", str(checkpoints["tsm_resnet18"])])
    assert code == 1 and "NEXT frame" in capsys.readouterr().err


def test_cli_export_checks_on_a_real_video(files, tmp_path, capsys):
    _, videos, _, checkpoints = files
    out = tmp_path / "online.onnx"
    args = ["export", str(checkpoints["tsm_online_resnet18"]), "--out", str(out), "--video", str(videos[0])]
    code = main([*args, "--streaming", "--onnx-exporter", "torchscript"])
    printed = capsys.readouterr().out
    assert code == 0 and "check: PASS" in printed and "video inputs" in printed and "32x32" in printed
    assert tsm.read_export_metadata(out)["class_names"] == CLASSES
    code = main(["export", str(checkpoints["tsm_resnet18"]), "--out", str(tmp_path / "m.pt")])  # no --video
    printed = capsys.readouterr().out
    assert code == 0 and "check: PASS" in printed and "synthetic video inputs" in printed


def test_camera_that_does_not_exist_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot open camera 7"):
        open_frames(7)

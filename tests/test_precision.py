"""bf16 on the CPU: which precision auto picks and why, BatchNorm folding, the torch engine in bf16."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import tsm
from stream_helpers import decoded_frames, random_eval_model, synthetic_video
from tsm.cli.main import main
from tsm.inference import StreamingRecognizer, clip_engine, streaming_engine
from tsm.inference.precision import bf16_feature, cpu_flags, resolve_precision
from tsm.models.fusion import fold_batch_norms

CPU = torch.device("cpu")


def test_cpu_flags_name_the_native_bf16_feature(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert {"avx512_bf16", "amx_bf16"} <= cpu_flags(cpuinfo)
    assert cpu_flags(tmp_path / "missing") == set()
    assert bf16_feature({"avx512_bf16", "amx_bf16"}) == "AMX"
    assert bf16_feature({"avx512f", "avx512_bf16"}) == "AVX-512 BF16"
    assert bf16_feature({"avx2", "avx512f"}) is None


def test_auto_is_bf16_only_where_the_cpu_computes_it_and_says_so():
    assert resolve_precision("auto", CPU, {"amx_bf16"}) == ("bf16", "bf16 (auto: this CPU has AMX)")
    fp32 = ("fp32", "fp32 (auto: this CPU has no AMX or AVX-512 BF16)")
    assert resolve_precision("auto", CPU, {"avx2"}) == fp32
    assert resolve_precision("auto", torch.device("cuda"), {"amx_bf16"})[0] == "fp32"
    assert resolve_precision("fp32", CPU, {"amx_bf16"}) == ("fp32", "fp32 (asked for)")
    precision, why = resolve_precision("bf16", CPU, {"avx2"})
    assert precision == "bf16" and "emulated" in why
    with pytest.raises(ValueError, match="unknown precision 'fp16': use one of fp32, bf16, auto"):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize("name", ["tsm_resnet18", "tsm_online_mobilenet_v2"])
def test_folding_every_batch_norm_after_a_conv_keeps_the_outputs(name):
    model = random_eval_model(name, num_segments=2)
    for module in model.modules():  # BatchNorm affines far from identity, so that folding shows
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    folded, count = fold_batch_norms(model.double())  # folded in float64: only the algebra is tested
    norms = sum(isinstance(module, nn.BatchNorm2d) for module in model.modules())
    assert count == norms and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    clips = torch.randn(2, 2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(clips), model(clips), rtol=1e-9, atol=1e-9)


def test_a_batch_norm_that_does_not_follow_a_conv_stays():
    network = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 1), nn.ReLU(), nn.BatchNorm2d(4))
    folded, count = fold_batch_norms(network.eval())
    assert count == 0 and [type(m) for m in folded] == [type(m) for m in network]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return decoded_frames(synthetic_video(tmp_path_factory.mktemp("bf16") / "clip.mp4", "grow", 8))


def test_bf16_streaming_engine_follows_the_fp32_model_on_decoded_video(frames):
    """A bf16 copy (BatchNorms folded, channels_last) streams a real clip within bf16's precision of
    the fp32 model, carries bf16 caches, and leaves the model in fp32."""
    model = random_eval_model("tsm_online_resnet18", num_segments=4)
    streamer = StreamingRecognizer(model, engine="torch", precision="bf16")
    reference = StreamingRecognizer(model, engine="torch")
    assert streamer.engine.precision == "bf16" and "bf16 (asked for" in streamer.engine.reason
    steps = [(streamer.step(frame[None]), reference.step(frame[None])) for frame in frames]
    streamed, expected = (torch.cat(side) for side in zip(*steps, strict=True))
    assert streamed.dtype == torch.float32 and streamer.streams.caches[0].dtype == torch.bfloat16
    scale = float(expected.abs().max())
    assert float((streamed - expected).abs().max()) <= 0.03 * scale
    assert float((streamed - expected).abs().max()) > 0  # it did compute in bf16
    assert next(model.parameters()).dtype == torch.float32


def test_bf16_clip_engine_follows_the_fp32_model(frames):
    model = random_eval_model("tsm_resnet18", num_segments=4)
    clips = frames.reshape(2, 4, *frames.shape[1:])
    engine = clip_engine(model, "torch", precision="bf16")
    expected = clip_engine(model, "torch")(clips)
    logits = engine(clips)
    assert logits.dtype == torch.float32 and engine.precision == "bf16"
    assert float((logits - expected).abs().max()) <= 0.03 * float(expected.abs().max())


def test_bf16_runs_on_torch_only_and_auto_engine_picks_it(frames, tmp_path, monkeypatch):
    model = random_eval_model("tsm_online_resnet18", num_segments=4)
    with pytest.raises(ValueError, match="the onnxruntime engine does not run bf16"):
        streaming_engine(model, "onnxruntime", frames.shape[-1], precision="bf16", cache_dir=tmp_path)
    chosen = streaming_engine(model, "auto", precision="bf16", cache_dir=tmp_path)
    assert chosen.name == "torch" and "onnxruntime does not run bf16" in chosen.reason
    step_file = tmp_path / "step.onnx"
    tsm.export_model(model, step_file, streaming=True, frame_size=frames.shape[-1], check=False)
    with pytest.raises(ValueError, match="runs in the precision it was exported in"):
        streaming_engine(step_file, precision="bf16")
    monkeypatch.setattr("tsm.inference.precision.cpu_flags", lambda: {"amx_bf16"})
    assert streaming_engine(model, "torch", precision="auto").precision == "bf16"
    monkeypatch.setattr("tsm.inference.precision.cpu_flags", lambda: {"avx2"})
    engine = streaming_engine(model, "torch", precision="auto")
    assert engine.precision == "fp32" and "no AMX or AVX-512 BF16" in engine.reason


def test_cli_precision_is_auto_for_the_torch_engine_and_says_why(tmp_path, capsys, monkeypatch):
    """tsm stream / tsm predict: --precision auto (the default) is bf16 where the CPU computes it."""
    monkeypatch.setattr("tsm.inference.precision.cpu_flags", lambda: {"amx_bf16"})
    model = random_eval_model("tsm_online_resnet18", num_segments=4, num_classes=4)
    config = {"num_segments": 4, "resize": 40, "input_size": 32}
    checkpoint = tsm.save_checkpoint(tmp_path / "online.safetensors", model, None, config)
    video = synthetic_video(tmp_path / "v.mp4", "grow", 6)
    assert main(["stream", str(video), "--checkpoint", str(checkpoint), "--engine", "torch"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("engine: torch (asked for), bf16 (auto: this CPU has AMX)\n")
    monkeypatch.setattr("tsm.inference.precision.cpu_flags", lambda: {"avx2"})
    argv = ["predict", str(video), "--checkpoint", str(checkpoint), "--engine", "torch", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "engine: torch (asked for), fp32 (auto: this CPU has no AMX or AVX-512 BF16)" in captured.err
    assert json.loads(captured.out)["path"] == str(video)
    assert main([*argv, "--precision", "bf16"]) == 0
    assert "bf16 (asked for; this CPU has no AMX or AVX-512 BF16: emulated" in capsys.readouterr().err

"""Inference engines: ONNX Runtime equals PyTorch on decoded video (offline and streaming, several
streams, resets), the export cache under concurrent first use, and clear errors for bad files."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
import torch

import tsm
from stream_helpers import FRAME_SIZE, decoded_frames, random_eval_model, synthetic_video
from tsm.cli.main import main
from tsm.export import export_model, read_export_metadata, verify_export
from tsm.inference import (
    Predictor,
    StreamingRecognizer,
    cached_export,
    clip_engine,
    streaming_engine,
)
from tsm.inference.export_cache import cached_export_path, export_lock

TOLERANCE = 1e-4  # the bound on the largest absolute logit difference
SIZE = FRAME_SIZE
FAST = {"onnx_exporter": "torchscript"}  # seconds to export, where the test is not about the exporter


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module: a model exported once serves every test that builds it."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> torch.Tensor:
    """Real decoded frames (16, 3, 40, 40) of an H.264 video, through the test pipeline."""
    return decoded_frames(synthetic_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=16))


def offline_frame_logits(model: tsm.Recognizer, frames: torch.Tensor) -> torch.Tensor:
    """Per-frame logits (T, K) of the offline model on all of ``frames`` (T, 3, H, W): the reference."""
    reference = tsm.Recognizer(model.config.replace(num_segments=frames.shape[0])).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        return reference.forward_frames(frames.unsqueeze(0))[0]


def run_streams(streamer: StreamingRecognizer, frames, offsets, steps, resets) -> torch.Tensor:
    """Logits (streams, steps, K) of streams starting at ``offsets``, reset as ``resets`` says."""
    streamed = []
    for t in range(steps):
        if t in resets:
            streamer.reset(resets[t])
        streamed.append(streamer.step(torch.stack([frames[offset + t] for offset in offsets])))
    return torch.stack(streamed, dim=1)


@pytest.mark.parametrize(
    ("name", "exporter"), [("tsm_online_resnet18", "torchscript"), ("tsm_online_mobilenet_v2", "dynamo")]
)
@pytest.mark.parametrize(("offsets", "resets"), [((3,), {4: [0]}), ((0, 2, 5), {3: [1], 5: [0, 2]})])
def test_streaming_engines_agree_on_decoded_video(frames, cache, name, exporter, offsets, resets):
    """One stream and three, offset in time, with resets in the middle: onnxruntime's logits equal
    torch's, and both equal the offline model's per-frame logits since each stream's last reset;
    then the same streams at another frame size, after a full reset (a second export)."""
    model = random_eval_model(name)
    steps = 8
    torch_streams = run_streams(StreamingRecognizer(model, engine="torch"), frames, offsets, steps, resets)
    # No frame_size, as with torch: the engine exports for the size of the first frames.
    onnx_streamer = StreamingRecognizer(model, engine="onnxruntime", cache_dir=cache, onnx_exporter=exporter)
    assert onnx_streamer.engine.name == "onnxruntime" and onnx_streamer.num_caches > 0
    onnx_streams = run_streams(onnx_streamer, frames, offsets, steps, resets)
    assert float((onnx_streams - torch_streams).abs().max()) <= TOLERANCE
    for stream, offset in enumerate(offsets):
        cuts = [0, *sorted(t for t, ids in resets.items() if stream in ids), steps]
        for start, end in itertools.pairwise(cuts):
            expected = offline_frame_logits(model, frames[offset + start : offset + end])
            assert float((onnx_streams[stream, start:end] - expected).abs().max()) <= TOLERANCE
    # The comparison sees the recurrence: an engine that dropped its caches would fail it.
    alone = offline_frame_logits(model, frames[offsets[0] + 1 : offsets[0] + 2])[0]
    assert float((onnx_streams[0, 1] - alone).abs().max()) > 2 * TOLERANCE
    smaller = frames[:, :, 4:-4, 4:-4].contiguous()
    onnx_streamer.reset()
    torch_streamer = StreamingRecognizer(model, engine="torch")
    resized = run_streams(onnx_streamer, smaller, offsets, 3, {})
    assert float((resized - run_streams(torch_streamer, smaller, offsets, 3, {})).abs().max()) <= TOLERANCE
    assert f"stream-{SIZE - 8}x{SIZE - 8}-" in onnx_streamer.engine.reason


def test_streaming_engine_takes_another_batch_size_at_every_call(frames, cache):
    """The server's use: a varying number of streams stacked each tick, caches gathered per row."""
    model = random_eval_model("tsm_online_resnet18")
    engines = [
        streaming_engine(model, kind, SIZE, cache_dir=cache, **FAST) for kind in ("torch", "onnxruntime")
    ]
    assert [engine.name for engine in engines] == ["torch", "onnxruntime"]
    assert engines[0].cache_shapes((2, 3, SIZE, SIZE)) == engines[1].cache_shapes((2, 3, SIZE, SIZE))
    outputs = []
    for engine in engines:
        logits_a, *caches_a = engine(frames[0:2])  # two new streams
        logits_b, *caches_b = engine(frames[2:3])  # a third, alone
        rows = [torch.cat([a[1:], b]) for a, b in zip(caches_a, caches_b, strict=True)]
        logits_c, *_ = engine(frames[3:5], *rows)  # streams 1 and 2 go on together
        outputs.append(torch.cat([logits_a, logits_b, logits_c]))
    assert float((outputs[0] - outputs[1]).abs().max()) <= TOLERANCE
    expected = offline_frame_logits(model, torch.stack([frames[1], frames[3]]))[1]
    assert float((outputs[1][3] - expected).abs().max()) <= TOLERANCE


def test_clip_engines_and_predictor_agree_on_decoded_clips(frames, cache, tmp_path):
    model = random_eval_model("tsm_resnet18", num_segments=4)
    clips = torch.stack([frames[0:4], frames[4:8], frames[8:12]])
    torch_engine = clip_engine(model, "torch")
    onnx_engine = clip_engine(model, "onnxruntime", SIZE, cache_dir=cache, **FAST)
    with torch.no_grad():
        expected = model(clips)
    assert float((torch_engine(clips) - expected).abs().max()) == 0
    assert float((onnx_engine(clips) - expected).abs().max()) <= TOLERANCE
    assert (onnx_engine.num_classes, onnx_engine.num_segments) == (6, 4)
    # Predictor: the same probabilities on a real video whichever engine runs the model.
    video = synthetic_video(tmp_path / "grow.mp4", "grow", 12)
    config = {"num_segments": 4, "resize": SIZE, "input_size": SIZE}
    checkpoint = tsm.save_checkpoint(tmp_path / "m.safetensors", model, [f"c{i}" for i in range(6)], config)
    on_torch = Predictor.from_checkpoint(checkpoint, views="three", engine="torch").scores(video)
    options = {"views": "three", "engine": "onnxruntime", "cache_dir": cache, **FAST}
    on_onnx = Predictor.from_checkpoint(checkpoint, **options).scores(video)
    assert float((on_torch - on_onnx).abs().max()) <= TOLERANCE
    # An exported clip file carries its classes and test pipeline: Predictor reads them from it.
    exported = tmp_path / "clip.onnx"
    export_model(
        model,
        exported,
        frame_size=SIZE,
        class_names=[f"c{i}" for i in range(6)],
        data_config=config,
        check=False,
        onnx_exporter="torchscript",
    )
    from_file = Predictor.from_checkpoint(exported, views="three")
    assert from_file.engine.name == "onnxruntime" and from_file.class_names[:2] == ["c0", "c1"]
    assert float((from_file.scores(video) - on_torch).abs().max()) <= TOLERANCE


def test_auto_picks_onnxruntime_and_says_why_else_torch(tmp_path, monkeypatch):
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    chosen = streaming_engine(model, "auto", SIZE, cache_dir=tmp_path)
    assert chosen.name == "onnxruntime" and "exported in" in chosen.reason
    again = streaming_engine(model, "auto", SIZE, cache_dir=tmp_path)
    assert again.reason == chosen.reason.replace(chosen.reason.split("(")[-1], "from the export cache)")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a),
    )
    fallback = streaming_engine(model, "auto", SIZE, cache_dir=tmp_path)
    assert fallback.name == "torch" and "onnxruntime not installed" in fallback.reason


def test_auto_runs_torch_when_the_model_does_not_export(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise NotImplementedError("aten::unknown_op has no ONNX symbolic")

    monkeypatch.setattr("tsm.inference.engines.cached_export", refuse)
    model = random_eval_model("tsm_resnet18", num_segments=2)
    engine = clip_engine(model, "auto", SIZE, cache_dir=tmp_path)
    assert engine.name == "torch"
    assert engine.reason == (
        "torch: the model does not export for onnxruntime (aten::unknown_op has no ONNX symbolic)"
    )
    with pytest.raises(NotImplementedError):  # asked for by name: the error itself
        clip_engine(model, "onnxruntime", SIZE, cache_dir=tmp_path)


def test_cache_key_follows_weights_size_and_kind(tmp_path):
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    first = cached_export(model, "stream", (SIZE, SIZE), "onnx", "torchscript", tmp_path)
    second = cached_export(model, "stream", (SIZE, SIZE), "onnx", "torchscript", tmp_path)
    assert first.exported and not second.exported and first.path == second.path
    paths = {
        cached_export_path(model, "clip", (SIZE, SIZE), "onnx", "torchscript", tmp_path),
        cached_export_path(model, "stream", (SIZE, 2 * SIZE), "onnx", "torchscript", tmp_path),
        cached_export_path(model, "stream", (SIZE, SIZE), "onnx", "dynamo", tmp_path),
    }
    with torch.no_grad():
        model.new_fc.bias[0] += 1e-6
    paths.add(cached_export_path(model, "stream", (SIZE, SIZE), "onnx", "torchscript", tmp_path))
    assert first.path not in paths and len(paths) == 4
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [first.path.name]


CACHE_USER = """
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[4])
from stream_helpers import random_eval_model
from tsm.inference import cached_export
torch.manual_seed(0)
model = random_eval_model("tsm_online_resnet18", num_segments=2)
Path(sys.argv[2]).touch()  # ready
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
result = cached_export(model, "stream", (32, 32), "onnx", "torchscript", sys.argv[1])
print(json.dumps({"path": str(result.path), "exported": result.exported}))
"""


@pytest.mark.slow  # two fresh Python processes importing torch: 10-30 s on 2 cores
def test_concurrent_first_use_exports_one_valid_file(tmp_path):
    """Two processes ask for the same export at once: one exports, the other waits and reuses it."""
    cache, tests = tmp_path / "cache", str(Path(__file__).parent)
    torch.manual_seed(0)  # the same weights as the two processes'
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    path = cached_export_path(model, "stream", (32, 32), "onnx", "torchscript", cache)
    cache.mkdir()
    go = tmp_path / "go"
    users = [
        subprocess.Popen(
            [sys.executable, "-c", CACHE_USER, str(cache), str(tmp_path / f"ready{n}"), str(go), tests],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        with export_lock(path):  # both find no file and queue on the lock before either can export
            deadline = time.monotonic() + 120
            while (
                not all((tmp_path / f"ready{n}").exists() for n in range(2)) and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            go.touch()
            time.sleep(1.0)
        results = [json.loads(user.communicate(timeout=300)[0]) for user in users]
    finally:
        for user in users:
            user.kill()
    assert [r["path"] for r in results] == [str(path)] * 2
    assert sorted(r["exported"] for r in results) == [False, True]
    assert sorted(p.name for p in cache.iterdir()) == [f".{path.name}.lock", path.name]  # no temporary left
    onnx.checker.check_model(str(path))
    assert read_export_metadata(path)["tsm_export"] == "stream"
    assert verify_export(path, model, streaming=True).passed


@pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")
def test_broken_or_foreign_onnx_files_are_one_line_errors(tmp_path, capsys):
    video = synthetic_video(tmp_path / "v.mp4")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not an onnx model")
    with pytest.raises(ValueError, match="is not a valid ONNX file"):
        streaming_engine(broken)
    foreign = tmp_path / "foreign.onnx"  # another model's export, without tsm's metadata
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),), str(foreign), dynamo=False)
    with pytest.raises(ValueError, match="was not written by tsm export"):
        streaming_engine(foreign)
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    clip_file = tmp_path / "clip.onnx"
    export_model(model, clip_file, frame_size=SIZE, check=False, onnx_exporter="torchscript")
    with pytest.raises(ValueError, match=r"is a clip model, but streaming needs a streaming step"):
        streaming_engine(clip_file)
    with pytest.raises(ValueError, match="runs on onnxruntime, not torch"):
        streaming_engine(clip_file, engine="torch")
    # tsm metadata copied onto another graph: the inputs it names are not the graph's
    proto = onnx.load(str(clip_file))
    step_file = tmp_path / "step.onnx"
    export_model(model, step_file, streaming=True, frame_size=SIZE, check=False, onnx_exporter="torchscript")
    onnx.helper.set_model_props(proto, {e.key: e.value for e in onnx.load(str(step_file)).metadata_props})
    onnx.save(proto, str(tmp_path / "mixed.onnx"))
    with pytest.raises(ValueError, match="not those its tsm metadata names"):
        streaming_engine(tmp_path / "mixed.onnx")
    for bad, message in ((broken, "is not a valid ONNX file"), (foreign, "was not written by tsm export")):
        assert main(["stream", str(video), "--checkpoint", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tsm stream: error: ") and message in err and err.count("\n") == 1


def test_cli_runs_an_exported_step_file(tmp_path, capsys):
    """tsm stream --checkpoint FILE.onnx: classes and pipeline come from the file; same labels as torch."""
    classes = ["move_right", "move_left", "grow", "shrink"]
    model = random_eval_model("tsm_online_resnet18", num_segments=4, num_classes=4)
    config = {"num_segments": 4, "resize": 40, "input_size": 32}
    checkpoint = tsm.save_checkpoint(tmp_path / "online.safetensors", model, classes, config)
    step_file = tmp_path / "step.onnx"
    assert (
        main(
            [
                "export",
                str(checkpoint),
                "--out",
                str(step_file),
                "--streaming",
                "--onnx-exporter",
                "torchscript",
            ]
        )
        == 0
    )
    video = synthetic_video(tmp_path / "v.mp4", "grow", 10)
    printed = {}
    for engine, source in (("torch", checkpoint), ("auto", step_file)):
        capsys.readouterr()
        assert main(["stream", str(video), "--checkpoint", str(source), "--engine", engine]) == 0
        printed[engine] = capsys.readouterr().out.splitlines()
    assert printed["torch"][0] == "engine: torch (asked for)"
    assert printed["auto"][0].startswith("engine: onnxruntime (CPUExecutionProvider), fp32, ")
    labels = [[line.split()[3] for line in lines if " frame " in line] for lines in printed.values()]
    assert labels[0] == labels[1] and set(labels[0]) <= set(classes)


class TorchScriptRunner:
    """A runtime added from outside: TorchScript files run by torch.jit (a Runner of the engine
    contract; it cannot name the inputs or tell their shapes, the file's tsm metadata does)."""

    input_names = output_names = input_shapes = None
    description = "torch.jit (a runtime registered by a test)"

    def __init__(self, path: Path, options: tsm.inference.EngineOptions) -> None:
        self.module = torch.jit.load(str(path), map_location="cpu")

    def run(self, inputs):
        outputs = self.module(*inputs)
        return list(outputs) if isinstance(outputs, tuple | list) else [outputs]


def test_a_new_runtime_is_one_row_of_the_engine_table(frames, tmp_path, monkeypatch):
    """One EngineRuntime row (and its Runner) is all a runtime needs: it runs its files and a
    Recognizer through the export cache, for streams and clips, takes part in auto, and is listed."""
    row = tsm.inference.EngineRuntime(
        "jit",
        suffixes=(".ts",),
        export_format="torchscript",
        open_file=TorchScriptRunner,
        auto_devices=("cpu",),
    )
    runtimes = {"jit": row, **tsm.inference.ENGINE_RUNTIMES}
    monkeypatch.setattr(tsm.inference.engines, "ENGINE_RUNTIMES", runtimes)
    assert tsm.inference.engine_names()[:2] == ("auto", "jit")
    model = random_eval_model("tsm_online_resnet18", num_segments=4)
    reference = StreamingRecognizer(model, engine="torch")
    for engine in ("jit", "auto"):
        streamer = StreamingRecognizer(model, engine=engine, cache_dir=tmp_path)
        expected = torch.stack([reference.step(frames[t : t + 2]) for t in range(3)])
        actual = torch.stack([streamer.step(frames[t : t + 2]) for t in range(3)])
        reference.reset()
        assert streamer.engine.name == "jit" and "torch.jit" in streamer.engine.reason
        assert float((actual - expected).abs().max()) <= TOLERANCE
    step_file = tmp_path / "step.ts"
    export_model(model, step_file, streaming=True, frame_size=SIZE, check=False)
    clips = frames[:8].reshape(2, 4, 3, SIZE, SIZE)
    whole_clips = clip_engine(step_file)  # a streaming step answers whole clips, frame by frame
    with torch.no_grad():
        assert float((whole_clips(clips) - model(clips)).abs().max()) <= TOLERANCE
    assert tsm.inference.is_exported_file(step_file) and whole_clips.name == "jit"

"""The same tests for every engine of the engine table (torch, ONNX Runtime, OpenVINO, ExecuTorch):
streaming equals the offline model on decoded frames (several streams, resets in the middle),
clip models equal ``Recognizer.forward``, int8 files agree with fp32 on held-out clips, and a
missing package or a damaged file is a one-line error. Lowering to ExecuTorch takes tens of
seconds, so its programs are made once per module (the CLI's streaming step, the cache's clip
model, the CLI's int8 step)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch

import tsm
from stream_helpers import (
    decoded_frames,
    offline_frame_logits,
    random_eval_model,
    stream_frame_logits,
    synthetic_video,
)
from tsm.cli.main import main
from tsm.data import VideoDataset, generate_synthetic_dataset
from tsm.export import read_export_metadata
from tsm.export.calibration import single_view_config
from tsm.inference import ENGINE_RUNTIMES, Predictor, StreamingRecognizer, clip_engine, streaming_engine

TOLERANCE = 1e-4  # the bound on the largest absolute logit difference
SIZE = 32
SEGMENTS = 4
CLASSES = ["move_right", "move_left", "grow", "shrink"]
RUNTIMES = tuple(ENGINE_RUNTIMES)
FILE_RUNTIMES = tuple(name for name, row in ENGINE_RUNTIMES.items() if row.suffixes)
EXTRA_RUNTIMES = tuple(name for name, row in ENGINE_RUNTIMES.items() if row.packages)
# (runtime, suffix) of every int8 file a runtime runs
INT8_CASES = [("onnxruntime", ".onnx"), ("openvino", ".onnx"), ("executorch", ".pte")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One export cache for the module: a model exported once serves every test that runs it."""
    return tmp_path_factory.mktemp("export-cache")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Real H.264 videos of the synthetic task at SIZE: 5 to calibrate on, 3 to check on."""
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("runtimes") / "data", train=5, val=1, test=3, size=SIZE, frames=16
    )


@pytest.fixture(scope="module")
def frames(dataset) -> torch.Tensor:
    """Decoded frames (16, 3, SIZE, SIZE) of one of the videos, through the test pipeline."""
    record = VideoDataset(dataset.lists["test"]).records[0]
    return decoded_frames(Path(record.path), SIZE)


@pytest.fixture(scope="module")
def online(dataset, tmp_path_factory) -> tuple[tsm.Recognizer, Path]:
    """An online model and its checkpoint (classes and test pipeline of the synthetic task)."""
    model = random_eval_model("tsm_online_resnet18", num_segments=SEGMENTS, num_classes=len(CLASSES))
    config = dataset.data_config.replace(num_segments=SEGMENTS)
    path = tmp_path_factory.mktemp("online") / "online.safetensors"
    return model, tsm.save_checkpoint(path, model, CLASSES, config)


@pytest.fixture(scope="module")
def step_files(online, tmp_path_factory) -> dict[str, Path]:
    """``tsm export --streaming`` of the online checkpoint, per suffix (checked by the CLI)."""
    folder = tmp_path_factory.mktemp("steps")
    files = {}
    for suffix in (".onnx", ".pte"):
        files[suffix] = folder / f"step{suffix}"
        assert main(["export", str(online[1]), "--out", str(files[suffix]), "--streaming"]) == 0
    return files


def streaming_source(runtime: str, model: tsm.Recognizer, step_files: dict[str, Path]):
    """What the streaming test runs: the Recognizer (through the export cache for a runtime that
    runs files), except on ExecuTorch, whose exported step file (what a phone runs) is used."""
    return step_files[".pte"] if runtime == "executorch" else model


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_streams_equal_the_offline_model_with_resets(runtime, online, step_files, frames, cache):
    """Three streams offset in time, reset in the middle, one batch per step: every engine's logits
    equal torch's and the offline model's per-frame logits since each stream's last reset."""
    model = online[0]
    source = streaming_source(runtime, model, step_files)
    streamer = StreamingRecognizer(source, engine=runtime, cache_dir=cache)
    assert streamer.engine.name == runtime and streamer.num_caches == 8
    offsets, resets, steps = (0, 2, 5), {3: [1], 5: [0, 2]}, 8
    streamed = []
    for t in range(steps):
        if t in resets:
            streamer.reset(resets[t])
        streamed.append(streamer.step(torch.stack([frames[offset + t] for offset in offsets])))
    streamed = torch.stack(streamed, dim=1)
    for stream, offset in enumerate(offsets):
        cuts = [0, *sorted(t for t, ids in resets.items() if stream in ids), steps]
        for start, end in itertools.pairwise(cuts):
            expected = offline_frame_logits(model, frames[offset + start : offset + end])
            assert float((streamed[stream, start:end] - expected).abs().max()) <= TOLERANCE
    # The comparison sees the recurrence: an engine that dropped its caches would fail it.
    alone = offline_frame_logits(model, frames[1:2])[0]
    assert float((streamed[0, 1] - alone).abs().max()) > 2 * TOLERANCE


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clip_models_equal_recognizer_forward(runtime, dataset, frames, cache, tmp_path):
    """Whole clips (a batch of 3) on every engine, a Recognizer exported through the cache where the
    runtime runs files; the Predictor on a decoded video too."""
    model = random_eval_model("tsm_resnet18", num_segments=SEGMENTS, num_classes=len(CLASSES))
    clips = frames[:12].reshape(3, SEGMENTS, 3, SIZE, SIZE)
    engine = clip_engine(model, runtime, SIZE, cache_dir=cache)
    with torch.no_grad():
        expected = model(clips)
    assert engine.name == runtime and float((engine(clips) - expected).abs().max()) <= TOLERANCE
    config = dataset.data_config.replace(num_segments=SEGMENTS)
    checkpoint = tsm.save_checkpoint(tmp_path / "clip.safetensors", model, CLASSES, config)
    video = VideoDataset(dataset.lists["test"]).records[1].path
    scores = {
        name: Predictor.from_checkpoint(checkpoint, engine=name, cache_dir=cache).scores(video)
        for name in ("torch", runtime)
    }
    assert float((scores["torch"] - scores[runtime]).abs().max()) <= TOLERANCE


def test_exported_steps_run_in_tsm_stream_and_serve(online, step_files, dataset, capsys):
    """tsm stream on each exported step file prints the labels torch prints; tsm serve's app runs
    the .pte file on ExecuTorch and says so."""
    from tsm.apps.serve import create_app

    video = VideoDataset(dataset.lists["test"]).records[2].path
    printed = {}
    for engine, source in (("torch", online[1]), *((suffix, path) for suffix, path in step_files.items())):
        capsys.readouterr()
        args = ["stream", str(video), "--checkpoint", str(source)]
        assert main([*args, "--engine", "torch" if engine == "torch" else "auto"]) == 0
        printed[engine] = capsys.readouterr().out.splitlines()
    assert printed[".pte"][0].startswith("engine: executorch (XNNPACK), fp32, ")
    labels = [[line.split()[3] for line in lines if " frame " in line] for lines in printed.values()]
    assert labels[0] == labels[1] == labels[2] and set(labels[0]) <= set(CLASSES)
    metadata = read_export_metadata(step_files[".pte"])
    assert metadata["class_names"] == CLASSES and metadata["tsm_export"] == "stream"
    served = create_app(step_files[".pte"]).state.models.current
    assert served.engine.name == "executorch" and served.kind == "stream"


@pytest.fixture(scope="module")
def int8_steps(online, dataset, tmp_path_factory) -> dict[str, Path]:
    """``tsm export --streaming --int8`` of the online checkpoint, per suffix, calibrated on the
    training videos and checked on the test videos."""
    folder = tmp_path_factory.mktemp("int8")
    files = {}
    for suffix in (".onnx", ".pte"):
        files[suffix] = folder / f"step_int8{suffix}"
        args = ["export", str(online[1]), "--out", str(files[suffix]), "--streaming", "--int8"]
        args += ["--calibration", str(dataset.lists["train"]), "--check", str(dataset.lists["test"])]
        assert main([*args, "--max-drop", "100"]) == 0
    return files


@pytest.mark.parametrize(("runtime", "suffix"), INT8_CASES)
def test_int8_agrees_with_fp32_on_held_out_clips(runtime, suffix, online, int8_steps, dataset):
    """The int8 step on each runtime that runs it really runs in int8, and its report's figures are
    recomputed independently on the held-out clips with the format's own runtime. How close int8
    comes to fp32 depends on trained weights, not on a random model: the demo's int8 rows measure it."""
    path = int8_steps[suffix]
    report = read_export_metadata(path)["int8"]
    assert report["calibration_clips"] == 5 and report["calibration_inputs"] == 5 * SEGMENTS
    engine = streaming_engine(path, engine=runtime)
    assert engine.name == runtime and engine.precision == "int8" and ", int8, " in engine.reason
    fp32 = streaming_engine(online[0], "torch")
    config = single_view_config(dataset.data_config, SEGMENTS, SIZE)
    check = VideoDataset(dataset.lists["test"], data_config=config, train=False)
    agree, largest = 0, 0.0
    for sample in (check[i] for i in range(len(check))):
        expected, actual = (
            stream_frame_logits(fp32, sample.clip[0]),
            stream_frame_logits(engine, sample.clip[0]),
        )
        largest = max(largest, float((expected - actual).abs().max()))
        agree += int(expected.mean(0).argmax()) == int(actual.mean(0).argmax())
    assert largest > 0  # quantized, not the fp32 graph
    if runtime != "openvino":  # the report was measured on the format's own runtime
        assert report["agreement"] == pytest.approx(100 * agree / len(check))
        assert report["max_logit_difference"] == pytest.approx(largest, rel=1e-3)


@pytest.mark.parametrize("runtime", EXTRA_RUNTIMES)
def test_a_missing_runtime_package_is_one_line_naming_the_extra(
    runtime, online, step_files, monkeypatch, capsys
):
    row = ENGINE_RUNTIMES[runtime]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in row.packages else real_find_spec(name, *a),
    )
    for name in [module for module in sys.modules if module.split(".")[0] in row.packages]:
        monkeypatch.setitem(sys.modules, name, None)  # an import now fails as if it were not installed
    hint = f"pip install 'tsm[{row.extra}]'"
    with pytest.raises(ValueError, match=rf"the {runtime} engine needs .*{re.escape(hint)}"):
        streaming_engine(online[0], engine=runtime, frame_size=SIZE)
    auto = streaming_engine(online[0], engine="auto", frame_size=SIZE)
    assert auto.name != runtime
    suffix = row.suffixes[0] if row.suffixes else None
    if suffix and all(runtime == other.name for other in tsm.inference.file_runtimes(f"x{suffix}")):
        assert main(["stream", "v.mp4", "--checkpoint", str(step_files[suffix])]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tsm stream: error: ") and hint in err and err.count("\n") == 1


def damaged_copy(path: Path, damage: str, folder: Path) -> Path:
    """A copy of an exported file: garbage bytes, its first half, or (ONNX) its weights cut short."""
    damaged = folder / f"{damage}{path.suffix}"
    data = path.read_bytes()
    if damage == "garbage":
        damaged.write_bytes(b"\x08\x07not a model")
    elif damage == "truncated":
        damaged.write_bytes(data[: len(data) // 2])
    else:  # the metadata reads, the graph does not load
        proto = onnx.load(str(path))
        weights = max(proto.graph.initializer, key=lambda tensor: len(tensor.raw_data))
        weights.raw_data = weights.raw_data[:16]
        onnx.save(proto, str(damaged))
    return damaged


DAMAGES = [(runtime, damage) for runtime in FILE_RUNTIMES for damage in ("garbage", "truncated")]
DAMAGES += [
    (runtime, "cut weights") for runtime in FILE_RUNTIMES if ".onnx" in ENGINE_RUNTIMES[runtime].suffixes
]


@pytest.mark.parametrize(("runtime", "damage"), DAMAGES)
def test_a_damaged_file_is_one_line(runtime, damage, step_files, tmp_path, capsys):
    suffix = ENGINE_RUNTIMES[runtime].suffixes[0]
    damaged = damaged_copy(step_files[suffix], damage, tmp_path)
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(damaged))}.*(write it again with tsm export|not a valid)"
    ):
        streaming_engine(damaged, engine=runtime)
    video = synthetic_video(tmp_path / "v.mp4")
    assert main(["stream", str(video), "--checkpoint", str(damaged), "--engine", runtime]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tsm stream: error: ") and str(damaged) in err and err.count("\n") == 1


IMPORT_CHILD = """
import json, sys
from tsm.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
NEVER_FOR_A_FILE = {
    "lightning",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "onnxscript",
    "torchao",
    "executorch.exir",
}


@pytest.mark.slow  # two fresh Python processes importing torch
@pytest.mark.parametrize(("suffix", "runtime"), [(".onnx", "onnxruntime"), (".pte", "executorch")])
def test_streaming_an_exported_file_imports_only_its_runtime(suffix, runtime, step_files, dataset):
    """tsm stream on an exported file loads the runtime that runs it, not the other runtimes, the
    exporters (ExecuTorch's included: its runtime's C extension is loaded alone), training or serving."""
    video = VideoDataset(dataset.lists["test"]).records[0].path
    args = [
        "stream",
        str(video),
        "--checkpoint",
        str(step_files[suffix]),
        "--engine",
        runtime,
        "--max-frames",
        "2",
    ]
    child = subprocess.run(
        [sys.executable, "-c", IMPORT_CHILD, *args], capture_output=True, text=True, check=True
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    modules = set(result["modules"])
    others = {name for name in ("onnxruntime", "openvino", "executorch") if name != runtime}
    loaded = {
        name for name in modules if name.split(".")[0] in others or name.split(".")[0] in NEVER_FOR_A_FILE
    }
    loaded |= {name for name in modules if name.startswith("executorch.exir")}
    assert result["code"] == 0 and runtime in modules and loaded == set()

"""Export to ONNX and TorchScript: outputs equal PyTorch's on random and real decoded frames."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

import tsm
from stream_helpers import decoded_frames, random_eval_model, synthetic_video, with_real_statistics
from tsm.export import export_model, read_export_metadata, verify_export
from tsm.models import StreamingStep

SIZE = 40
SEGMENTS = 4


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> torch.Tensor:
    return decoded_frames(synthetic_video(tmp_path_factory.mktemp("video") / "clip.mp4"), SIZE)


def clips_from(frames: torch.Tensor) -> torch.Tensor:
    """Two real clips (2, T, 3, H, W) from consecutive frames."""
    return torch.stack([frames[:SEGMENTS], frames[SEGMENTS : 2 * SEGMENTS]])


CASES = {  # name -> (model name, overrides, streaming, format)
    "clip-onnx": ("tsm_resnet18", {}, False, "onnx"),
    "tpool-clip-torchscript": ("tsn_resnet18", {"temporal_pool": True}, False, "torchscript"),
    "stream-onnx": ("tsm_online_mobilenet_v2", {}, True, "onnx"),
    "block-stream-torchscript": ("tsm_online_resnet18", {"place": "block"}, True, "torchscript"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, frames):
    """case -> (model, path, streaming, check); each case exported once, checked on real frames."""
    return functools.cache(lambda case: export_case(case, tmp_path_factory, frames))


def export_case(case: str, tmp_path_factory, frames: torch.Tensor):
    name, overrides, streaming, format = CASES[case]
    model = random_eval_model(name, num_segments=SEGMENTS, **overrides)
    real = frames[:5].unsqueeze(1).expand(5, 2, 3, SIZE, SIZE) if streaming else clips_from(frames)
    path = tmp_path_factory.mktemp("export") / ("model.onnx" if format == "onnx" else "model.pt")
    check = export_model(
        model,
        path,
        streaming=streaming,
        frame_size=SIZE,
        class_names=[f"c{i}" for i in range(6)],
        check_inputs={"video": real},
        onnx_exporter="torchscript",
    )
    return model, path, streaming, check


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_matches_pytorch(exported, case):
    model, path, streaming, check = exported(case)
    assert check.passed, check.summary()
    assert set(check.errors) == {"random", "video"}
    assert check.summary().startswith("PASS")
    metadata = read_export_metadata(path)
    assert metadata["tsm_export"] == ("stream" if streaming else "clip")
    assert metadata["num_segments"] == SEGMENTS
    assert metadata["frame_size"] == [SIZE, SIZE]
    assert metadata["class_names"][:2] == ["c0", "c1"]
    # The check is not vacuous: a model with other weights fails it.
    other = tsm.Recognizer(model.config).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.new_fc.bias.add_(1e-3)
    assert not verify_export(path, other, streaming=streaming).passed


def test_onnx_clip_has_dynamic_batch_and_fixed_frames(exported, frames):
    model, path, _, _ = exported("clip-onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["clips"]
    assert session.get_inputs()[0].shape[1:] == [SEGMENTS, 3, SIZE, SIZE]
    clips = torch.cat([clips_from(frames), clips_from(frames.flip(0))])  # batch 4
    (logits,) = session.run(None, {"clips": clips.numpy()})
    with torch.no_grad():
        expected = model(clips).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    with pytest.raises(InvalidArgument, match="clips"):  # onnxruntime refuses another T
        session.run(None, {"clips": clips[:, :2].numpy()})


def test_onnx_stream_runs_a_live_stream(exported, frames):
    """The exported step driven by hand, caches fed back, equals the offline per-frame logits."""
    model, path, _, _ = exported("stream-onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names[0] == "frames" and len(names) == 11
    caches = [np.zeros([1, *i.shape[1:]], np.float32) for i in session.get_inputs()[1:]]
    streamed = []
    for t in range(2 * SEGMENTS):
        feeds = dict(zip(names, [frames[t : t + 1].numpy(), *caches], strict=True))
        logits, *caches = session.run(None, feeds)
        streamed.append(logits[0])
    offline = tsm.Recognizer(model.config.replace(num_segments=2 * SEGMENTS)).eval()
    offline.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = offline.forward_frames(frames[: 2 * SEGMENTS].unsqueeze(0))[0].numpy()
    np.testing.assert_allclose(np.stack(streamed), expected, atol=1e-4, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_clip_refuses_other_frame_counts(tmp_path):
    model = random_eval_model("tsn_resnet18", num_segments=SEGMENTS)
    path = tmp_path / "clip.pt"
    export_model(model, path, frame_size=SIZE, check=False)
    loaded = torch.jit.load(str(path))
    assert loaded(torch.randn(3, SEGMENTS, 3, SIZE, SIZE)).shape == (3, 6)
    with pytest.raises(torch.jit.Error, match="sample that many frames"):
        loaded(torch.randn(1, 2 * SEGMENTS, 3, SIZE, SIZE))


@pytest.mark.slow
def test_dynamo_exporter(tmp_path, frames):
    """PyTorch's default (torch.export-based) ONNX exporter: a streaming step, dynamic batch."""
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    check = export_model(
        model, tmp_path / "m.onnx", streaming=True, frame_size=SIZE, check_inputs={"video": frames[:3, None]}
    )
    assert check.passed, check.summary()


def test_export_refuses_bad_requests(tmp_path, monkeypatch):
    model = random_eval_model("tsm_resnet18", num_segments=SEGMENTS)
    with pytest.raises(ValueError, match="NEXT frame"):
        export_model(model, tmp_path / "s.onnx", streaming=True, frame_size=SIZE)
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(model, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_export_metadata(tmp_path / "missing.onnx")
    real_import = importlib.import_module

    def without_onnx(name, *args):
        if name.startswith("onnx"):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_onnx)
    with pytest.raises(RuntimeError, match=r"pip install 'tsm\[export\]'"):
        export_model(model, tmp_path / "m.onnx", frame_size=SIZE)
    assert not (tmp_path / "m.onnx").exists()


def test_streaming_step_is_the_exported_signature():
    model = random_eval_model("tsm_online_resnet18")
    step = StreamingStep(model)
    logits, *caches = step(torch.randn(2, 3, SIZE, SIZE))
    assert logits.shape == (2, 6) and len(caches) == step.num_caches == len(tsm.models.shifted_modules(model))


# --- the check's rule: float64 PyTorch as the reference, PyTorch fp32's own error as the yardstick ---
def real_statistics_model(frames: torch.Tensor) -> tsm.Recognizer:
    """The issue's case: an online MobileNetV2 TSM whose BatchNorm statistics come from real
    decoded frames, as a trained model's would."""
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=27, num_segments=SEGMENTS)
    return with_real_statistics(model, frames)


@pytest.mark.slow  # MobileNetV2 at 224 px, 8 steps in float64
def test_the_check_accepts_an_onnx_step_of_real_statistics(tmp_path):
    """Exported as tsm export --streaming does, checked on decoded video: within fp32's accuracy.
    Both fp32 implementations are compared with float64; neither is the other's reference."""
    video = synthetic_video(tmp_path / "clip.mp4", frames=16, size=256)
    frames = decoded_frames(video, 224)
    model = real_statistics_model(frames)
    real = {"video": frames[:8].unsqueeze(1)}
    check = export_model(model, tmp_path / "step.onnx", streaming=True, frame_size=224, check_inputs=real)
    assert check.passed, check.summary()
    for result in check.inputs.values():
        assert 0 < result.error <= result.bound and result.pytorch_error > 0


def _export_broken(model, path, streaming, monkeypatch, defect: str) -> None:
    """Write ``model`` with a defect in the graph, as an exporter bug would."""
    from tsm.models.streaming_step import CachedShift

    if defect == "cache ignored":  # every layer sees zeros instead of the previous frame
        original = CachedShift.forward

        def forward(self, x):
            self._slots.inputs = []
            return original(self, x)

        monkeypatch.setattr(CachedShift, "forward", forward)
    elif defect == "caches swapped":  # two caches of the same shape wired to each other's layer
        original = StreamingStep.forward

        def forward(self, frames, *caches):
            logits, *new = original(self, frames, *caches)
            shapes = [tuple(cache.shape) for cache in new]
            first = next(i for i, shape in enumerate(shapes) if shapes.count(shape) > 1)
            second = shapes.index(shapes[first], first + 1)
            new[first], new[second] = new[second], new[first]
            return (logits, *new)

        monkeypatch.setattr(StreamingStep, "forward", forward)
    else:  # "shift as a constant": the shifted channels of the example input, frozen into the graph
        import tsm.ops.shift as shift_module

        original = shift_module.temporal_shift
        frozen = {}

        def constant_shift(x, *args, **kwargs):
            key = tuple(int(size) for size in x.shape)
            if key not in frozen:  # through numpy: the tracer sees a constant, not a function of x
                frozen[key] = torch.from_numpy(original(x, *args, **kwargs).detach().numpy().copy())
            return frozen[key]

        monkeypatch.setattr(shift_module, "temporal_shift", constant_shift)
    export_model(model, path, streaming=streaming, frame_size=SIZE, check=False, onnx_exporter="torchscript")
    monkeypatch.undo()


@pytest.mark.parametrize(
    ("defect", "name", "streaming"),
    [
        ("cache ignored", "tsm_online_resnet18", True),
        ("caches swapped", "tsm_online_mobilenet_v2", True),
        ("shift as a constant", "tsm_resnet18", False),
    ],
)
def test_the_check_refuses_graphs_with_a_real_defect(frames, tmp_path, monkeypatch, defect, name, streaming):
    model = random_eval_model(name, num_segments=SEGMENTS)
    path = tmp_path / "broken.onnx"
    _export_broken(model, path, streaming, monkeypatch, defect)
    real = frames[:5].unsqueeze(1) if streaming else clips_from(frames)
    check = verify_export(path, model, streaming=streaming, inputs={"video": real})
    assert not check.passed, f"{defect}: {check.summary()}"
    assert check.summary().startswith("FAIL")
    failed = [result for result in check.inputs.values() if not result.passed]
    assert failed and all(result.error > 100 * result.pytorch_error for result in failed)
    if defect == "cache ignored":  # the exporter drops inputs a graph never reads: it cannot even run
        assert "the file does not run on them" in check.summary()


def test_the_float64_reference_equals_the_float64_model():
    """The check's reference computes depthwise convolutions as sliced sums (PyTorch has no fast
    float64 kernel for them): the same function, to float64 rounding, on every kind of them."""
    from tsm.export.reference import SlicedDepthwiseConv, float64_reference

    model = random_eval_model("tsm_online_mobilenet_v2", num_segments=SEGMENTS)
    reference = float64_reference(model)
    assert sum(isinstance(m, SlicedDepthwiseConv) for m in reference.modules()) == 17
    assert next(model.parameters()).dtype == torch.float32  # the model itself is left as it was
    plain = tsm.Recognizer(model.config).double().eval()
    plain.load_state_dict(model.state_dict())
    clips = torch.randn(2, SEGMENTS, 3, 36, 44, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(reference(clips), plain(clips), rtol=1e-12, atol=1e-12)
    for stride, dilation, padding in ((1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 1, 0)):
        conv = torch.nn.Conv2d(6, 6, 3, stride, padding, dilation, groups=6, dtype=torch.float64)
        x = torch.randn(2, 6, 9, 11, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(SlicedDepthwiseConv(conv)(x), conv(x), rtol=1e-12, atol=1e-12)

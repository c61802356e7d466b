"""Streaming (online) TSM: frame-by-frame logits equal the offline uni-directional model's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tsm
from foreign_models import ReferenceMobileNetV2, online_demo_stream, randomize
from stream_helpers import decoded_frames, offline_frame_logits, random_eval_model, synthetic_video
from tsm import create_model
from tsm.inference import StreamingRecognizer
from tsm.models import LabelSmoother, StreamingStep, shifted_modules


@pytest.fixture(scope="module")
def video_frames(tmp_path_factory) -> torch.Tensor:
    """Real decoded frames (12, 3, 40, 40) of an H.264 video, through the test pipeline."""
    return decoded_frames(synthetic_video(tmp_path_factory.mktemp("video") / "clip.mp4"))


MODELS = [
    ("tsm_online_resnet18", {}),
    ("tsm_online_resnet18", {"place": "block", "fold_div": 4}),
    ("tsm_online_mobilenet_v2", {}),
]


@pytest.mark.parametrize(("name", "overrides"), MODELS)
def test_stream_equals_offline_with_resets(video_frames, name, overrides):
    """Three streams of real video, offset in time; stream 1 is reset at t=3, streams 0 and 2 at t=5."""
    model = random_eval_model(name, **overrides)
    streamer = StreamingRecognizer(model, engine="torch")
    assert streamer.num_caches == len(shifted_modules(model)) > 0
    steps, offsets = 8, (0, 2, 4)
    resets = {3: [1], 5: [0, 2]}
    starts = [0, 0, 0]  # the time step at which each stream last started
    streamed = []
    for t in range(steps):
        if t in resets:
            streamer.reset(resets[t])
            for stream in resets[t]:
                starts[stream] = t
        batch = torch.stack([video_frames[offset + t] for offset in offsets])
        streamed.append(streamer.step(batch))
    streamed = torch.stack(streamed, dim=1)  # (3, steps, K)
    for stream, offset in enumerate(offsets):
        for start, end in _segments(stream, resets, steps):
            expected = offline_frame_logits(model, video_frames[offset + start : offset + end])
            torch.testing.assert_close(streamed[stream, start:end], expected, rtol=1e-4, atol=1e-5)
    # Without the caches the result differs: the test sees the temporal path.
    plain = offline_frame_logits(model, video_frames[:1])[0]
    assert not torch.allclose(streamed[0, 1], plain, atol=1e-4)
    assert not torch.allclose(streamed[0, 1], offline_frame_logits(model, video_frames[1:2])[0], atol=1e-4)


def _segments(stream: int, resets: dict[int, list[int]], steps: int) -> list[tuple[int, int]]:
    cuts = [0, *sorted(t for t, ids in resets.items() if stream in ids), steps]
    return list(itertools.pairwise(cuts))


def test_stream_differs_from_bidirectional_and_refuses_it():
    with pytest.raises(ValueError, match="NEXT frame"):
        StreamingRecognizer(create_model("tsm_resnet18", num_classes=3))
    with pytest.raises(ValueError, match="temporal pooling"):
        StreamingRecognizer(create_model("tsm_resnet50_tpool", num_classes=3, mode="unidirectional"))
    with pytest.raises(TypeError, match="Recognizer"):
        StreamingRecognizer(torch.nn.Linear(2, 2))


def test_tsn_streams_without_caches(video_frames):
    model = random_eval_model("tsn_resnet18")
    streamer = StreamingRecognizer(model, engine="torch")
    assert streamer.num_caches == 0
    logits = torch.stack([streamer.step(video_frames[t : t + 1])[0] for t in range(3)])
    torch.testing.assert_close(logits, offline_frame_logits(model, video_frames[:3]), rtol=1e-4, atol=1e-5)


def test_mobilenet_cache_shapes_match_reference_demo():
    """The reference online demo's MobileNetV2 caches at 224 px (online_demo/main.py: about 106 KB fp32)."""
    step = StreamingStep(create_model("tsm_online_mobilenet_v2", num_classes=27))
    shapes = step.cache_shapes((1, 3, 224, 224))
    expected = [(1, 3, 56, 56), *[(1, 4, 28, 28)] * 2, *[(1, 8, 14, 14)] * 3]
    expected += [*[(1, 12, 14, 14)] * 2, *[(1, 20, 7, 7)] * 2]
    assert shapes == expected
    assert sum(np.prod(s) for s in shapes) * 4 == pytest.approx(106e3, rel=0.05)


def test_caches_are_lazy_and_frame_changes_need_reset():
    model = random_eval_model("tsm_online_resnet18")
    streamer = StreamingRecognizer(model, engine="torch")
    assert streamer.streams.caches is None and streamer.labels is None
    streamer.step(torch.randn(2, 3, 32, 32))
    assert [tuple(c.shape) for c in streamer.streams.caches][:2] == [(2, 8, 8, 8), (2, 8, 8, 8)]
    with pytest.raises(ValueError, match="reset"):
        streamer.step(torch.randn(2, 3, 48, 48))
    with pytest.raises(ValueError, match="reset"):
        streamer.step(torch.randn(3, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        streamer.step(torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="out of range"):
        streamer.reset([2])
    streamer.reset()
    assert streamer.step(torch.randn(3, 3, 48, 48)).shape == (3, 6)


def test_streaming_shares_weights_and_leaves_model_unchanged(video_frames):
    model = random_eval_model("tsm_online_resnet18", num_segments=4)
    before = model(video_frames[:4].unsqueeze(0))
    streamer = StreamingRecognizer(model, engine="torch")
    torch.testing.assert_close(model(video_frames[:4].unsqueeze(0)), before)
    assert len(shifted_modules(model)) == 8
    with torch.no_grad():
        model.new_fc.bias.add_(1.0)
    expected = offline_frame_logits(model, video_frames[:1])
    torch.testing.assert_close(streamer.step(video_frames[:1]), expected, rtol=1e-4, atol=1e-5)


def naive_smooth(logits: list[torch.Tensor], window: int, agree: int) -> list[int]:
    """The reference demo's rule on one stream, written as loops over a Python history."""
    shown, candidates, labels = None, [], []
    for t in range(len(logits)):
        total = sum(logits[max(0, t - window + 1) : t + 1])
        candidates.append(int(total.argmax()))
        last = candidates[-agree:]
        if shown is None or (len(last) == agree and all(c == last[-1] for c in last)):
            shown = candidates[-1]
        labels.append(shown)
    return labels


@settings(max_examples=30, deadline=None)
@given(
    window=st.integers(1, 5),
    agree=st.integers(1, 3),
    steps=st.integers(1, 12),
    reset_at=st.integers(0, 12),
    seed=st.integers(0, 2**16),
)
def test_label_smoother_matches_naive_rule(window, agree, steps, reset_at, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(steps, 2, 3, generator=generator)
    smoother = LabelSmoother(window, agree)
    labels = []
    for t in range(steps):
        if t == reset_at:
            smoother.reset([1])
        labels.append(smoother.update(logits[t]).tolist())
    labels = torch.tensor(labels)
    assert labels[:, 0].tolist() == naive_smooth(list(logits[:, 0]), window, agree)
    cut = reset_at if 0 < reset_at < steps else 0
    expected = naive_smooth(list(logits[:cut, 1]), window, agree) + naive_smooth(
        list(logits[cut:, 1]), window, agree
    )
    assert labels[:, 1].tolist() == expected


def test_smoothing_is_off_by_default_and_validated():
    smoother = LabelSmoother()
    logits = torch.randn(5, 4, 7)
    for t in range(5):
        assert smoother.update(logits[t]).tolist() == logits[t].argmax(1).tolist()
    with pytest.raises(ValueError, match="window"):
        LabelSmoother(window=0)


def test_streams_the_reference_online_demo_checkpoint(tmp_path):
    """The online demo's own frame loop (an independent re-creation) gives the same logits."""
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    path = tmp_path / "mobilenetv2_jester_online.pth.tar"
    torch.save(demo.state_dict(), path)
    model, _ = tsm.load_checkpoint(path)
    streamer = StreamingRecognizer(model, engine="torch")
    frames = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        expected = online_demo_stream(demo, frames)
    streamed = torch.cat([streamer.step(frame[None]) for frame in frames])
    scale = expected.abs().max().item()
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5 * scale)


@settings(max_examples=6, deadline=None)
@given(
    streams=st.integers(1, 3),
    size=st.sampled_from([16, 24, 32, 40]),
    fold_div=st.sampled_from([2, 4, 8]),
    place=st.sampled_from(["blockres", "block"]),
    steps=st.integers(1, 5),
    reset=st.tuples(st.integers(0, 4), st.integers(0, 2)),
)
def test_stream_equals_offline_on_random_shapes(streams, size, fold_div, place, steps, reset):
    """Random batch, frame size, fold_div, placement, length and a partial reset."""
    model = random_eval_model("tsm_online_resnet18", fold_div=fold_div, place=place)
    frames = torch.randn(streams, steps, 3, size, size)
    reset_step, reset_stream = reset[0] % steps, reset[1] % streams
    streamer = StreamingRecognizer(model, engine="torch")
    streamed = []
    for t in range(steps):
        if t == reset_step:
            streamer.reset([reset_stream])
        streamed.append(streamer.step(frames[:, t]))
    streamed = torch.stack(streamed, dim=1)
    for stream in range(streams):
        cut = reset_step if stream == reset_stream else 0
        for start, end in ((0, cut), (cut, steps)):
            if end > start:
                expected = offline_frame_logits(model, frames[stream, start:end])
                torch.testing.assert_close(streamed[stream, start:end], expected, rtol=1e-4, atol=1e-5)

"""Decoding ahead of the engine on another thread: order, bound, errors, early stop; tsm stream and
tsm predict give the same results with and without it."""

from __future__ import annotations

import threading

import pytest
import torch

from stream_helpers import random_eval_model, synthetic_video
from tsm.inference import Predictor, StreamingRecognizer, prefetched, stream_predictions


def test_items_come_in_order_made_on_another_thread_at_most_depth_ahead():
    made, threads = [], set()

    def items():
        for index in range(20):
            made.append(index)
            threads.add(threading.current_thread().name)
            yield index

    consumed = []
    for item in prefetched(items(), depth=3):
        consumed.append(item)
        if item == 5:
            threading.Event().wait(0.2)  # the producer runs ahead, up to the bound
            assert len(made) <= len(consumed) + 3 + 1  # 3 queued, 1 waiting to be queued
    assert consumed == list(range(20)) and threads == {"tsm-prefetch"}
    threads.clear()
    assert list(prefetched(items(), depth=0)) == list(range(20))
    assert threads == {threading.current_thread().name}  # depth 0: in turn, on the caller's thread


def test_an_error_is_raised_at_its_turn():
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    consumed = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        for item in prefetched(items(), depth=2):
            consumed.append(item)
    assert consumed == [1, 2]


def test_stopping_early_closes_the_producer_and_ends_its_thread():
    closed = threading.Event()

    def endless():
        try:
            index = 0
            while True:
                yield index
                index += 1
        finally:
            closed.set()

    before = threading.active_count()
    stream = prefetched(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.is_set() and threading.active_count() == before


def test_stream_and_predict_give_the_same_results_with_and_without_prefetching(tmp_path):
    video = synthetic_video(tmp_path / "grow.mp4", "grow", 10)
    model = random_eval_model("tsm_online_resnet18", num_segments=4, num_classes=4)
    config = {"num_segments": 4, "resize": 40, "input_size": 32}
    streamer = StreamingRecognizer(model, engine="torch")
    names = [f"class_{index}" for index in range(4)]
    runs = [list(stream_predictions(video, streamer, names, config, prefetch=depth)) for depth in (0, 4)]
    assert [event.index for event in runs[1]] == list(range(10))
    for serial, overlapped in zip(*runs, strict=True):
        assert torch.equal(serial.probabilities, overlapped.probabilities)
        assert torch.equal(serial.frame, overlapped.frame) and overlapped.prepare_seconds > 0
    assert len(list(stream_predictions(video, streamer, names, config, max_frames=3))) == 3
    missing = tmp_path / "missing.mp4"
    predictor = Predictor(model, engine="torch")
    videos = [video, missing, video]
    serial, overlapped = (predictor.predict(videos, prefetch=depth) for depth in (0, 2))
    assert [p.to_dict() for p in serial] == [p.to_dict() for p in overlapped]
    assert overlapped[1].error is not None and overlapped[0].scores == overlapped[2].scores


def test_the_producer_runs_torch_single_threaded_and_the_caller_keeps_its_threads():
    """A second OpenMP team on the producer's thread would fight the torch engine's for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:

        def thread_counts():
            yield torch.get_num_threads()

        assert list(prefetched(thread_counts(), depth=2)) == [1]
        assert torch.get_num_threads() == 2
        assert list(prefetched(thread_counts(), depth=0)) == [2]  # depth 0: the caller's own thread
    finally:
        torch.set_num_threads(before)

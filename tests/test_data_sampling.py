"""Sampling against naive re-statements of the reference's formulas
(the reference's ops/dataset.py: _sample_indices, _get_val_indices, _get_test_indices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tsm.data import DataConfig, clip_indices, dense_indices, segment_indices

frames = st.integers(1, 400)
segments = st.integers(1, 16)


@settings(max_examples=80, deadline=None)
@given(n=frames, t=segments)
def test_uniform_test_is_segment_centre(n: int, t: int) -> None:
    tick = n / t
    expected = [int(tick / 2.0 + tick * i) for i in range(t)]
    assert segment_indices(n, t, train=False) == expected
    assert segment_indices(n, t, train=False, twice_sample=True) == expected + (
        [int(tick * i) for i in range(t)] if n >= t else expected
    )
    assert all(0 <= i < n for i in expected)


@settings(max_examples=80, deadline=None)
@given(n=frames, t=segments, seed=st.integers(0, 2**31))
def test_uniform_train_one_random_frame_per_segment(n: int, t: int, seed: int) -> None:
    got = segment_indices(n, t, train=True, rng=torch.Generator().manual_seed(seed))
    assert len(got) == t and all(0 <= i < n for i in got)
    if n >= t:
        average = n // t
        offsets = [index - i * average for i, index in enumerate(got)]
        assert all(0 <= offset < average for offset in offsets)
    else:  # short video: evenly spread, repeating indices
        assert got == [int(n / t / 2 + n / t * i) for i in range(t)] and len(set(got)) == n


def test_uniform_train_covers_every_offset() -> None:
    rng = torch.Generator().manual_seed(0)
    seen = {tuple(segment_indices(30, 3, train=True, rng=rng)) for _ in range(400)}
    firsts = {draw[0] for draw in seen}
    assert firsts == set(range(10))  # avg = 10: offsets 0..9 all drawn
    assert {draw[2] for draw in seen} == set(range(20, 30))


@settings(max_examples=60, deadline=None)
@given(n=frames, t=st.sampled_from([1, 2, 4, 8, 16]), clips=st.integers(1, 10))
def test_dense_test_formula(n: int, t: int, clips: int) -> None:
    stride = 64 // t
    starts = np.linspace(0, max(0, n - 64), num=clips, dtype=int)
    expected = [(int(start) + i * stride) % n for start in starts for i in range(t)]
    assert dense_indices(n, t, train=False, num_clips=clips) == expected


@settings(max_examples=60, deadline=None)
@given(n=frames, t=st.sampled_from([1, 2, 4, 8, 16]), seed=st.integers(0, 2**31))
def test_dense_train_window(n: int, t: int, seed: int) -> None:
    got = dense_indices(n, t, train=True, rng=torch.Generator().manual_seed(seed))
    stride = 64 // t
    start = got[0]
    assert 0 <= start < max(1, n - 64)  # reference: randint(0, n - 64), exclusive
    assert got == [(start + i * stride) % n for i in range(t)]


def test_clip_indices_follow_config() -> None:
    config = DataConfig(num_segments=4, sampling="dense")
    indices, clips = clip_indices(300, config, train=False)
    assert clips == 10 and len(indices) == 40
    indices, clips = clip_indices(300, DataConfig(num_segments=4, twice_sample=True), train=False)
    assert clips == 2 and len(indices) == 8
    indices, clips = clip_indices(300, DataConfig(num_segments=4, twice_sample=True), train=True)
    assert clips == 1 and len(indices) == 4


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="0 frames"):
        segment_indices(0, 8, train=False)
    with pytest.raises(ValueError, match="num_segments"):
        segment_indices(10, 0, train=True)
    with pytest.raises(ValueError, match="twice_sample"):
        segment_indices(10, 2, train=True, twice_sample=True)
    with pytest.raises(ValueError, match="unknown settings"):
        DataConfig.from_dict(num_segment=8)
    with pytest.raises(ValueError, match="twice_sample"):
        DataConfig(num_clips=3)

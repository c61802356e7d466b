"""Train/test pipelines: multi-scale crop facts, one crop for all frames, flip label map, test views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tsm.data import (
    SOMETHING_V2_FLIP_LABEL_MAP,
    DataConfig,
    EvalPipeline,
    MultiScaleCrop,
    TrainPipeline,
    build_pipeline,
    fixed_crop_offsets,
    frame_transform,
    multiscale_crop_sizes,
    read_frames,
    render_synthetic_clip,
    write_video,
)


def _ramp_clip(frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 frames where frame t = a fixed random image + t: any crop/resize keeps frame t - frame 0 == t."""
    base = torch.randint(0, 200, (1, 3, height, width), dtype=torch.uint8)
    return base + torch.arange(frames, dtype=torch.uint8).view(-1, 1, 1, 1) * 5


def test_multiscale_crop_sizes_match_tsn() -> None:
    pairs = multiscale_crop_sizes(340, 256, 224, (1, 0.875, 0.75, 0.66), max_distort=1)
    # sides int(256 * s) = 256, 224, 192, 168; pairs at most one scale step apart: 4 + 3 + 3
    sides = [256, 224, 192, 168]
    expected = {(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1}
    assert set(pairs) == expected and len(pairs) == 10
    # snapping: a side within 3 px of the input size becomes the input size
    assert (224, 224) in multiscale_crop_sizes(258, 258, 224, (0.87,), max_distort=0)


def test_thirteen_fixed_offsets() -> None:
    offsets = fixed_crop_offsets(340, 256, 224, 192)
    step_w, step_h = (340 - 224) // 4, (256 - 192) // 4
    assert len(offsets) == len(set(offsets)) == 13
    assert {
        (0, 0),
        (4 * step_w, 0),
        (0, 4 * step_h),
        (4 * step_w, 4 * step_h),
        (2 * step_w, 2 * step_h),
    } <= set(offsets)
    assert all(x % step_w == 0 and y % step_h == 0 for x, y in offsets)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(16, 500), height=st.integers(16, 500), size=st.integers(8, 300))
@example(width=300, height=222, size=224)  # the 3-pixel snap would make a 224 crop of 222 rows
def test_multiscale_crops_stay_inside_the_frame(width: int, height: int, size: int) -> None:
    for crop_w, crop_h in multiscale_crop_sizes(width, height, size, (1, 0.875, 0.75, 0.66), 1):
        for left, top in fixed_crop_offsets(width, height, crop_w, crop_h):
            assert left >= 0 and top >= 0 and left + crop_w <= width and top + crop_h <= height


def test_multiscale_crop_draws_every_size_and_position() -> None:
    crop = MultiScaleCrop(224)
    frames = torch.zeros(2, 3, 256, 340, dtype=torch.uint8)
    drawn = [crop.make_params([frames]) for _ in range(3000)]
    sizes = {(params["width"], params["height"]) for params in drawn}
    assert sizes == set(multiscale_crop_sizes(340, 256, 224, (1, 0.875, 0.75, 0.66), 1))
    for width, height in sizes:
        positions = {(p["left"], p["top"]) for p in drawn if (p["width"], p["height"]) == (width, height)}
        assert positions <= set(fixed_crop_offsets(340, 256, width, height))
    square = {(p["left"], p["top"]) for p in drawn if (p["width"], p["height"]) == (192, 192)}
    assert len(square) == 13


def test_multiscale_crop_is_one_crop_for_all_frames() -> None:
    clip = _ramp_clip(6, 60, 80)
    crop = MultiScaleCrop(32)
    for _ in range(10):
        out = crop(clip).to(torch.int16)
        assert out.shape == (6, 3, 32, 32)
        difference = out - out[:1]
        expected = torch.arange(6, dtype=torch.int16).view(-1, 1, 1, 1) * 5
        assert (difference - expected).abs().max() <= 1  # rounding of the resize only


def test_train_pipeline_normalizes_and_flips_labels() -> None:
    config = DataConfig(resize=40, input_size=32, flip_label_map={"3": 4, "4": 3})
    pipeline = build_pipeline(config, train=True)
    assert isinstance(pipeline, TrainPipeline)
    clip = _ramp_clip(4, 48, 64)
    labels = set()
    for _ in range(40):
        out, label = pipeline(clip, 3)
        assert out.dtype == torch.float32 and out.shape == (4, 3, 32, 32)
        labels.add(label)
    assert labels == {3, 4}  # mirrored half of the time, with the label swapped
    assert {pipeline(clip, 7)[1] for _ in range(20)} == {7}  # unmapped labels stay


def test_something_v2_flip_map_is_the_published_one() -> None:
    config = DataConfig(flip_label_map=SOMETHING_V2_FLIP_LABEL_MAP)
    pairs = {int(key): value for key, value in config.flip_label_map.items()}
    assert pairs == {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}  # MMAction2's SSv2 TSM configs
    assert all(pairs[pairs[key]] == key for key in pairs)


def test_flip_label_map_goes_with_the_mirror() -> None:
    # Left half dark, right half bright: a mirrored clip is bright on the left.
    clip = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    clip[..., 16:] = 255
    pipeline = TrainPipeline(
        DataConfig(
            resize=None,
            input_size=32,
            train_pipeline="center_crop",
            flip_label_map={0: 1},
            mean=[0, 0, 0],
            std=[1, 1, 1],
        )
    )
    for _ in range(20):
        out, label = pipeline(clip, 0)
        mirrored = bool(out[0, 0, 0, 0] > 0.5)
        assert label == (1 if mirrored else 0)


def test_no_flip_when_disabled() -> None:
    clip = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    clip[..., 16:] = 255
    pipeline = TrainPipeline(
        DataConfig(resize=None, input_size=32, train_pipeline="center_crop", flip=False)
    )
    for _ in range(10):
        out, _ = pipeline(clip, 0)
        assert out[0, 0, 0, 0] < out[0, 0, 0, -1]


@pytest.mark.parametrize(
    ("views", "full_res", "twice", "expected"),
    [
        ("center", False, False, 1),
        ("center", True, False, 1),
        ("three", True, False, 3),
        ("ten", False, True, 20),
    ],
)
def test_eval_views_shapes(views: str, full_res: bool, twice: bool, expected: int) -> None:
    config = DataConfig(
        num_segments=3, resize=40, input_size=32, test_views=views, full_res=full_res, twice_sample=twice
    )
    pipeline = build_pipeline(config, train=False)
    assert isinstance(pipeline, EvalPipeline)
    clips = 2 if twice else 1
    out, label = pipeline(_ramp_clip(3 * clips, 40, 60), 5)
    size = 40 if full_res else 32
    assert out.shape == (expected, 3, 3, size, size) and label == 5
    assert config.views_per_sample == expected


def test_eval_crops_are_the_expected_windows() -> None:
    config = DataConfig(
        num_segments=2, resize=None, input_size=20, test_views="three", mean=[0, 0, 0], std=[1, 1, 1]
    )
    frames = torch.randint(0, 256, (4, 3, 20, 50), dtype=torch.uint8)  # 2 clips of 2 frames
    out, _ = EvalPipeline(config)(frames, 0)
    expected = [frames[..., left : left + 20] for left in (0, 15, 30)]
    reference = torch.stack([crop.view(2, 2, 3, 20, 20)[clip] for clip in range(2) for crop in expected])
    torch.testing.assert_close(out, reference.float() / 255)
    ten = EvalPipeline(config.replace(test_views="ten"))(frames[:2], 0)[0]
    torch.testing.assert_close(ten[0], frames[:2, :, :, :20].float() / 255)  # top-left
    torch.testing.assert_close(ten[5], frames[:2, :, :, :20].flip(-1).float() / 255)  # its mirror


def test_eval_rejects_partial_clips() -> None:
    with pytest.raises(ValueError, match="whole number"):
        EvalPipeline(DataConfig(num_segments=3, resize=None, input_size=8))(
            torch.zeros(4, 3, 8, 8, dtype=torch.uint8), 0
        )


@pytest.mark.parametrize(
    "changes",
    [
        {},  # resize to 40 (antialiased bilinear), crop 32
        {"resize": None, "input_size": 40},  # crop only
        {"interpolation": "bicubic", "antialias": False, "pixel_scale": 1.0, "mean": (120.0, 115.0, 100.0)},
        {"resize": 96, "input_size": 80},  # upsampling the 64x48 frames
    ],
)
def test_frame_transform_is_the_test_pipeline_bit_for_bit_on_decoded_frames(tmp_path, changes) -> None:
    """The one-pass frame transform equals EvalPipeline's centre view exactly, on frames as PyAV
    decodes them (HWC memory) and as planar (3, H, W) tensors (what torchvision's decoder gives),
    alone and written into a row of a batch."""
    rng = np.random.default_rng(3)
    video = write_video(tmp_path / "clip.mp4", render_synthetic_clip("grow", 64, 6, rng)[:, :48])
    frames = read_frames(video, range(6))
    config = DataConfig(num_segments=1, resize=40, input_size=32).replace(**changes)
    transform, pipeline = frame_transform(config), EvalPipeline(config)
    batch = torch.full((len(frames), 3, config.test_crop_size, config.test_crop_size), float("nan"))
    for index, frame in enumerate(frames):
        expected = pipeline(frame[None], -1)[0][0, 0]
        assert torch.equal(transform(frame), expected)
        assert torch.equal(transform(frame.contiguous()), expected)
        row = batch[index]
        assert transform.write(frame, row) is row
        assert torch.equal(batch[index], expected)

"""tsm serve's frame decoding (torchvision's JPEG decoder, Pillow's pixels) and its batch policy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")

from tsm.apps.serve.batch_policy import BatchPolicy
from tsm.apps.serve.frames import FrameError, decode_frame
from tsm.data import render_synthetic_clip

LIMITS = (1 << 20, 4096 * 4096)


def jpeg(frame: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=85, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg_frames_decode_to_pillows_pixels(mode):
    """What the model sees does not depend on the decoder: torchvision's = Pillow's, exactly."""
    frame = render_synthetic_clip("grow", 96, 3, np.random.default_rng(0))[1][:72]
    data = jpeg(np.asarray(Image.fromarray(frame).convert(mode).convert("RGB")) if mode == "L" else frame)
    if mode == "CMYK":
        buffer = io.BytesIO()
        Image.fromarray(frame).convert("CMYK").save(buffer, "JPEG", quality=85)
        data = buffer.getvalue()
    decoded = decode_frame(data, *LIMITS)
    expected = torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 72, 96)
    assert torch.equal(decoded, expected)


def test_a_truncated_jpeg_is_a_one_line_frame_error():
    data = jpeg(render_synthetic_clip("grow", 64, 2, np.random.default_rng(1))[0])
    with pytest.raises(FrameError, match=r"^the JPEG frame cannot be decoded: [^/\n]+$"):
        decode_frame(data[: len(data) // 2], *LIMITS)


def test_a_fixed_max_batch_caps_every_call():
    policy = BatchPolicy(max_batch=2)
    assert [policy.size(ready) for ready in (0, 1, 2, 5)] == [0, 1, 2, 2]
    assert BatchPolicy(max_batch=1).size(4) == 1


def test_measured_policy_batches_only_where_the_cost_per_frame_falls():
    flat = BatchPolicy(None)
    assert flat.size(3) == 1  # batch 1 is measured first
    flat.record(1, 0.010)
    assert flat.size(3) == 3  # then every new size once
    flat.record(3, 0.031)  # 10.3 ms a frame: no saving
    assert flat.size(3) == 1 and flat.size(2) == 2  # 2 has not been measured yet
    flat.record(2, 0.020)
    assert flat.size(2) == 1 and flat.size(3) == 1
    falling = BatchPolicy(None)
    falling.record(1, 0.010)
    falling.record(4, 0.020)  # 5 ms a frame
    assert falling.size(4) == 4 and falling.size(6) == 6
    falling.record(6, 0.060)
    assert falling.size(6) == 4  # the smallest batch within 10 % of the cheapest per frame
    assert falling.describe() == {"policy": "measured", "per_frame_ms": {"1": 10.0, "4": 5.0, "6": 10.0}}


def test_measured_policy_measures_each_size_again_after_a_while():
    policy = BatchPolicy(None, refresh=5)
    policy.record(1, 0.010)
    policy.record(2, 0.030)
    assert policy.size(2) == 1
    for _ in range(4):
        policy.record(1, 0.010)
    assert policy.size(2) == 1
    policy.record(1, 0.010)
    assert policy.size(2) == 2  # five calls since batch 2 was measured

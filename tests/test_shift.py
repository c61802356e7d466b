"""The shift op against a naive loop reference and the semantics of TSM-FACTS.md."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import tsm
from tsm.ops import shift as shift_module


def naive_shift(x: torch.Tensor, num_segments: int, fold_div: int, mode: str) -> torch.Tensor:
    """Element by element: loops over clips, frames and channels (independent of the library)."""
    frames, channels = x.shape[:2]
    fold = channels // fold_div
    out = torch.zeros_like(x, memory_format=torch.contiguous_format)
    for clip in range(frames // num_segments):
        for t in range(num_segments):
            row = clip * num_segments + t
            for c in range(channels):
                if mode == "bidirectional" and c < fold:
                    source = t + 1  # "shift left": frame t receives frame t+1
                elif mode == "bidirectional" and c < 2 * fold:
                    source = t - 1  # "shift right": frame t receives frame t-1
                elif mode == "unidirectional" and c < fold:
                    source = t - 1  # online: only the past
                else:
                    source = t
                if 0 <= source < num_segments:
                    out[row, c] = x[clip * num_segments + source, c]
    return out


IMPLEMENTATIONS = {
    "public": lambda x, t, fd, mode: tsm.temporal_shift(x, t, fd, mode),
    "copy": lambda x, t, fd, mode: shift_module._shift_by_copy(
        x, t, x.shape[1] // fd, shift_module.shift_offsets(mode)
    ),
    "concatenation": lambda x, t, fd, mode: shift_module._shift_by_concatenation(
        x, t, x.shape[1] // fd, shift_module.shift_offsets(mode)
    ),
}


@settings(max_examples=60, deadline=None)
@given(
    clips=st.integers(1, 3),
    num_segments=st.integers(1, 6),
    fold_div=st.integers(2, 9),
    extra_channels=st.integers(0, 12),
    height=st.integers(1, 4),
    width=st.integers(1, 4),
    mode=st.sampled_from(["bidirectional", "unidirectional"]),
    implementation=st.sampled_from(sorted(IMPLEMENTATIONS)),
    channels_last=st.booleans(),
)
def test_matches_naive_reference(
    clips, num_segments, fold_div, extra_channels, height, width, mode, implementation, channels_last
):
    channels = fold_div + extra_channels
    x = torch.randn(clips * num_segments, channels, height, width)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    before = x.clone()
    out = IMPLEMENTATIONS[implementation](x, num_segments, fold_div, mode)
    assert torch.equal(out, naive_shift(x, num_segments, fold_div, mode))
    assert torch.equal(x, before), "the shift must never write into its input"
    assert out.data_ptr() != x.data_ptr()


def test_seed_worked_example():
    """A channel holding frames 1..8 becomes 2..8,0 (shift left) and 0,1..7 (shift right)."""
    frames = torch.arange(1.0, 9.0)
    x = frames.view(8, 1, 1, 1).expand(8, 16, 1, 1).contiguous()  # fold = 16 // 8 = 2
    out = tsm.temporal_shift(x, num_segments=8)[:, :, 0, 0]
    assert out[:, 0].tolist() == [2, 3, 4, 5, 6, 7, 8, 0]
    assert out[:, 2].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert out[:, 4].tolist() == frames.tolist()
    online = tsm.temporal_shift(x, num_segments=8, mode="unidirectional")[:, :, 0, 0]
    assert online[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert online[:, 2].tolist() == frames.tolist()


def test_unidirectional_fold_div_one_moves_every_channel():
    x = torch.randn(6, 3, 2, 2)
    assert torch.equal(
        tsm.temporal_shift(x, 3, fold_div=1, mode="unidirectional"), naive_shift(x, 3, 1, "unidirectional")
    )


def test_quarter_of_channels_move_by_default():
    x = torch.randn(16, 64, 2, 2)
    moved = (tsm.temporal_shift(x, 8) != x).flatten(2).any(-1).any(0)
    assert moved.sum().item() == 16  # 64 // 8 * 2 groups


def test_clips_do_not_leak_into_each_other():
    x = torch.zeros(2 * 4, 8, 1, 1)
    x[4:] = 1.0  # second clip all ones, first clip all zeros
    out = tsm.temporal_shift(x, num_segments=4, fold_div=4)
    assert out[:4].abs().sum() == 0
    assert out[4:, :2].sum() == 6  # 3 of 4 frames filled per moved channel, zeros at the clip end


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_dtypes_and_memory_format(dtype, channels_last):
    x = torch.randn(12, 24, 5, 3).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for mode in ("bidirectional", "unidirectional"):
        out = tsm.temporal_shift(x, 4, mode=mode)
        assert out.dtype == dtype
        assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert torch.equal(out.float(), naive_shift(x.float(), 4, 8, mode))


@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
def test_gradcheck(mode):
    x = torch.randn(6, 9, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: tsm.temporal_shift(v, 3, 4, mode), (x,))


@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
def test_compiles_without_graph_breaks(mode):
    x = torch.randn(8, 16, 3, 3, requires_grad=True)
    compiled = torch.compile(
        lambda v: tsm.temporal_shift(v, 4, mode=mode), fullgraph=True, backend="aot_eager"
    )
    out = compiled(x)
    assert torch.equal(out, naive_shift(x.detach(), 4, 8, mode))
    out.sum().backward()
    assert x.grad is not None


def test_trace_keeps_batch_dynamic():
    """A traced shift must not freeze the zero padding or the batch size into constants."""

    class Shift(nn.Module):
        def forward(self, x):
            return tsm.temporal_shift(x, 4)

    traced = torch.jit.trace(Shift(), torch.randn(8, 16, 2, 2))
    x = torch.randn(12, 16, 2, 2)
    assert torch.equal(traced(x), naive_shift(x, 4, 8, "bidirectional"))


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((10, 16, 2, 2), {"num_segments": 4}, "not divisible by num_segments=4"),
        ((8, 4, 2, 2), {"num_segments": 4}, "fewer than fold_div=8"),
        ((8, 16, 2), {"num_segments": 4}, "4-D tensor"),
        ((8, 16, 2, 2), {"num_segments": 4, "mode": "sideways"}, "unknown shift mode 'sideways'"),
        ((8, 16, 2, 2), {"num_segments": 0}, "num_segments must be a positive int"),
        ((8, 16, 2, 2), {"num_segments": 4, "fold_div": 1}, "fold_div must be an int >= 2"),
    ],
)
def test_errors_name_the_problem(shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tsm.temporal_shift(torch.randn(shape), **kwargs)


def test_module_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown shift mode"):
        tsm.TemporalShift(nn.Identity(), 8, mode="both")
    with pytest.raises(ValueError, match="num_segments"):
        tsm.TemporalShift(nn.Identity(), 0)


CONVS = {
    "pointwise": lambda: nn.Conv2d(16, 8, 1, bias=False),  # narrowing: copy-free GEMM path
    "pointwise_bias": lambda: nn.Conv2d(16, 4, 1),
    "pointwise_expansion": lambda: nn.Conv2d(16, 48, 1, bias=False),  # widening: one-pass copy
    "3x3_stride2": lambda: nn.Conv2d(16, 8, 3, stride=2, padding=1, bias=False),
    "grouped_dilated": lambda: nn.Conv2d(16, 8, 3, padding=2, dilation=2, groups=4),
}


@pytest.mark.parametrize("conv_name", sorted(CONVS))
@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_wrapped_conv_equals_conv_of_shift(conv_name, mode, channels_last):
    """Every fast path (copy-free inference GEMMs, recomputing autograd function) is exact."""
    conv = CONVS[conv_name]().double()
    module = tsm.TemporalShift(conv, num_segments=3, mode=mode)
    x = torch.randn(6, 16, 5, 5, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
        module = module.to(memory_format=torch.channels_last)
    expected = conv(naive_shift(x, 3, 8, mode))
    with torch.no_grad():
        copy_free = shift_module._can_skip_shift_copy(conv, x)
        assert copy_free == (conv_name in ("pointwise", "pointwise_bias"))
        torch.testing.assert_close(module(x), expected)
    x.requires_grad_(True)
    out = module(x)
    torch.testing.assert_close(out, expected)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, *conv.parameters()], grad_out)
    x_ref = x.detach().clone().requires_grad_(True)
    ref_out = conv(tsm.temporal_shift(x_ref, 3, mode=mode))  # plain autograd through slices
    ref_grads = torch.autograd.grad(ref_out, [x_ref, *conv.parameters()], grad_out)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref)


def test_recomputing_path_gradcheck():
    conv = nn.Conv2d(8, 4, 3, padding=1).double()
    module = tsm.TemporalShift(conv, num_segments=2, fold_div=4)
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w, b: module(v), (x, conv.weight, conv.bias))


def test_recomputing_path_under_autocast_bf16():
    conv = nn.Conv2d(16, 8, 3, padding=1)
    module = tsm.TemporalShift(conv, num_segments=4)
    x = torch.randn(8, 16, 6, 6, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
        expected = F.conv2d(tsm.temporal_shift(x, 4), conv.weight, conv.bias, padding=1)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32
    assert conv.weight.grad.dtype == torch.float32


def _saved_bytes(model: nn.Module, clips: torch.Tensor) -> int:
    """Bytes of the unique storages autograd keeps for backward."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(clips).sum()
    return sum(storages.values())


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "mobilenet_v2"])
def test_tsm_keeps_no_more_for_backward_than_tsn(backbone):
    """The shifted copy is recomputed in backward, never stored (TSM-FACTS: the reference +23%)."""
    clips = torch.randn(1, 4, 3, 32, 32)
    tsm_model = tsm.Recognizer(5, num_segments=4, backbone=backbone).train()
    tsn_model = tsm.Recognizer(5, num_segments=4, backbone=backbone, shift=False).train()
    assert _saved_bytes(tsm_model, clips) == _saved_bytes(tsn_model, clips)

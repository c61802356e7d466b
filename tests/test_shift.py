"""The shift op against a naive loop reference and the semantics of the paper and of the
reference's ops/temporal_shift.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import tsm
from devices import DEVICES, needs_cuda
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_dtypes_memory_formats_and_devices(device, dtype, channels_last):
    x = torch.randn(12, 24, 5, 3).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for mode in ("bidirectional", "unidirectional"):
        out = tsm.temporal_shift(x.to(device), 4, mode=mode)
        assert out.device.type == device
        assert out.dtype == dtype
        assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert torch.equal(out.cpu().float(), naive_shift(x.float(), 4, 8, mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
def test_gradcheck(mode, device):
    x = torch.randn(6, 9, 2, 3, dtype=torch.float64, device=device, requires_grad=True)
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


TRITON_INTERPRETER_CHECK = """
import random, sys
import torch
sys.path.insert(0, sys.argv[1])
from test_shift import naive_shift
from tsm.ops.shift import shift_offsets
from tsm.ops.triton_shift import TritonShift
draw = random.Random(0)
for case in range(24):
    num_segments, fold_div = draw.randint(1, 5), draw.randint(2, 6)
    mode = draw.choice(["bidirectional", "unidirectional"])
    frames = draw.randint(1, 3) * num_segments
    # multiples of 4 and 8 channels let the kernel move 2-8 elements per vector
    channels = fold_div * draw.choice([1, 4, 8]) + draw.choice([0, 0, draw.randint(1, 9)])
    shape = (frames, channels, draw.randint(1, 4), draw.randint(1, 4))
    # values exact in bfloat16, so that every cast below is exact and only the indexing is tested
    x = torch.randn(shape).bfloat16().to(draw.choice([torch.float64, torch.float32, torch.bfloat16]))
    if case % 2:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    dtype = draw.choice([x.dtype, torch.float32])  # the shift can cast on the way
    out = TritonShift.apply(x, num_segments, shape[1] // fold_div, shift_offsets(mode), dtype)
    reference_input = x.detach().clone().requires_grad_(True)
    reference = naive_shift(reference_input, num_segments, fold_div, mode)
    assert out.dtype == dtype and torch.equal(out, reference.to(dtype)), (case, shape, mode)
    assert out.is_contiguous(memory_format=torch.channels_last if case % 2 else torch.contiguous_format)
    grad = torch.randn_like(out).bfloat16().to(dtype)
    out.backward(grad)
    if reference.requires_grad:  # else every element came from outside the clip: zero gradient
        reference.backward(grad.to(x.dtype))
    expected = torch.zeros_like(x) if reference_input.grad is None else reference_input.grad
    assert x.grad.dtype == x.dtype and torch.equal(x.grad, expected), (case, shape, mode)
print("checked 24 shapes")
"""


def test_triton_kernel_matches_naive_reference_in_the_interpreter():
    """The CUDA kernel's indexing, run by Triton's CPU interpreter so that it is checked without a GPU."""
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    tests_folder = str(Path(__file__).parent)
    command = [sys.executable, "-c", TRITON_INTERPRETER_CHECK, tests_folder]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checked 24 shapes" in result.stdout


@needs_cuda
def test_compiled_tsm_network_matches_eager_on_cuda(monkeypatch):
    """Inductor's generated kernels (fullgraph, forward and backward) agree with eager TSM."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = tsm.Recognizer(5, num_segments=4, backbone="resnet18", dropout=0.0).cuda().train()
    # 64 px: at 32 px layer4 runs on 1x1 maps, where torch 2.11's inductor expects other weight
    # gradient strides than cuDNN returns (a PyTorch issue, TSN alike)
    clips = torch.randn(2, 4, 3, 64, 64, device="cuda")
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(clips)
    torch.testing.assert_close(out, model(clips), rtol=1e-4, atol=1e-4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("conv_name", sorted(CONVS))
@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_wrapped_conv_equals_conv_of_shift(conv_name, mode, channels_last, device):
    """Every fast path (copy-free inference GEMMs, recomputing autograd function) is exact."""
    conv = CONVS[conv_name]().double().to(device)
    module = tsm.TemporalShift(conv, num_segments=3, mode=mode)
    x = torch.randn(6, 16, 5, 5, dtype=torch.float64, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
        module = module.to(memory_format=torch.channels_last)
    expected = conv(naive_shift(x, 3, 8, mode))
    with torch.no_grad():
        copy_free = shift_module._can_skip_shift_copy(conv, x)
        assert copy_free == (conv_name in ("pointwise", "pointwise_bias") and device == "cpu")
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_copy_free_inference_in_bf16(device, channels_last):
    """The GEMM path in a bf16 model (weights and activations bf16) agrees with conv(shift)."""
    conv = nn.Conv2d(64, 16, 1, bias=False).to(device, torch.bfloat16)
    module = tsm.TemporalShift(conv, num_segments=4)
    x = torch.randn(8, 64, 7, 7, device=device, dtype=torch.bfloat16)
    if channels_last:
        x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    with torch.no_grad():
        out = module(x)
        expected = F.conv2d(naive_shift(x.double(), 4, 8, "bidirectional"), conv.weight.double())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_recomputing_path_gradcheck(device):
    conv = nn.Conv2d(8, 4, 3, padding=1).double().to(device)
    module = tsm.TemporalShift(conv, num_segments=2, fold_div=4)
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w, b: module(v), (x, conv.weight, conv.bias))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_shift_casts_on_the_way(device, channels_last):
    """The recomputing conv shifts float32 activations straight into its bf16 input (one pass)."""
    x = torch.randn(8, 16, 3, 5, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    offsets = shift_module.shift_offsets("bidirectional")
    out = shift_module._apply_shift(x, 4, 2, offsets, torch.bfloat16)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(out, naive_shift(x, 4, 8, "bidirectional").to(torch.bfloat16))  # rounded alike


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_recomputing_path_under_autocast_bf16(device, input_dtype):
    conv = nn.Conv2d(16, 8, 3, padding=1).to(device)
    module = tsm.TemporalShift(conv, num_segments=4)
    x = torch.randn(8, 16, 6, 6, device=device, dtype=input_dtype, requires_grad=True)
    with torch.autocast(device, dtype=torch.bfloat16):
        out = module(x)
        expected = F.conv2d(tsm.temporal_shift(x, 4), conv.weight, conv.bias, padding=1)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected_grads = torch.autograd.grad(expected, [x, conv.weight], grad)
    assert x.grad.dtype == input_dtype
    assert conv.weight.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, expected_grads[0])
    torch.testing.assert_close(conv.weight.grad, expected_grads[1])


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "mobilenet_v2"])
def test_tsm_keeps_no_more_for_backward_than_tsn(backbone, device):
    """The shifted copy is recomputed in backward, never stored
    (the reference's slice copy keeps it: +23% in benchmarks/bench_core.py)."""
    clips = torch.randn(1, 4, 3, 32, 32, device=device)
    tsm_model = tsm.Recognizer(5, num_segments=4, backbone=backbone).to(device).train()
    tsn_model = tsm.Recognizer(5, num_segments=4, backbone=backbone, shift=False).to(device).train()
    assert _saved_bytes(tsm_model, clips) == _saved_bytes(tsn_model, clips)

"""The temporal shift as one Triton kernel, for CUDA tensors.

Eager PyTorch needs five kernels per shift (a copy and a zero fill per moved group, a copy of the
rest), and strided copies of thin channel slices run far below the GPU's bandwidth. This kernel
writes every output element once, reading it from its source frame (or writing a zero at a clip
end), in one launch, for NCHW and channels_last alike: the frame stride is C*H*W in both, only
the channel of an element is found differently.

Triton ships with PyTorch's CUDA builds for Linux. Where it is missing, :func:`available` is
false and the shift falls back to the eager copy.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only builds, macOS, Windows
    triton = None

_BLOCK = 1024
_MAX_FRAMES = 65535  # the kernel's grid runs one program row per frame (CUDA's grid y limit)


def available(x: Tensor) -> bool:
    """True when ``x`` can be shifted by the kernel: Triton present, a CUDA tensor, NCHW or NHWC."""
    frames, channels, height, width = x.shape
    return (
        triton is not None
        and x.is_cuda
        and 0 < frames <= _MAX_FRAMES
        and 0 < channels * height * width < 2**31
        and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
    )


if triton is not None:

    @triton.jit
    def _shift_kernel(
        source,
        target,
        frame_numel,
        channel_stride,
        channels,
        num_segments,
        fold,
        offset_first,
        offset_second,
        BLOCK: tl.constexpr,
        VECTOR: tl.constexpr,
    ):
        """One program row per frame; a program moves BLOCK elements as BLOCK // VECTOR vectors.

        Every vector lies inside one channel group (the launcher picks VECTOR so), so it has one
        source frame and is read and written whole (16-byte accesses when VECTOR allows).
        """
        frame = tl.program_id(1)
        vectors = tl.program_id(0) * (BLOCK // VECTOR) + tl.arange(0, BLOCK // VECTOR)
        start = vectors * VECTOR  # position of each vector inside the frame
        inside = start < frame_numel
        group = (start // channel_stride) % channels // fold  # 0, 1 move; 2 and up stay
        offset = tl.where(group == 0, offset_first, tl.where(group == 1, offset_second, 0))
        time = frame % num_segments + offset
        valid = inside & (time >= 0) & (time < num_segments)
        base = frame.to(tl.int64) * frame_numel
        index = start[:, None] + tl.arange(0, VECTOR)[None, :]
        value = tl.load(
            source + base + (offset * frame_numel)[:, None] + index, mask=valid[:, None], other=0.0
        )
        tl.store(target + base + index, value, mask=inside[:, None])


def _vector_length(x: Tensor, fold: int, channel_stride: int) -> int:
    """Elements per vector: up to 16 bytes, so that no vector crosses a channel-group boundary.

    Group boundaries fall at multiples of ``fold * channel_stride`` inside each run of all
    channels (``channels * channel_stride`` elements: a frame in NCHW, a pixel in channels_last).
    """
    vector = max(1, 16 // x.element_size())
    while (fold * channel_stride) % vector or (x.shape[1] * channel_stride) % vector:
        vector //= 2
    return vector


def launch_shift(
    x: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...], dtype: torch.dtype | None = None
) -> Tensor:
    """Shift ``x`` (N*T, C, H, W) into a new tensor of the same memory format (cast to ``dtype``
    in the same pass), in one kernel."""
    frames, channels, height, width = x.shape
    channels_last = not x.is_contiguous()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty_like(x, dtype=dtype, memory_format=memory_format)
    frame_numel = channels * height * width
    channel_stride = 1 if channels_last else height * width
    offset_first, offset_second = (*offsets, 0)[:2]  # unidirectional: the second group stays
    vector = _vector_length(x, fold, channel_stride)
    grid = (triton.cdiv(frame_numel, _BLOCK), frames)
    _shift_kernel[grid](
        x,
        out,
        frame_numel,
        channel_stride,
        channels,
        num_segments,
        fold,
        offset_first,
        offset_second,
        BLOCK=_BLOCK,
        VECTOR=vector,
    )
    return out


class TritonShift(torch.autograd.Function):
    """The kernel with autograd: the gradient of a shift is the opposite shift (the same kernel)."""

    @staticmethod
    def forward(
        ctx, x: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...], dtype: torch.dtype
    ) -> Tensor:
        ctx.shift_args = (num_segments, fold, tuple(-o for o in offsets), x.dtype)
        return launch_shift(x, num_segments, fold, offsets, dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        num_segments, fold, reverse_offsets, input_dtype = ctx.shift_args
        if not available(grad):
            grad = grad.contiguous()
        return launch_shift(grad, num_segments, fold, reverse_offsets, input_dtype), None, None, None, None

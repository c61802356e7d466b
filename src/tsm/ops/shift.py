"""The temporal shift: move a fraction of the channels one frame along time, at zero FLOPs.

Semantics (the paper, Sec. 3; the reference's ``ops/temporal_shift.py``): the input (N*T, C, H, W)
is viewed as N clips of T frames and ``fold = C // fold_div``.

* ``"bidirectional"`` (offline): channels ``[0, fold)`` of frame t come from frame t+1, channels
  ``[fold, 2*fold)`` from frame t-1, the rest stay; clip ends are zero padded.
* ``"unidirectional"`` (online): channels ``[0, fold)`` of frame t come from frame t-1 (zeros at
  t = 0); nothing comes from the future.

The op is written with slices, zero padding and one concatenation, which traces into ONNX
(Slice/Pad/Concat) and compiles with ``torch.compile(fullgraph=True)``; none of these ops keeps a
tensor for backward. :class:`TemporalShift` additionally fuses the shift with a following
``Conv2d`` in training so that the shifted copy is recomputed in backward instead of stored.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ShiftMode = Literal["bidirectional", "unidirectional"]
SHIFT_MODES: tuple[str, ...] = ("bidirectional", "unidirectional")

# For each shifted channel group, where its frames come from: +1 = frame t+1, -1 = frame t-1.
_OFFSETS: dict[str, tuple[int, ...]] = {"bidirectional": (+1, -1), "unidirectional": (-1,)}


def shift_offsets(mode: str) -> tuple[int, ...]:
    """Source-frame offset of each shifted channel group for ``mode``; raise on unknown modes."""
    if mode not in _OFFSETS:
        raise ValueError(f"unknown shift mode {mode!r}: use one of {', '.join(map(repr, SHIFT_MODES))}")
    return _OFFSETS[mode]


def check_shift_arguments(num_segments: int, fold_div: int, mode: str) -> None:
    """Raise ``ValueError`` for a bad frame count, fold divisor or mode."""
    if not isinstance(num_segments, int) or num_segments < 1:
        raise ValueError(f"num_segments must be a positive int, got {num_segments!r}")
    groups = len(shift_offsets(mode))
    if not isinstance(fold_div, int) or fold_div < groups:
        raise ValueError(
            f"fold_div must be an int >= {groups} for a {mode} shift ({groups} channel group(s) of "
            f"C // fold_div channels each must fit in C), got {fold_div!r}"
        )


def check_shift_input(x: Tensor, num_segments: int, fold_div: int) -> None:
    """Raise ``ValueError`` naming the problem when ``x`` cannot be shifted."""
    if x.dim() != 4:
        raise ValueError(
            f"temporal shift expects a 4-D tensor (N*T, C, H, W), got shape {tuple(x.shape)}; "
            "reshape clips (N, T, C, H, W) with x.flatten(0, 1)"
        )
    frames, channels = x.shape[0], x.shape[1]
    if frames % num_segments != 0:
        raise ValueError(
            f"the batch dimension ({frames}) is not divisible by num_segments={num_segments}: "
            "the input must hold whole clips of num_segments frames each"
        )
    if channels < fold_div:
        raise ValueError(
            f"{channels} channels is fewer than fold_div={fold_div}, so no channel would be shifted "
            f"(fold = {channels} // {fold_div} = 0); use a smaller fold_div or shift a wider layer"
        )


def _shift_groups(x5: Tensor, channel_dim: int, fold: int, offsets: tuple[int, ...]) -> Tensor:
    """Shift channel groups of ``x5`` (time on dim 1) by ``offsets``, zero padded, concatenated."""
    time_pad_index = 2 * (x5.dim() - 2)  # F.pad counts dims from the last one
    parts = []
    for group, offset in enumerate(offsets):
        chunk = x5.narrow(channel_dim, group * fold, fold)
        pad = [0] * (2 * (x5.dim() - 1))
        if offset > 0:  # frame t takes frame t+1: drop the first frame, zero after the last
            chunk, pad[time_pad_index + 1] = chunk[:, 1:], 1
        else:  # frame t takes frame t-1: drop the last frame, zero before the first
            chunk, pad[time_pad_index] = chunk[:, :-1], 1
        parts.append(F.pad(chunk, pad))
    moved = len(offsets) * fold
    parts.append(x5.narrow(channel_dim, moved, x5.shape[channel_dim] - moved))
    return torch.cat(parts, dim=channel_dim)


def _shift_by_concatenation(x: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...]) -> Tensor:
    """Slices + zero padding + one concatenation: the form traced into ONNX and compiled."""
    _, channels, height, width = x.shape
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # Work on the (N*T, H, W, C) view, which is contiguous, so the result is channels_last.
        x5 = x.permute(0, 2, 3, 1).reshape(-1, num_segments, height, width, channels)
        out = _shift_groups(x5, 4, fold, offsets)
        return out.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
    x5 = x.reshape(-1, num_segments, channels, height, width)
    return _shift_groups(x5, 2, fold, offsets).reshape(-1, channels, height, width)


def _shift_by_copy(
    x: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...], dtype: torch.dtype | None = None
) -> Tensor:
    """One pass over memory: each output element is written once into a fresh tensor (cast to
    ``dtype`` by the same copies).

    The output is allocated with ``x``'s memory format and never aliases ``x``. Eager only: a
    tracer would freeze the fresh tensor into a constant.
    """
    _, channels, height, width = x.shape
    out = torch.empty_like(x, dtype=dtype)
    source = x.view(-1, num_segments, channels, height, width)
    target = out.view(-1, num_segments, channels, height, width)
    for group, offset in enumerate(offsets):
        first, last = group * fold, (group + 1) * fold
        if offset > 0:  # frame t takes frame t+1; the last frame gets zeros
            target[:, :-1, first:last].copy_(source[:, 1:, first:last])
            target[:, -1:, first:last].zero_()
        else:  # frame t takes frame t-1; the first frame gets zeros
            target[:, 1:, first:last].copy_(source[:, :-1, first:last])
            target[:, :1, first:last].zero_()
    moved = len(offsets) * fold
    target[:, :, moved:].copy_(source[:, :, moved:])
    return out


def _apply_shift(
    x: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...], dtype: torch.dtype | None = None
) -> Tensor:
    """Shift a (N*T, C, H, W) tensor, keeping its memory format (NCHW or channels_last).

    ``dtype`` casts on the way (in the same pass where the CUDA kernel runs): the recomputing conv
    under autocast shifts float32 activations into its bfloat16/float16 input.
    """
    dtype = dtype or x.dtype
    if is_exporting() or torch.compiler.is_compiling():
        return _shift_by_concatenation(x.to(dtype), num_segments, fold, offsets)
    if x.is_cuda:
        from tsm.ops import triton_shift  # imported on first use: Triton takes 0.3 s to import

        if triton_shift.available(x):  # one kernel instead of five strided copies
            return triton_shift.TritonShift.apply(x, num_segments, fold, offsets, dtype)
    return _shift_by_copy(x, num_segments, fold, offsets, dtype)


def is_exporting() -> bool:
    """True while tracing, scripting or exporting to ONNX: shape checks and eager-only paths step aside."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def temporal_shift(
    x: Tensor, num_segments: int, fold_div: int = 8, mode: ShiftMode = "bidirectional"
) -> Tensor:
    """Shift ``C // fold_div`` channels (two groups when bidirectional) one frame along time.

    Args:
        x: frames of whole clips, shape (N*T, C, H, W), any float dtype, NCHW or channels_last.
        num_segments: frames per clip, T.
        fold_div: 1/fold_div of the channels moves in each shifted group (default 8).
        mode: ``"bidirectional"`` (offline TSM) or ``"unidirectional"`` (online TSM, past only).

    Returns:
        A new tensor of the same shape, dtype and memory format; ``x`` is never written.
    """
    offsets = shift_offsets(mode)
    if not is_exporting():
        check_shift_arguments(num_segments, fold_div, mode)
        check_shift_input(x, num_segments, fold_div)
    return _apply_shift(x, num_segments, x.shape[1] // fold_div, offsets)


def _reverse_shift(
    grad: Tensor, num_segments: int, fold: int, offsets: tuple[int, ...], dtype: torch.dtype | None = None
) -> Tensor:
    """The adjoint of a shift: move every group the opposite way (the shift's exact gradient)."""
    return _apply_shift(grad, num_segments, fold, tuple(-o for o in offsets), dtype)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


class _ShiftConv2dFunction(torch.autograd.Function):
    """conv2d(shift(x)) that saves ``x`` (already kept by the previous layer), not the shifted copy.

    Backward recomputes the shift (a memory copy) instead of storing it, so TSM keeps no more
    activations for backward than the TSN network it was made from. Under autocast the shift
    also casts (one pass on CUDA), and ``x`` is saved uncast, where TSN's conv saves a cast copy.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, conv: nn.Conv2d, num_segments: int, fold: int, offsets):
        autocast_dtype = _autocast_dtype(x.device.type)
        compute_dtype = autocast_dtype or x.dtype
        if autocast_dtype is not None:  # run the conv in the dtype autocast would
            weight = weight.to(autocast_dtype)
            bias = None if bias is None else bias.to(autocast_dtype)
        with torch.autocast(x.device.type, enabled=False):
            shifted = _apply_shift(x, num_segments, fold, offsets, compute_dtype)
            out = F.conv2d(shifted, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        ctx.save_for_backward(x, weight)
        ctx.conv_args = (conv.stride, conv.padding, conv.dilation, conv.groups)
        ctx.shift_args = (num_segments, fold, offsets)
        ctx.bias_shape = None if bias is None else list(bias.shape)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv_args
        num_segments, fold, offsets = ctx.shift_args
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        if needs_w:
            shifted = _apply_shift(x, num_segments, fold, offsets, weight.dtype)
        else:  # only its shape and dtype are read
            shifted = x.to(weight.dtype)
        grad_shifted, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(weight.dtype),
            shifted,
            weight,
            ctx.bias_shape,
            list(stride),
            list(padding),
            list(dilation),
            False,
            [0, 0],
            groups,
            [needs_x, needs_w, needs_b and ctx.bias_shape is not None],
        )
        grad_x = _reverse_shift(grad_shifted, num_segments, fold, offsets, x.dtype) if needs_x else None
        return grad_x, grad_w, grad_b, None, None, None, None


def _pointwise_shift_conv(
    x: Tensor, conv: nn.Conv2d, num_segments: int, fold: int, offsets: tuple[int, ...]
) -> Tensor:
    """A 1x1 conv of the shifted input without materialising the shift (inference).

    A 1x1 conv mixes channels pixel by pixel, so it splits into one matrix product per channel
    group; each group's product reads its source frames straight from ``x`` (strided batched
    GEMMs) and adds into the output rows of the frames it moves to. Same FLOPs as the conv.
    """
    frames, channels, height, width = x.shape
    pixels, out_channels = height * width, conv.out_channels
    weight = conv.weight.reshape(out_channels, channels)
    moved = len(offsets) * fold
    if x.is_contiguous():  # per clip: (T, C, HW) -> (T, C_out, HW), weight on the left
        out = torch.empty(frames, out_channels, height, width, dtype=x.dtype, device=x.device)
        clips = zip(
            x.view(-1, num_segments, channels, pixels),
            out.view(-1, num_segments, out_channels, pixels),
            strict=True,
        )
        for clip, clip_out in clips:
            torch.matmul(weight[:, moved:], clip[:, moved:], out=clip_out)
            for group, offset in enumerate(offsets):
                columns = slice(group * fold, (group + 1) * fold)
                group_weight = weight[:, columns].expand(num_segments - 1, -1, -1)
                if offset > 0:  # frames 0..T-2 receive frames 1..T-1
                    clip_out[:-1].baddbmm_(group_weight, clip[1:, columns])
                else:  # frames 1..T-1 receive frames 0..T-2
                    clip_out[1:].baddbmm_(group_weight, clip[:-1, columns])
    else:  # channels_last, per clip: (T*HW, C) rows -> (T*HW, C_out), one 2-D GEMM per channel group
        # (2-D products, not batched ones: in bfloat16 on the CPU, oneDNN runs addmm_ but not
        # baddbmm_ well; the batched form made TSM 1.09x TSN there, this one 1.03-1.04x.)
        out = torch.empty(
            frames,
            out_channels,
            height,
            width,
            dtype=x.dtype,
            device=x.device,
            memory_format=torch.channels_last,
        )
        sources = x.permute(0, 2, 3, 1).reshape(-1, num_segments * pixels, channels)
        targets = out.permute(0, 2, 3, 1).view(-1, num_segments * pixels, out_channels)
        last = (num_segments - 1) * pixels
        for source, target in zip(sources, targets, strict=True):
            torch.mm(source[:, moved:], weight[:, moved:].t(), out=target)
            for group, offset in enumerate(offsets):
                columns = slice(group * fold, (group + 1) * fold)
                if offset > 0:  # frames 0..T-2 receive frames 1..T-1
                    target[:last].addmm_(source[pixels:, columns], weight[:, columns].t())
                else:  # frames 1..T-1 receive frames 0..T-2
                    target[pixels:].addmm_(source[:last, columns], weight[:, columns].t())
    if conv.bias is not None:
        out += conv.bias.view(1, -1, 1, 1)
    return out


def _is_pointwise_conv(net: nn.Module) -> bool:
    return (
        isinstance(net, nn.Conv2d)
        and type(net).forward is nn.Conv2d.forward
        and net.kernel_size == (1, 1)
        and net.stride == (1, 1)
        and net.padding in ((0, 0), "valid")
        and net.groups == 1
    )


def _can_skip_shift_copy(net: nn.Module, x: Tensor) -> bool:
    """Inference through a narrowing 1x1 conv: the shift folds into the matrix products."""
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in net.parameters())):
        return False
    if is_exporting() or torch.compiler.is_compiling():
        return False
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        return False
    if x.is_cuda and not (
        x.dtype in (torch.float16, torch.bfloat16) and x.is_contiguous(memory_format=torch.channels_last)
    ):
        # On a GPU the NCHW path loops over clips, and float32 matrix products skip the TF32
        # tensor cores that cuDNN's convs use: there the shift kernel + conv is faster.
        return False
    # The GEMMs re-read and re-write the output rows once per moved group: cheaper than copying
    # the input only when the conv narrows the channels (ResNet bottlenecks, not MobileNetV2's
    # expansions, whose output is 6x wider than their input).
    narrowing = _is_pointwise_conv(net) and 2 * net.out_channels <= net.in_channels
    return narrowing and net.weight.dtype == x.dtype


def _can_fuse(net: nn.Module, x: Tensor) -> bool:
    """Use the recomputing conv path only where it saves memory and is supported."""
    if not (isinstance(net, nn.Conv2d) and type(net).forward is nn.Conv2d.forward):
        return False
    if net.padding_mode != "zeros" or isinstance(net.padding, str):
        return False
    if not torch.is_grad_enabled() or torch.compiler.is_compiling() or is_exporting():
        return False
    return x.requires_grad or any(p.requires_grad for p in net.parameters())


class TemporalShift(nn.Module):
    """Shift the input along time, then run the wrapped module ``net``.

    The wrapped module is stored as ``net``, so state-dict keys read ``layer1.0.conv1.net.weight``
    as in the reference implementation. When ``net`` is a plain ``Conv2d`` and gradients are
    needed, shift and conv run as one autograd function that recomputes the shift in backward.
    """

    def __init__(
        self,
        net: nn.Module,
        num_segments: int,
        fold_div: int = 8,
        mode: ShiftMode = "bidirectional",
    ) -> None:
        super().__init__()
        check_shift_arguments(num_segments, fold_div, mode)
        self.net = net
        self.num_segments = num_segments
        self.fold_div = fold_div
        self.mode = mode

    def shift(self, x: Tensor) -> Tensor:
        """The shift alone (no wrapped module)."""
        return temporal_shift(x, self.num_segments, self.fold_div, self.mode)

    def forward(self, x: Tensor) -> Tensor:
        if _can_skip_shift_copy(self.net, x):
            check_shift_input(x, self.num_segments, self.fold_div)
            fold = x.shape[1] // self.fold_div
            return _pointwise_shift_conv(x, self.net, self.num_segments, fold, shift_offsets(self.mode))
        if _can_fuse(self.net, x):
            check_shift_input(x, self.num_segments, self.fold_div)
            conv = self.net
            return _ShiftConv2dFunction.apply(
                x,
                conv.weight,
                conv.bias,
                conv,
                self.num_segments,
                x.shape[1] // self.fold_div,
                shift_offsets(self.mode),
            )
        return self.net(self.shift(x))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, fold_div={self.fold_div}, mode={self.mode!r}"

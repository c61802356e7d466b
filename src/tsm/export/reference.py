"""The float64 reference the export check measures every runtime against (and PyTorch fp32 too).

PyTorch's CPU convolution has no fast float64 kernel for depthwise convolutions: it runs one small
convolution per channel (MobileNetV2's step took several times as long in float64 as in float32,
most of it there). The reference computes them as a sum of k x k shifted slices instead, the same
arithmetic in float64 in another order, which is what a reference for fp32 rounding needs.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn import functional

from tsm.models import Recognizer


class SlicedDepthwiseConv(nn.Module):
    """A depthwise ``nn.Conv2d`` (zero padding) as the sum of its k x k weighted, shifted slices."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation

    def forward(self, x: Tensor) -> Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        ph, pw = self.padding
        x = functional.pad(x, (pw, pw, ph, ph))
        height = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
        width = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
        out = torch.zeros(x.shape[0], x.shape[1], height, width, dtype=x.dtype, device=x.device)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (height - 1) + 1, sh)
                columns = slice(j * dw, j * dw + sw * (width - 1) + 1, sw)
                out += x[:, :, rows, columns] * self.weight[:, 0, i, j].view(1, -1, 1, 1)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def _is_depthwise(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv2d)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def float64_reference(model: Recognizer) -> Recognizer:
    """A float64 copy of ``model`` on the CPU, in eval mode, its depthwise convolutions computed
    as sliced sums (the caller's model is not changed)."""
    reference = copy.deepcopy(model).to("cpu", torch.float64).eval()
    for name, module in list(reference.named_modules()):
        if _is_depthwise(module):
            reference.set_submodule(name, SlicedDepthwiseConv(module))
    return reference

"""Temporal pooling: max over time (kernel 3, stride 2, padding 1), halving the frames per clip."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tsm.ops.shift import is_exporting


def temporal_pool(x: Tensor, num_segments: int) -> Tensor:
    """Max-pool (N*T, C, H, W) over time to (N*ceil(T/2), C, H, W); clips never mix."""
    if x.dim() != 4:
        raise ValueError(f"temporal pooling expects (N*T, C, H, W), got shape {tuple(x.shape)}")
    if not is_exporting() and x.shape[0] % num_segments != 0:
        raise ValueError(
            f"the batch dimension ({x.shape[0]}) is not divisible by num_segments={num_segments}"
        )
    _, channels, height, width = x.shape
    clips = x.reshape(-1, num_segments, channels, height, width).transpose(1, 2)  # N, C, T, H, W
    pooled = F.max_pool3d(clips, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
    return pooled.transpose(1, 2).reshape(-1, channels, height, width)


class TemporalPool(nn.Module):
    """Pool over time, then run the wrapped module ``net`` (the reference wraps ``layer2``)."""

    def __init__(self, net: nn.Module, num_segments: int) -> None:
        super().__init__()
        if num_segments < 2:
            raise ValueError(f"temporal pooling needs num_segments >= 2, got {num_segments}")
        self.net = net
        self.num_segments = num_segments

    def forward(self, x: Tensor) -> Tensor:
        return self.net(temporal_pool(x, self.num_segments))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}"

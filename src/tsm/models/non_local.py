"""Non-local blocks (Wang et al., "Non-local Neural Networks", CVPR 2018) for TSM ResNets.

A non-local block lets every position of a clip attend to every (spatially sub-sampled) position
of the same clip, across all its frames: ``z = x + W(y)`` with ``y_i = sum_j f(x_i, x_j) g(x_j)``.
The reference (mit-han-lab/temporal-shift-module ``ops/non_local.py``) and MMAction2 (mmcv
``mmcv/cnn/bricks/non_local.py``, used by ``mmaction/models/backbones/resnet_tsm.py``) run it in
3D on the (N, C, T, H, W) view of a ResNet block's output. Every convolution there is 1x1x1 and
the sub-sampling max-pools (1, 2, 2), so both act on each frame alone: here they are 2D ops on the
(N*T, C, H, W) frames, and only the affinity sees the clip as a whole. The modes:

* ``"embedded_gaussian"``: ``softmax_j(theta(x_i) . phi(x_j))``, unscaled (the reference's only
  mode; MMAction2's configs set ``use_scale=False``);
* ``"gaussian"``: ``softmax_j(x_i . x_j)`` with the raw features (no theta/phi weights; the keys
  ``x_j`` are sub-sampled by max pooling);
* ``"dot_product"``: ``theta(x_i) . phi(x_j) / M`` with M the number of key positions, no softmax.

``W`` is a 1x1 conv (no bias: a BatchNorm follows) and a BatchNorm initialised to zero, so a
fresh block is the identity and a pretrained network starts from where it was.

The (T*H*W) x (T*h*w) affinity of a clip (39 MB per clip in layer2 of a ResNet-50 at 224 px) is
never kept for backward: the softmax modes run as one ``scaled_dot_product_attention`` (which
saves the queries, keys, values, output and the softmax's log-sum-exp), and the dot product is
computed as ``Q (K^T V) / M``, which does not form it at all (and, with M = T*H*W / 4 keys, needs
8 M / (5 inter) times fewer multiplications: 10x in layer2 of a ResNet-50 at 224 px).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsm.models.specs import NonLocalSites
from tsm.ops.shift import is_exporting

NonLocalMode = Literal["embedded_gaussian", "gaussian", "dot_product"]
NON_LOCAL_MODES: tuple[str, ...] = ("embedded_gaussian", "gaussian", "dot_product")


def check_non_local_mode(mode: str) -> None:
    """Raise ``ValueError`` naming the valid modes when ``mode`` is not one."""
    if mode not in NON_LOCAL_MODES:
        raise ValueError(f"unknown non-local mode {mode!r}: use one of {', '.join(NON_LOCAL_MODES)}")


def _positions(frames: Tensor, num_segments: int) -> Tensor:
    """(N*T, C, H, W) -> (N, T*H*W, C): the positions of each clip, time-major, as rows."""
    _, channels, height, width = frames.shape
    per_frame = frames.reshape(-1, num_segments, channels, height * width).transpose(2, 3)
    return per_frame.reshape(-1, num_segments * height * width, channels)


class NonLocal(nn.Module):
    """A non-local block over whole clips, on frames (N*T, C, H, W); returns ``x + W(y)``.

    Attribute names follow the reference (``theta``, ``phi``, ``g``, ``W``; with sub-sampling
    ``phi`` and ``g`` are Sequential(conv, max pool)), so its keys read ``g.0.weight``,
    ``W.1.running_mean``. ``theta``/``phi``/``g`` keep PyTorch's default initialisation (as the
    reference); ``W``'s BatchNorm starts at zero.
    """

    def __init__(
        self,
        channels: int,
        num_segments: int,
        mode: NonLocalMode = "embedded_gaussian",
        sub_sample: bool = True,
    ) -> None:
        super().__init__()
        check_non_local_mode(mode)
        if not isinstance(num_segments, int) or num_segments < 1:
            raise ValueError(f"num_segments must be a positive int, got {num_segments!r}")
        self.channels = channels
        self.inter_channels = max(channels // 2, 1)
        self.num_segments = num_segments
        self.mode = mode
        self.sub_sample = sub_sample

        def projection() -> nn.Module:
            conv = nn.Conv2d(channels, self.inter_channels, kernel_size=1)
            return nn.Sequential(conv, nn.MaxPool2d(kernel_size=2)) if sub_sample else conv

        self.g = projection()
        if mode == "gaussian":  # raw features: queries x, keys max-pooled x
            self.theta = None
            self.phi = nn.MaxPool2d(kernel_size=2) if sub_sample else nn.Identity()
        else:
            self.theta = nn.Conv2d(channels, self.inter_channels, kernel_size=1)
            self.phi = projection()
        self.W = nn.Sequential(
            nn.Conv2d(self.inter_channels, channels, kernel_size=1, bias=False), nn.BatchNorm2d(channels)
        )
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: Tensor) -> Tensor:
        if not is_exporting() and (x.dim() != 4 or x.shape[0] % self.num_segments != 0):
            raise ValueError(
                f"non-local block expects frames (N*T, C, H, W) of whole clips of num_segments="
                f"{self.num_segments} frames, got shape {tuple(x.shape)}"
            )
        frames, _, height, width = x.shape
        queries = _positions(x if self.theta is None else self.theta(x), self.num_segments)
        keys = _positions(self.phi(x), self.num_segments)
        values = _positions(self.g(x), self.num_segments)
        if self.mode == "dot_product":  # (Q K^T / M) V = Q (K^T V / M): no (T*H*W, M) affinity
            y = torch.bmm(queries, torch.bmm(keys.transpose(1, 2), values) / keys.shape[1])
        else:  # softmax(Q K^T) V without keeping the affinity for backward (scale 1: unscaled)
            # The fused kernels need values as wide as the keys: gaussian keys are the raw C
            # channels, its values C/2 wide, so they get zero columns, dropped from the result.
            extra = self.channels - self.inter_channels if self.theta is None else 0
            widened = F.pad(values, (0, extra)) if extra else values
            heads = [t.unsqueeze(1) for t in (queries, keys, widened)]  # one head: (N, 1, L, E)
            y = F.scaled_dot_product_attention(*heads, scale=1.0).squeeze(1)[..., : self.inter_channels]
        # y: (N, T*H*W, inter)
        y = y.reshape(-1, self.num_segments, height * width, self.inter_channels).transpose(2, 3)
        return x + self.W(y.reshape(frames, self.inter_channels, height, width))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, mode={self.mode!r}, sub_sample={self.sub_sample}"


class NonLocalBlock(nn.Module):
    """A ResNet block followed by a non-local block on its output (after the residual and ReLU).

    Stored as ``block`` and ``nl`` (the reference's ``NL3DWrapper``), so keys read
    ``layer2.0.block.conv1.net.weight`` and ``layer2.0.nl.theta.weight``.
    """

    def __init__(self, block: nn.Module, channels: int, num_segments: int, mode: NonLocalMode) -> None:
        super().__init__()
        self.block = block
        self.nl = NonLocal(channels, num_segments, mode)

    def forward(self, x: Tensor) -> Tensor:
        return self.nl(self.block(x))


def add_non_local(
    net: nn.Module, num_segments: int, sites: NonLocalSites, mode: NonLocalMode = "embedded_gaussian"
) -> nn.Module:
    """Put non-local blocks after the blocks ``sites`` names (its backbone spec's), in place.

    Both publishers put them after blocks 0, 2 of ``layer2`` and 0, 2, 4 of ``layer3`` of a
    ResNet-50; any network whose stages have that many blocks is accepted. Shifts inside the
    wrapped blocks stay.
    """
    check_non_local_mode(mode)
    for stage_name, indices in sites.blocks.items():
        stage = getattr(net, stage_name)
        if not isinstance(stage, nn.Sequential) or len(stage) <= max(indices):
            raise ValueError(
                f"non-local blocks go after blocks {indices} of {stage_name}, which has "
                f"{len(stage)} blocks here; use a deeper backbone (for ResNets: 34/50/101/152)"
            )
        if any(isinstance(block, NonLocalBlock) for block in stage):
            raise ValueError("this network already has non-local blocks; adding them twice is refused")
        for index in indices:
            stage[index] = NonLocalBlock(
                stage[index], sites.output_channels(stage[index]), num_segments, mode
            )
    return net


def non_local_blocks(net: nn.Module) -> list[NonLocal]:
    """The non-local blocks inside ``net``, in forward order."""
    return [m for m in net.modules() if isinstance(m, NonLocal)]

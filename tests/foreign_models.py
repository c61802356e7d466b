"""Independent re-creations of the reference's and MMAction2's TSM networks, for the checkpoint tests.

Written for the tests from the publishers' code (the reference's ``ops/models.py``,
``ops/temporal_shift.py`` and ``online_demo/mobilenet_v2_tsm.py``; MMAction2's
``mmaction/models/backbones/resnet_tsm.py`` and ``mobilenet_v2_tsm.py``): module names reproduce each
implementation's state-dict keys, and each forward pass follows that implementation (its own
shift code, its own temporal pool, its own head), so these share no code with ``tsm``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def randomize(
    model: nn.Module, generator_seed: int = 0, calibrate_on: torch.Tensor | None = None
) -> nn.Module:
    """Random weights and BatchNorm statistics, so a wrong key mapping changes the outputs.

    ``calibrate_on``: inputs whose statistics become the BatchNorm running statistics (one pass in
    training mode). Deep networks need it: with random statistics their signal fades, and their eval
    outputs stop depending on the input.
    """
    generator = torch.Generator().manual_seed(generator_seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.5 + 0.2)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.05)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    if calibrate_on is not None:
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.momentum = 1.0  # running statistics := those of this batch
        with torch.no_grad():
            model.train()(calibrate_on)
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
    return model.eval()


def data_parallel_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as the reference's ``nn.DataParallel`` wrapper saves it (keys ``module.*``).

    Built by hand: constructing ``nn.DataParallel`` on a machine with a GPU moves the model there.
    """
    return {f"module.{key}": value for key, value in model.state_dict().items()}


def save_reference_checkpoint(path: Path, ref: nn.Module, **torch_save_kwargs) -> Path:
    """Save as the reference's main.py does: DataParallel state dict inside a training dict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "epoch": 50,
        "arch": "resnet50",
        "state_dict": data_parallel_state(ref),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1], "name": "normal_weight"}]},
        "best_prec1": 71.2,
    }
    torch.save(checkpoint, path, **torch_save_kwargs)
    return path


def assert_same_logits(
    model: nn.Module, foreign: nn.Module, clips: torch.Tensor, dtype: torch.dtype = torch.float32
) -> None:
    """tsm's eval logits equal the foreign network's, at 1e-5 of their scale. ``dtype=torch.float64``
    for deep random networks, where float32's rounding differences grow beyond that."""
    model, foreign, clips = model.to(dtype), foreign.to(dtype), clips.to(dtype)
    with torch.no_grad():
        expected = foreign(clips)
        actual = model.eval()(clips)
    assert expected.abs().max() > 0.1  # the comparison is not between two near-zero tensors
    scale = expected.abs().max().item()  # float32 summation order differs: compare at this scale
    # ... nor between outputs that do not depend on the input (a deep network's signal can vanish)
    assert (expected - expected.mean(dim=0)).abs().max() > 1e-3 * scale
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * scale)


# --- the reference (mit-han-lab/temporal-shift-module) -------------------------------------------------
def reference_shift(x: torch.Tensor, n_segment: int, fold_div: int) -> torch.Tensor:
    """The reference's offline shift: slice assignment into zeros_like."""
    nt, c, h, w = x.size()
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


class ReferenceShift(nn.Module):
    def __init__(self, net: nn.Module, n_segment: int, n_div: int) -> None:
        super().__init__()
        self.net, self.n_segment, self.fold_div = net, n_segment, n_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(reference_shift(x, self.n_segment, self.fold_div))


class ReferencePool(nn.Module):
    """The reference's temporal pool (halves the frames: nt // 2)."""

    def __init__(self, net: nn.Module, n_segment: int) -> None:
        super().__init__()
        self.net, self.n_segment = net, n_segment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.size()
        x = x.view(nt // self.n_segment, self.n_segment, c, h, w).transpose(1, 2)
        x = F.max_pool3d(x, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        return self.net(x.transpose(1, 2).contiguous().view(nt // 2, c, h, w))


def _conv_bn(inp: int, oup: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> list:
    layers = [
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
    ]
    return [*layers, nn.ReLU6(inplace=True)] if relu else layers


class ReferenceInvertedResidual(nn.Module):
    """The reference's own block: conv = flat Sequential [pw, bn, relu6, dw, bn, relu6, pwl, bn]."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        expansion = _conv_bn(inp, hidden, 1, 1) if expand_ratio != 1 else []
        self.conv = nn.Sequential(
            *expansion,
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
            *_conv_bn(hidden, oup, 1, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class ReferenceMobileNetV2(nn.Module):
    """The reference's MobileNetV2 (features Sequential, classifier a bare Linear)."""

    SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, n_class: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        channels = 32
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(ReferenceInvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        features.append(nn.Sequential(*_conv_bn(channels, 1280, 1, 1)))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Linear(1280, n_class)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(3).mean(2))


class ReferenceTSN(nn.Module):
    """The reference's TSN wrapper: base_model (head replaced by Dropout) + new_fc + average."""

    def __init__(
        self,
        num_class: int,
        num_segments: int,
        arch: str,
        is_shift: bool = True,
        shift_div: int = 8,
        shift_place: str = "blockres",
        temporal_pool: bool = False,
        non_local: bool = False,
    ) -> None:
        super().__init__()
        self.num_segments = num_segments // 2 if temporal_pool else num_segments
        if arch == "mobilenetv2":
            self.base_model = ReferenceMobileNetV2()
            if is_shift:
                for m in self.base_model.modules():
                    if isinstance(m, ReferenceInvertedResidual) and len(m.conv) == 8 and m.use_res_connect:
                        m.conv[0] = ReferenceShift(m.conv[0], num_segments, shift_div)
            self.base_model.classifier = nn.Dropout(0.5)
        else:
            self.base_model = getattr(torchvision.models, arch)(weights=None)
            if is_shift:
                self._shift_resnet(num_segments, shift_div, shift_place, temporal_pool)
            if non_local:
                reference_make_non_local(self.base_model, num_segments)
            if temporal_pool:
                self.base_model.layer2 = ReferencePool(self.base_model.layer2, num_segments)
            self.base_model.fc = nn.Dropout(0.5)
        widths = {"mobilenetv2": 1280, "resnet18": 512, "resnet34": 512}
        self.new_fc = nn.Linear(widths.get(arch, 2048), num_class)

    def _shift_resnet(self, n_segment: int, n_div: int, place: str, temporal_pool: bool) -> None:
        net = self.base_model
        segments = [n_segment] + [n_segment // 2 if temporal_pool else n_segment] * 3
        n_round = 2 if len(net.layer3) >= 23 else 1
        for name, this_segment in zip(("layer1", "layer2", "layer3", "layer4"), segments, strict=False):
            blocks = list(getattr(net, name).children())
            for i, block in enumerate(blocks):
                if place == "block":
                    blocks[i] = ReferenceShift(block, this_segment, n_div)
                elif i % n_round == 0:
                    block.conv1 = ReferenceShift(block.conv1, this_segment, n_div)
            setattr(net, name, nn.Sequential(*blocks))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        base_out = self.new_fc(self.base_model(clips.reshape((-1, 3, *clips.shape[-2:]))))
        return base_out.view((-1, self.num_segments, *base_out.shape[1:])).mean(dim=1)


class ReferenceNonLocalBlock3D(nn.Module):
    """The reference's embedded-gaussian block: 3D 1x1x1 convs with biases, (1, 2, 2) max pools
    after g and phi, W = conv + BatchNorm3d (zeroed), softmax without scaling, z = W(y) + x."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.inter_channels = in_channels // 2
        self.g = nn.Sequential(nn.Conv3d(in_channels, self.inter_channels, 1), nn.MaxPool3d((1, 2, 2)))
        self.W = nn.Sequential(nn.Conv3d(self.inter_channels, in_channels, 1), nn.BatchNorm3d(in_channels))
        nn.init.constant_(self.W[1].weight, 0)
        nn.init.constant_(self.W[1].bias, 0)
        self.theta = nn.Conv3d(in_channels, self.inter_channels, 1)
        self.phi = nn.Sequential(nn.Conv3d(in_channels, self.inter_channels, 1), nn.MaxPool3d((1, 2, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.size(0)
        g_x = self.g(x).view(batch, self.inter_channels, -1).permute(0, 2, 1)
        theta_x = self.theta(x).view(batch, self.inter_channels, -1).permute(0, 2, 1)
        phi_x = self.phi(x).view(batch, self.inter_channels, -1)
        y = torch.matmul(F.softmax(torch.matmul(theta_x, phi_x), dim=-1), g_x)
        y = y.permute(0, 2, 1).contiguous().view(batch, self.inter_channels, *x.size()[2:])
        return self.W(y) + x


class ReferenceNL3DWrapper(nn.Module):
    def __init__(self, block: nn.Module, n_segment: int) -> None:
        super().__init__()
        self.block, self.n_segment = block, n_segment
        self.nl = ReferenceNonLocalBlock3D(block.bn3.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        nt, c, h, w = x.size()
        x = self.nl(x.view(nt // self.n_segment, self.n_segment, c, h, w).transpose(1, 2))
        return x.transpose(1, 2).contiguous().view(nt, c, h, w)


def reference_make_non_local(net: nn.Module, n_segment: int) -> None:
    """The reference rebuilds layer2 and layer3 of ResNet-50 with blocks 0, 2 (and 4) wrapped."""
    net.layer2 = nn.Sequential(
        *(ReferenceNL3DWrapper(b, n_segment) if i in (0, 2) else b for i, b in enumerate(net.layer2))
    )
    net.layer3 = nn.Sequential(
        *(ReferenceNL3DWrapper(b, n_segment) if i in (0, 2, 4) else b for i, b in enumerate(net.layer3))
    )


def online_demo_stream(net: ReferenceMobileNetV2, frames: torch.Tensor) -> torch.Tensor:
    """The online demo's forward, one frame at a time with shift buffers: (T, 3, H, W) -> (T, K).

    Blocks with a residual and an expansion replace their first C/8 input channels by those of the
    previous frame (zeros before the first) and hand their own on; the residual adds the input.
    """
    buffers: dict[int, torch.Tensor] = {}
    outputs = []
    for frame in frames:
        x = frame.unsqueeze(0)
        for index, block in enumerate(net.features):
            if (
                isinstance(block, ReferenceInvertedResidual)
                and block.use_res_connect
                and len(block.conv) == 8
            ):
                c = x.size(1)
                x1, x2 = x[:, : c // 8], x[:, c // 8 :]
                previous = buffers.get(index, torch.zeros_like(x1))
                x, buffers[index] = x + block.conv(torch.cat((previous, x2), dim=1)), x1
            else:
                x = block(x)
        outputs.append(net.classifier(x.mean(3).mean(2)))
    return torch.cat(outputs)


# --- MMAction2 (Recognizer2D + ResNetTSM / MobileNetV2TSM + TSMHead) -------------------------------
def mmaction2_shift(x: torch.Tensor, num_segments: int, shift_div: int) -> torch.Tensor:
    """MMAction2's shift: split, zero blanks made as ``x - x``, concatenate."""
    n, c, h, w = x.size()
    x = x.view(-1, num_segments, c, h * w)
    fold = c // shift_div
    left, mid, right = x[:, :, :fold], x[:, :, fold : 2 * fold], x[:, :, 2 * fold :]
    left = torch.cat((left[:, 1:], (left - left)[:, :1]), 1)
    mid = torch.cat(((mid - mid)[:, :1], mid[:, :-1]), 1)
    return torch.cat((left, mid, right), 2).view(n, c, h, w)


class MMShift(nn.Module):
    def __init__(self, net: nn.Module, num_segments: int, shift_div: int) -> None:
        super().__init__()
        self.net, self.num_segments, self.shift_div = net, num_segments, shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(mmaction2_shift(x, self.num_segments, self.shift_div))


class ConvModule(nn.Module):
    """mmcv's ConvModule layout: ``conv``, ``bn`` (+ activation, no parameters)."""

    def __init__(self, inp, oup, kernel, stride=1, padding=0, groups=1, act: type | None = nn.ReLU) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(oup)
        self.activate = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class MMBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = ConvModule(inp, planes, 1)
        self.conv2 = ConvModule(planes, planes, 3, stride, 1)  # "pytorch" style: stride on the 3x3
        self.conv3 = ConvModule(planes, planes * 4, 1, act=None)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class MMBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inp: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = ConvModule(inp, planes, 3, stride, 1)
        self.conv2 = ConvModule(planes, planes, 3, 1, 1, act=None)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + identity)


class MMTemporalPool(nn.Module):
    def __init__(self, net: nn.Module, num_segments: int) -> None:
        super().__init__()
        self.net, self.num_segments = net, num_segments
        self.max_pool3d = nn.MaxPool3d(kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        x = self.max_pool3d(x.view(n // self.num_segments, self.num_segments, c, h, w).transpose(1, 2))
        return self.net(x.transpose(1, 2).contiguous().view(n // 2, c, h, w))


class ConvModule3d(nn.Module):
    """mmcv's ConvModule with a Conv3d: ``conv`` (bias only without a norm) and ``bn`` (BN3d)."""

    def __init__(self, inp: int, oup: int, norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv3d(inp, oup, 1, bias=not norm)
        self.bn = nn.BatchNorm3d(oup) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)


class MMNonLocal3d(nn.Module):
    """mmcv's NonLocal3d (modes gaussian, embedded_gaussian, dot_product; BN3d after conv_out)."""

    def __init__(
        self,
        in_channels: int,
        sub_sample: bool = False,
        use_scale: bool = True,
        mode: str = "embedded_gaussian",
        norm_cfg: dict | None = None,  # MMAction2's configs: BN3d, as built here
    ) -> None:
        super().__init__()
        self.in_channels, self.inter_channels = in_channels, max(in_channels // 2, 1)
        self.use_scale, self.mode, self.sub_sample = use_scale, mode, sub_sample
        self.g = ConvModule3d(in_channels, self.inter_channels)
        self.conv_out = ConvModule3d(self.inter_channels, in_channels, norm=True)
        if mode != "gaussian":
            self.theta = ConvModule3d(in_channels, self.inter_channels)
            self.phi = ConvModule3d(in_channels, self.inter_channels)
        nn.init.constant_(self.conv_out.bn.weight, 0)
        nn.init.constant_(self.conv_out.bn.bias, 0)
        if sub_sample:
            pool = nn.MaxPool3d(kernel_size=(1, 2, 2))
            self.g = nn.Sequential(self.g, pool)
            self.phi = nn.Sequential(self.phi, pool) if mode != "gaussian" else pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        g_x = self.g(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
        if self.mode == "gaussian":
            theta_x = x.view(n, self.in_channels, -1).permute(0, 2, 1)
            phi_x = (self.phi(x) if self.sub_sample else x).view(n, self.in_channels, -1)
        else:
            theta_x = self.theta(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
            phi_x = self.phi(x).view(n, self.inter_channels, -1)
        pairwise = torch.matmul(theta_x, phi_x)
        if self.mode == "dot_product":
            pairwise /= pairwise.shape[-1]
        else:
            if self.mode == "embedded_gaussian" and self.use_scale:
                pairwise /= theta_x.shape[-1] ** 0.5
            pairwise = pairwise.softmax(dim=-1)
        y = torch.matmul(pairwise, g_x)
        y = y.permute(0, 2, 1).contiguous().reshape(n, self.inter_channels, *x.size()[2:])
        return x + self.conv_out(y)


class MMNL3DWrapper(nn.Module):
    def __init__(self, block: nn.Module, num_segments: int, non_local_cfg: dict) -> None:
        super().__init__()
        self.block, self.num_segments = block, num_segments
        self.non_local_block = MMNonLocal3d(block.conv3.bn.num_features, **non_local_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        n, c, h, w = x.size()
        x = x.view(n // self.num_segments, self.num_segments, c, h, w).transpose(1, 2).contiguous()
        x = self.non_local_block(x)
        return x.transpose(1, 2).contiguous().view(n, c, h, w)


class MMResNetTSM(nn.Module):
    STAGES: ClassVar[dict[int, tuple[type, tuple[int, ...]]]] = {
        18: (MMBasicBlock, (2, 2, 2, 2)),
        50: (MMBottleneck, (3, 4, 6, 3)),
        101: (MMBottleneck, (3, 4, 23, 3)),
    }

    def __init__(
        self,
        depth: int,
        num_segments: int,
        shift_div: int,
        place: str,
        temporal_pool: bool,
        non_local: tuple = (0, 0, 0, 0),
        non_local_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        block, counts = self.STAGES[depth]
        self.conv1 = ConvModule(3, 64, 7, 2, 3)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inp = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), counts, strict=False)):
            stride = 1 if index == 0 else 2
            downsample = None
            if stride != 1 or inp != planes * block.expansion:
                downsample = ConvModule(inp, planes * block.expansion, 1, stride, act=None)
            layers = [block(inp, planes, stride, downsample)]
            inp = planes * block.expansion
            layers += [block(inp, planes, 1, None) for _ in range(count - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
        segments = [num_segments] + [num_segments // 2 if temporal_pool else num_segments] * 3
        n_round = 2 if counts[2] >= 23 else 1
        for index, this_segment in enumerate(segments):
            blocks = list(getattr(self, f"layer{index + 1}").children())
            for i, b in enumerate(blocks):
                if place == "block":
                    blocks[i] = MMShift(b, this_segment, shift_div)
                elif i % n_round == 0:
                    b.conv1.conv = MMShift(b.conv1.conv, this_segment, shift_div)
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        if non_local_cfg:  # ResNetTSM.make_non_local: after the shifts, before the temporal pool
            for index, stage_flags in enumerate(non_local):
                layer = getattr(self, f"layer{index + 1}")
                for i, flag in enumerate(stage_flags):
                    if flag:
                        layer[i] = MMNL3DWrapper(layer[i], num_segments, non_local_cfg)
        if temporal_pool:
            self.layer2 = MMTemporalPool(self.layer2, num_segments)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class MMInvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvModule(inp, hidden, 1, act=nn.ReLU6)] if expand_ratio != 1 else []
        layers += [
            ConvModule(hidden, hidden, 3, stride, 1, groups=hidden, act=nn.ReLU6),
            ConvModule(hidden, oup, 1, act=None),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MMMobileNetV2TSM(nn.Module):
    def __init__(self, num_segments: int, shift_div: int) -> None:
        super().__init__()
        self.conv1 = ConvModule(3, 32, 3, 2, 1, act=nn.ReLU6)
        inp = 32
        for index, (t, c, n, s) in enumerate(ReferenceMobileNetV2.SETTING):
            blocks = []
            for i in range(n):
                blocks.append(MMInvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.conv2 = ConvModule(inp, 1280, 1, act=nn.ReLU6)
        for m in self.modules():
            if isinstance(m, MMInvertedResidual) and len(m.conv) == 3 and m.use_res_connect:
                m.conv[0] = MMShift(m.conv[0], num_segments, shift_div)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(7):
            x = getattr(self, f"layer{index + 1}")(x) if index else self.layer1(self.conv1(x))
        return self.conv2(x)


class MMConvAct(nn.Module):
    """mmcv ConvModule without norm (SELayer's conv1 / conv2): ``conv`` with bias, then ``act``."""

    def __init__(self, inp: int, oup: int, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.activate = nn.Conv2d(inp, oup, 1), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x))


class MMSELayer(nn.Module):
    def __init__(self, channels: int, ratio: int = 16, divisor: int = 8) -> None:
        super().__init__()
        value = channels // ratio
        squeeze = max(divisor, int(value + divisor / 2) // divisor * divisor)
        squeeze += divisor if squeeze < 0.9 * value else 0
        self.conv1 = MMConvAct(channels, squeeze, nn.ReLU())
        self.conv2 = MMConvAct(squeeze, channels, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


class MMMobileOneBlock(nn.Module):
    """mmpretrain's MobileOneBlock: act(se(norm(x) + scale(x) + sum of conv branches))."""

    def __init__(
        self, inp, oup, kernel_size, num_convs, stride=1, padding=1, groups=1, se=False, deploy=False
    ):
        super().__init__()
        self.inp, self.oup, self.kernel_size, self.stride = inp, oup, kernel_size, stride
        self.padding, self.groups, self.deploy = padding, groups, deploy
        self.se = MMSELayer(oup) if se else nn.Identity()
        if deploy:
            self.branch_reparam = nn.Conv2d(inp, oup, kernel_size, stride, padding, groups=groups)
        else:
            self.branch_norm = nn.BatchNorm2d(inp) if inp == oup and stride == 1 else None
            self.branch_scale = self._conv_bn(1, 0) if kernel_size > 1 else None
            self.branch_conv_list = nn.ModuleList(
                self._conv_bn(kernel_size, padding) for _ in range(num_convs)
            )
        self.act = nn.ReLU()

    def _conv_bn(self, kernel_size: int, padding: int) -> nn.Sequential:
        conv_bn = nn.Sequential()
        conv_bn.add_module(
            "conv",
            nn.Conv2d(self.inp, self.oup, kernel_size, self.stride, padding, groups=self.groups, bias=False),
        )
        conv_bn.add_module("norm", nn.BatchNorm2d(self.oup))
        return conv_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.act(self.se(self.branch_reparam(x)))
        out = 0
        if self.branch_norm is not None:
            out = self.branch_norm(x)
        if self.branch_scale is not None:
            out += self.branch_scale(x)
        for branch in self.branch_conv_list:
            out += branch(x)
        return self.act(self.se(out))

    @staticmethod
    def _fuse(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        std = (bn.running_var + bn.eps).sqrt()
        return (bn.weight / std).reshape(-1, 1, 1, 1) * kernel, bn.bias - bn.running_mean * bn.weight / std

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        weight, bias = 0, 0
        for branch in self.branch_conv_list:
            w, b = self._fuse(branch.conv.weight, branch.norm)
            weight, bias = weight + w, bias + b
        if self.branch_scale is not None:
            w, b = self._fuse(self.branch_scale.conv.weight, self.branch_scale.norm)
            pad = self.kernel_size // 2
            weight, bias = weight + F.pad(w, [pad, pad, pad, pad]), bias + b
        if self.branch_norm is not None:
            input_dim = self.inp // self.groups
            kernel = torch.zeros(self.inp, input_dim, self.kernel_size, self.kernel_size)
            for i in range(self.inp):
                kernel[i, i % input_dim, self.kernel_size // 2, self.kernel_size // 2] = 1
            w, b = self._fuse(kernel, self.branch_norm)
            weight, bias = weight + w, bias + b
        self.branch_reparam = nn.Conv2d(
            self.inp, self.oup, self.kernel_size, self.stride, self.padding, groups=self.groups
        )
        self.branch_reparam.weight.copy_(weight)
        self.branch_reparam.bias.copy_(bias)
        del self.branch_conv_list, self.branch_scale, self.branch_norm
        self.deploy = True


class MMMobileOneTSM(nn.Module):
    """MMAction2's MobileOneTSM: mmpretrain's MobileOne with every block wrapped by the shift,
    stage0 included (where the RGB input gives fold 3 // 8 = 0), returning the last stage."""

    ARCH_S4: ClassVar[dict] = dict(
        num_blocks=[2, 8, 10, 1],
        width_factor=[3.0, 3.5, 3.5, 4.0],
        num_conv_branches=[1, 1, 1, 1],
        num_se_blocks=[0, 0, 5, 1],
    )

    def __init__(self, num_segments: int, shift_div: int, deploy: bool = False, arch: dict | None = None):
        super().__init__()
        arch = arch or self.ARCH_S4
        base = [64, 128, 256, 512]
        channels = min(64, int(base[0] * arch["width_factor"][0]))
        self.stage0 = MMMobileOneBlock(3, channels, 3, 1, stride=2, deploy=deploy)
        self.in_planes = channels
        for i, num_blocks in enumerate(arch["num_blocks"]):
            planes = int(base[i] * arch["width_factor"][i])
            blocks = []
            for b in range(num_blocks):
                se = b >= num_blocks - arch["num_se_blocks"][i]
                stride = 2 if b == 0 else 1
                branches = arch["num_conv_branches"][i]
                blocks.append(
                    MMMobileOneBlock(
                        self.in_planes, self.in_planes, 3, branches, stride, 1, self.in_planes, se, deploy
                    )
                )
                blocks.append(MMMobileOneBlock(self.in_planes, planes, 1, branches, 1, 0, 1, se, deploy))
                self.in_planes = planes
            setattr(self, f"stage{i + 1}", nn.Sequential(*blocks))
        self.stage0 = MMShift(self.stage0, num_segments, shift_div)
        for i in range(1, 5):
            stage = getattr(self, f"stage{i}")
            setattr(self, f"stage{i}", nn.Sequential(*(MMShift(b, num_segments, shift_div) for b in stage)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(5):
            x = getattr(self, f"stage{i}")(x)
        return x

    def switch_to_deploy(self) -> None:
        for m in self.modules():
            if isinstance(m, MMMobileOneBlock):
                m.switch_to_deploy()


class MMTSMHead(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, num_segments: int, temporal_pool: bool) -> None:
        super().__init__()
        self.num_segments = num_segments // 2 if temporal_pool else num_segments
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.fc_cls(self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))
        return score.view((-1, self.num_segments, *score.shape[1:])).mean(dim=1)


class MMRecognizer2D(nn.Module):
    def __init__(
        self,
        backbone: str,
        num_classes: int,
        num_segments: int,
        shift_div: int = 8,
        place: str = "blockres",
        temporal_pool: bool = False,
        non_local_cfg: dict | None = None,
        backbone_segments: int | None = None,
        mobileone_arch: dict | None = None,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if backbone == "mobilenetv2":
            self.backbone, width = MMMobileNetV2TSM(num_segments, shift_div), 1280
        elif backbone == "mobileone-s4":  # the 1x1x16 config keeps the backbone at 8 segments
            self.backbone = MMMobileOneTSM(
                backbone_segments or num_segments, shift_div, deploy, mobileone_arch
            )
            width = self.backbone.in_planes
        else:
            depth = int(backbone.removeprefix("r"))
            non_local = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))  # the configs' placement
            self.backbone = MMResNetTSM(
                depth, num_segments, shift_div, place, temporal_pool, non_local, non_local_cfg
            )
            width = 512 if depth < 50 else 2048
        self.cls_head = MMTSMHead(num_classes, width, num_segments, temporal_pool)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(clips.reshape((-1, 3, *clips.shape[-2:]))))

"""The TSN-style recognizer: a (TSM) 2D backbone over all frames, a new fc, mean over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torchvision.models import WeightsEnum

from tsm.models.backbones import build_backbone
from tsm.models.mobileone import MobileOne
from tsm.models.non_local import NonLocalMode, add_non_local, check_non_local_mode
from tsm.models.specs import PLACEMENTS, Placement, backbone_spec
from tsm.models.surgery import add_temporal_pool, make_temporal_shift
from tsm.ops import ShiftMode
from tsm.ops.shift import check_shift_arguments, is_exporting


class Recognizer(nn.Module):
    """Action recognizer: clips (N, T, 3, H, W) -> class logits (N, num_classes).

    All N*T frames go through the 2D backbone as one batch; the head is Dropout + ``new_fc``
    (normal init, std 0.001, bias 0) and the clip score is the mean of the per-frame logits
    (T/2 of them with temporal pooling). ``shift=False`` gives the TSN baseline. Attribute names
    (``base_model``, ``new_fc``) follow the reference so checkpoints map one to one.

    ``non_local``: a mode of :mod:`tsm.models.non_local` (``"embedded_gaussian"``, the
    reference's; ``"gaussian"``, ``"dot_product"``) adds non-local blocks after blocks 0, 2 of
    layer2 and 0, 2, 4 of layer3 of a ResNet. ``backbone_segments``: the frames the backbone's
    shifts and non-local blocks take as one clip, when fewer than ``num_segments`` (a clip is then
    num_segments // backbone_segments windows, zero padded at each end; MMAction2's 16-frame
    MobileOne-S4 runs so); None = num_segments. ``reparameterized``: MobileOne in its fused
    inference form (see :meth:`reparameterize`).
    """

    def __init__(
        self,
        num_classes: int,
        num_segments: int = 8,
        backbone: str = "resnet50",
        shift: bool = True,
        fold_div: int = 8,
        place: Placement = "blockres",
        temporal_pool: bool = False,
        mode: ShiftMode = "bidirectional",
        dropout: float = 0.5,
        partial_bn: bool = False,
        non_local: NonLocalMode | None = None,
        backbone_segments: int | None = None,
        reparameterized: bool = False,
        pretrained: str | Path | WeightsEnum | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        # Bad settings fail here, before anything is built (also those a TSN model does not use).
        check_shift_arguments(num_segments, fold_div, mode)
        backbone_spec(backbone)
        if place not in PLACEMENTS:
            raise ValueError(f"unknown shift placement {place!r}: use one of {', '.join(PLACEMENTS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        window = num_segments if backbone_segments is None else backbone_segments
        if not (isinstance(window, int) and window >= 1) or num_segments % window:
            raise ValueError(
                f"backbone_segments={backbone_segments!r} must be a positive int that divides "
                f"num_segments={num_segments}"
            )
        if temporal_pool and window != num_segments:
            raise ValueError("temporal_pool needs backbone_segments == num_segments (whole clips)")
        if reparameterized and backbone_spec(backbone).network_type is not MobileOne:
            raise ValueError(
                f"reparameterized=True is for MobileOne backbones; {backbone} has no branches to fuse"
            )
        if non_local is not None:
            check_non_local_mode(non_local)
            if temporal_pool:
                raise ValueError(
                    "non-local blocks with temporal pooling are not supported (neither publisher combines "
                    "them: the blocks would see half the frames); use temporal_pool=False"
                )
        self.config: dict[str, Any] = {
            "num_classes": num_classes,
            "num_segments": num_segments,
            "backbone": backbone,
            "shift": shift,
            "fold_div": fold_div,
            "place": place,
            "temporal_pool": temporal_pool,
            "mode": mode,
            "dropout": dropout,
            "partial_bn": partial_bn,
            "non_local": non_local,
            # None unless it differs: a config copied with another num_segments keeps whole clips
            "backbone_segments": None if window == num_segments else window,
            "reparameterized": reparameterized,
        }
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.partial_bn = partial_bn
        self.base_model, feature_dim = build_backbone(backbone, pretrained)
        if shift:
            make_temporal_shift(self.base_model, window, fold_div, place, temporal_pool, mode)
        elif temporal_pool:  # the reference's "TSN + temporal pooling" ablation
            add_temporal_pool(self.base_model, num_segments)
        if non_local is not None:
            add_non_local(self.base_model, window, non_local)
        if reparameterized:
            self.base_model.reparameterize()
        self.output_segments = (num_segments + 1) // 2 if temporal_pool else num_segments
        self.dropout = nn.Dropout(p=dropout)
        self.new_fc = nn.Linear(feature_dim, num_classes)
        nn.init.normal_(self.new_fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.new_fc.bias)

    @property
    def is_online(self) -> bool:
        """True for uni-directional (online) TSM, which can run on a stream frame by frame."""
        return self.config["shift"] and self.config["mode"] == "unidirectional"

    def reparameterize(self) -> Recognizer:
        """Fuse a MobileOne backbone's branches into one conv per block for inference, in place.

        The outputs stay the same (in eval mode: it uses the BatchNorm running statistics) and
        ``config["reparameterized"]`` becomes True, so saved checkpoints rebuild the fused form.
        """
        if not isinstance(self.base_model, MobileOne):
            raise ValueError(
                f"only MobileOne backbones can be reparameterized, not {self.config['backbone']}"
            )
        self.base_model.reparameterize()
        self.config["reparameterized"] = True
        return self

    def _check_clips(self, clips: Tensor) -> None:
        if clips.dim() != 5:
            raise ValueError(
                f"Recognizer expects clips shaped (N, T, C, H, W), got shape {tuple(clips.shape)}"
            )
        if clips.shape[1] != self.num_segments:
            raise ValueError(
                f"the clips have T={clips.shape[1]} frames but the model was built with "
                f"num_segments={self.num_segments}; sample {self.num_segments} frames per clip, or build "
                f"the model with num_segments={clips.shape[1]}"
            )

    def forward_frames(self, clips: Tensor) -> Tensor:
        """Per-frame logits (N, T', num_classes) before the temporal mean (T' = T/2 with tpool)."""
        if not is_exporting():
            self._check_clips(clips)
        frames = clips.flatten(0, 1)
        features = self.base_model(frames)
        logits = self.new_fc(self.dropout(features))
        return logits.reshape(-1, self.output_segments, self.num_classes)

    def forward(self, clips: Tensor) -> Tensor:
        return self.forward_frames(clips).mean(dim=1)

    def train(self, mode: bool = True) -> Recognizer:
        """Switch train/eval mode; with partial BN, every BatchNorm but the first stays frozen."""
        super().train(mode)
        if mode and self.partial_bn:
            batch_norms = [
                m for m in self.base_model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            ]
            for bn in batch_norms[1:]:
                bn.eval()
                bn.weight.requires_grad_(False)
                bn.bias.requires_grad_(False)
        return self

    def param_groups(self, lr: float, weight_decay: float, fc_lr5: bool = False) -> list[dict[str, Any]]:
        """Optimizer parameter groups of the reference recipe; every parameter exactly once.

        Conv/linear weights: lr, weight decay. Biases: 2x lr, no decay. BatchNorm: lr, no decay.
        With ``fc_lr5`` the new fc's weight gets 5x lr and its bias 10x lr (fine-tuning recipe).
        """
        groups: dict[str, tuple[float, float, list[nn.Parameter]]] = {
            "weight": (1.0, 1.0, []),
            "bias": (2.0, 0.0, []),
            "norm": (1.0, 0.0, []),
        }
        if fc_lr5:
            groups["fc_weight"] = (5.0, 1.0, [self.new_fc.weight])
            groups["fc_bias"] = (10.0, 0.0, [self.new_fc.bias])
        fc_params = {id(self.new_fc.weight), id(self.new_fc.bias)} if fc_lr5 else set()
        for module in self.modules():
            is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm)
            for name, param in module.named_parameters(recurse=False):
                if id(param) in fc_params:
                    continue
                if is_norm:
                    groups["norm"][2].append(param)
                else:
                    groups["bias" if name == "bias" else "weight"][2].append(param)
        return [
            {
                "name": name,
                "params": params,
                "lr": lr * lr_mult,
                "weight_decay": weight_decay * decay_mult,
                "lr_mult": lr_mult,
                "decay_mult": decay_mult,
            }
            for name, (lr_mult, decay_mult, params) in groups.items()
            if params
        ]

"""The TSN-style recognizer: a (TSM) 2D backbone over all frames, a new fc, mean over time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torchvision.models import WeightsEnum

from tsm.models.backbone_builder import build_backbone
from tsm.models.config import ModelConfig, as_model_config
from tsm.models.non_local import add_non_local
from tsm.models.specs import backbone_spec
from tsm.models.surgery import add_temporal_pool, make_temporal_shift
from tsm.ops.shift import is_exporting


class Recognizer(nn.Module):
    """Action recognizer: clips (N, T, 3, H, W) -> class logits (N, num_classes).

    Built from a :class:`~tsm.models.ModelConfig` (``Recognizer(config)``), or from its settings
    (``Recognizer(400, backbone="resnet50", non_local="dot_product")``: the first argument is
    then the number of classes). All N*T frames go through the 2D backbone as one batch; the head
    is Dropout + ``new_fc`` (normal init, std 0.001, bias 0) and the clip score is the mean of the
    per-frame logits (T/2 of them with temporal pooling). ``shift=False`` gives the TSN baseline.
    Attribute names (``base_model``, ``new_fc``) follow the reference so checkpoints map one to one.

    ``backbone_weights``: the backbone's ImageNet initialisation: None (random), ``"imagenet"``
    (the weights the reference started from), a torchvision weights name or enum member, or a
    state-dict file (see :func:`tsm.models.build_backbone`). Published *video* weights are loaded
    by :func:`tsm.create_model` (``pretrained=True``) or :func:`tsm.load_checkpoint`.
    """

    def __init__(
        self,
        config: ModelConfig | Mapping[str, Any] | int | None = None,
        /,
        *,
        backbone_weights: str | Path | WeightsEnum | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        config = as_model_config(config, **settings)  # bad settings fail here, before anything is built
        spec = backbone_spec(config.backbone)
        self.config = config
        self.base_model, feature_dim = build_backbone(config.backbone, backbone_weights)
        if config.shift:
            make_temporal_shift(
                self.base_model,
                config.window,
                config.fold_div,
                config.place,
                config.temporal_pool,
                config.mode,
            )
        elif config.temporal_pool:  # the reference's "TSN + temporal pooling" ablation
            add_temporal_pool(self.base_model, config.num_segments)
        if config.non_local is not None:
            add_non_local(self.base_model, config.window, spec.non_local_sites, config.non_local)
        if config.reparameterized:
            spec.reparameterize(self.base_model)
        self.dropout = nn.Dropout(p=config.dropout)
        self.new_fc = nn.Linear(feature_dim, config.num_classes)
        nn.init.normal_(self.new_fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.new_fc.bias)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def num_segments(self) -> int:
        return self.config.num_segments

    @property
    def output_segments(self) -> int:
        """Per-frame scores per clip (T/2, rounded up, with temporal pooling)."""
        return self.config.output_segments

    @property
    def is_online(self) -> bool:
        """True for uni-directional (online) TSM, which can run on a stream frame by frame."""
        return self.config.is_online

    def reparameterize(self) -> Recognizer:
        """Fuse a multi-branch backbone (MobileOne) into one conv per block for inference, in place.

        The outputs stay the same (in eval mode: it uses the BatchNorm running statistics) and
        ``config.reparameterized`` becomes True, so saved checkpoints rebuild the fused form.
        """
        spec = backbone_spec(self.config.backbone)
        if spec.reparameterize is None:
            raise ValueError(
                f"only multi-branch backbones (MobileOne) can be reparameterized, not {spec.name}"
            )
        spec.reparameterize(self.base_model)
        self.config = self.config.replace(reparameterized=True)
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
        if mode and self.config.partial_bn:
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

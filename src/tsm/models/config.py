"""``ModelConfig``: every setting that defines a :class:`~tsm.Recognizer`, in one frozen, typed,
validated, JSON-able record. Checkpoints store it, so a checkpoint alone rebuilds its network.

What a setting is, is said once, in its field's metadata, and queried by the code that needs it
(checkpoint loaders, weight copying, the published-model table), never listed again:

* ``in_weights``: the weights reveal it (key names and shapes), so a checkpoint's weights decide it;
* ``training_only``: it changes training but never what trained weights compute;
* neither: it changes the computation without changing any weight (clip length, fold, shift
  direction, the backbone's clip window), so a checkpoint must state it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tsm.models.backbones  # noqa: F401 (the built-in backbones register before any config is checked)
from tsm.models.non_local import NonLocalMode, check_non_local_mode
from tsm.models.specs import PLACEMENTS, Placement, backbone_spec
from tsm.ops import ShiftMode
from tsm.ops.shift import check_shift_arguments

_IN_WEIGHTS = {"in_weights": True}
_TRAINING_ONLY = {"training_only": True}


def _fail(problem: str) -> None:
    raise ValueError(f"model config: {problem}")


@dataclass(frozen=True)
class ModelConfig:
    """The network of a TSN/TSM recognizer.

    Attributes:
        num_classes: classes of the classifier (``new_fc``).
        num_segments: frames per clip (T).
        backbone: a registered backbone (:func:`tsm.list_backbones`).
        shift: temporal shifts (TSM) or none (TSN).
        fold_div: 1/fold_div of the channels shift each way.
        place: ``"blockres"`` (shift inside the residual branch) or ``"block"`` (the block input).
        temporal_pool: max-pool time once (the reference's ``tpool``; later stages see T/2 frames).
        mode: ``"bidirectional"`` (offline) or ``"unidirectional"`` (online: past frames only).
        non_local: non-local blocks, ``"embedded_gaussian"``, ``"gaussian"`` or ``"dot_product"``.
        backbone_segments: frames the backbone's shifts and non-local blocks take as one clip, when
            fewer than num_segments (MMAction2's 16-frame MobileOne-S4 shifts 8-frame windows);
            None: whole clips. It stays when num_segments changes.
        reparameterized: a multi-branch backbone (MobileOne) in its fused inference form.
        dropout: dropout before the classifier (training only).
        partial_bn: freeze every BatchNorm but the first in training (the reference's ``--partialbn``).
    """

    num_classes: int = field(default=400, metadata=_IN_WEIGHTS)
    num_segments: int = 8
    backbone: str = field(default="resnet50", metadata=_IN_WEIGHTS)
    shift: bool = field(default=True, metadata=_IN_WEIGHTS)
    fold_div: int = 8
    place: Placement = field(default="blockres", metadata=_IN_WEIGHTS)
    temporal_pool: bool = field(default=False, metadata=_IN_WEIGHTS)
    mode: ShiftMode = "bidirectional"
    non_local: NonLocalMode | None = field(default=None, metadata=_IN_WEIGHTS)
    backbone_segments: int | None = None
    reparameterized: bool = field(default=False, metadata=_IN_WEIGHTS)
    dropout: float = field(default=0.5, metadata=_TRAINING_ONLY)
    partial_bn: bool = field(default=False, metadata=_TRAINING_ONLY)

    def __post_init__(self) -> None:
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            _fail(f"num_classes must be a positive int, got {self.num_classes!r}")
        try:
            check_shift_arguments(self.num_segments, self.fold_div, self.mode)
            spec = backbone_spec(self.backbone)
        except ValueError as error:
            _fail(str(error))
        if self.place not in PLACEMENTS:
            _fail(f"unknown shift placement {self.place!r}: use one of {', '.join(PLACEMENTS)}")
        if not 0.0 <= self.dropout < 1.0:
            _fail(f"dropout must be in [0, 1), got {self.dropout}")
        self._check_window()
        if self.shift and self.place not in spec.placements:
            _fail(f"{spec.name} supports place={' or '.join(map(repr, spec.placements))} only")
        if self.temporal_pool and spec.temporal_pool_site is None:
            _fail(f"temporal pooling is not supported by {spec.name}")
        if self.temporal_pool and self.num_segments < 2:
            _fail("temporal_pool needs num_segments >= 2")
        if self.reparameterized and spec.reparameterize is None:
            _fail(f"reparameterized=True is for multi-branch backbones; {spec.name} has no branches to fuse")
        if self.non_local is not None:
            self._check_non_local(spec.non_local_sites is not None)

    def _check_window(self) -> None:
        window = self.window
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or window < 1
            or self.num_segments % window
        ):
            _fail(
                f"backbone_segments={self.backbone_segments!r} must be a positive int that divides "
                f"num_segments={self.num_segments}"
            )
        if self.temporal_pool and window != self.num_segments:
            _fail("temporal_pool needs backbone_segments == num_segments (whole clips)")

    def _check_non_local(self, supported: bool) -> None:
        try:
            check_non_local_mode(self.non_local)
        except ValueError as error:
            _fail(str(error))
        if not supported:
            _fail(f"non-local blocks are not supported by {self.backbone}")
        if self.temporal_pool:
            _fail(
                "non-local blocks with temporal pooling are not supported (neither publisher combines them: "
                "the blocks would see half the frames); use temporal_pool=False"
            )

    @property
    def window(self) -> int:
        """Frames the backbone's shifts take as one clip (``backbone_segments`` or ``num_segments``)."""
        return self.num_segments if self.backbone_segments is None else self.backbone_segments

    def architecture(self) -> dict[str, Any]:
        """The settings that change what trained weights compute, in a canonical form (a backbone
        window as long as the clip is no window): equal for configs of the same network."""
        settings = {name: getattr(self, name) for name in self.architecture_settings()}
        settings["backbone_segments"] = None if self.window == self.num_segments else self.window
        return settings

    @property
    def is_online(self) -> bool:
        """True for uni-directional (online) TSM, which can run on a stream frame by frame."""
        return self.shift and self.mode == "unidirectional"

    @property
    def output_segments(self) -> int:
        """Per-frame scores the classifier sees per clip (T/2, rounded up, with temporal pooling)."""
        return (self.num_segments + 1) // 2 if self.temporal_pool else self.num_segments

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` (checked like the original)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in checkpoints and exported files."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> ModelConfig:
        """Read :meth:`to_dict`'s form (also that of older checkpoints, which lack the newer
        settings: they get the defaults); ``overrides`` win."""
        merged = {**(values or {}), **overrides}
        _check_names(merged)
        return cls(**merged)

    @classmethod
    def settings_in_weights(cls) -> tuple[str, ...]:
        """The settings a checkpoint's weights reveal."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("in_weights"))

    @classmethod
    def settings_beyond_weights(cls) -> tuple[str, ...]:
        """The settings that change the computation but no weight: a checkpoint must state them."""
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if not f.metadata.get("in_weights") and not f.metadata.get("training_only")
        )

    @classmethod
    def architecture_settings(cls) -> tuple[str, ...]:
        """The settings that change what trained weights compute (all but the training-only ones)."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("training_only"))


MODEL_SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ModelConfig))


def _check_names(settings: Mapping[str, Any]) -> None:
    unknown = sorted(set(settings) - set(MODEL_SETTINGS))
    if "pretrained" in unknown:
        raise ValueError(
            "'pretrained' is not a model setting: ImageNet weights of the backbone are "
            "backbone_weights='imagenet' (or a file); the published video weights of a model are "
            "tsm.create_model('ARCH.TAG', pretrained=True) (tsm.list_pretrained() lists them)"
        )
    if unknown:
        raise ValueError(f"model config: unknown settings {unknown}; valid: {', '.join(MODEL_SETTINGS)}")


def as_model_config(
    config: ModelConfig | Mapping[str, Any] | int | None = None, **settings: Any
) -> ModelConfig:
    """``config`` as a ModelConfig, with ``settings`` applied: a ModelConfig, a dict
    (:meth:`ModelConfig.from_dict`), an int (the number of classes) or None (the defaults)."""
    if isinstance(config, ModelConfig):
        return config.replace(**settings) if settings else config
    if isinstance(config, int) and not isinstance(config, bool):
        return ModelConfig.from_dict({"num_classes": config}, **settings)
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"expected a ModelConfig, a dict or a number of classes, got {type(config).__name__}")
    return ModelConfig.from_dict(config, **settings)

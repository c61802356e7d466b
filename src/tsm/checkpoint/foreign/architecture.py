"""The architecture a checkpoint's weights reveal (tsm's key layout, after mapping): backbone and
its depth, classes, shifted or not, placement, temporal pooling, fused or not (each backbone's
spec reads its own keys), and the non-local blocks, whose keys and shapes cannot lie."""

from __future__ import annotations

import re

from tsm.checkpoint.foreign.files import StateDict
from tsm.models import Setting, backbone_spec, list_backbones
from tsm.models.specs import reveal_backbone

_NON_LOCAL_KEY = re.compile(r"^base_model\.(\w+)\.(\d+)\.nl\.")
# Weights cannot tell these two apart (same parameters, different affinity): metadata must.
THETA_PHI_MODES = ("embedded_gaussian", "dot_product")


def _non_local_architecture(state: StateDict, backbone: str | None) -> Setting:
    """None (no non-local blocks), ``"gaussian"`` (no theta/phi weights) or :data:`THETA_PHI_MODES`."""
    positions = sorted({(m[1], int(m[2])) for key in state if (m := _NON_LOCAL_KEY.match(key))})
    if not positions:
        return Setting(None, "weights: no non-local blocks")
    if backbone is not None:  # else the backbone is resolved later (from an argument)
        sites = backbone_spec(backbone).non_local_sites
        expected = sorted(
            (stage, i) for stage, indices in (sites.blocks if sites else {}).items() for i in indices
        )
        if positions != expected:
            placement = f"the published placement {expected}" if expected else "no non-local blocks"
            raise ValueError(
                f"the checkpoint has non-local blocks after (stage, block) {positions}; tsm supports "
                f"{placement} for {backbone}"
            )
    if any(".nl.g.weight" in key for key in state):
        raise ValueError(
            "the checkpoint's non-local blocks do not sub-sample (g is a bare conv); tsm supports the "
            "published, sub-sampled blocks (sub_sample=True) only"
        )
    where = f"weights: {len(positions)} non-local blocks"
    if not any(".nl.theta." in key for key in state):
        return Setting("gaussian", f"{where} without theta/phi weights (gaussian)")
    return Setting(THETA_PHI_MODES, f"{where} with theta/phi weights")


def infer_architecture(state: StateDict) -> dict[str, Setting]:
    """Backbone, number of classes, shift, placement, temporal pool, fused form and non-local
    blocks from tsm-layout weights."""
    head = state.get("new_fc.weight")
    if head is None or head.dim() != 2:
        raise ValueError(
            "the checkpoint has no classifier (new_fc / cls_head.fc_cls / classifier weight); an "
            "ImageNet backbone file is not a recognizer: use it as Recognizer(backbone_weights=PATH)"
        )
    stem = next((v for k, v in state.items() if k.startswith("base_model.") and v.dim() == 4), None)
    if stem is not None and stem.shape[1] != 3:
        raise ValueError(
            f"the first convolution takes {stem.shape[1]} input channels, not 3 (RGB): optical flow "
            "and RGB-difference models are not supported by tsm"
        )
    settings = reveal_backbone(state)
    if settings is None:
        raise ValueError(
            f"the checkpoint's backbone is none of tsm's ({', '.join(list_backbones())}); its first keys: "
            + ", ".join(list(state)[:4])
        )
    settings["non_local"] = _non_local_architecture(state, settings["backbone"].value)
    settings["num_classes"] = Setting(int(head.shape[0]), f"weights: classifier {tuple(head.shape)}")
    return settings

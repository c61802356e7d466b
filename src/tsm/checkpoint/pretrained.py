"""What a published checkpoint is, as one typed record: :class:`PretrainedInfo`, a tag of an
architecture (``ARCHITECTURE.TAG``, as timm's pretrained configs). The records themselves are in
:mod:`tsm.checkpoint.zoo`; :mod:`tsm.checkpoint.registry` keeps them with their architectures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tsm.data import DataConfig
from tsm.models import ModelConfig

REFERENCE = "reference"
MMACTION2 = "mmaction2"


@dataclass(frozen=True)
class PublisherLicense:
    """A publisher's licence: its SPDX id as the Hugging Face Hub spells it, and where it is stated."""

    spdx: str
    stated_in: str


# Each publisher's repository licence, from its LICENSE file.
PUBLISHER_LICENSES: Mapping[str, PublisherLicense] = MappingProxyType(
    {
        REFERENCE: PublisherLicense("mit", "mit-han-lab/temporal-shift-module LICENSE (MIT License)"),
        MMACTION2: PublisherLicense("apache-2.0", "open-mmlab/mmaction2 LICENSE (Apache License 2.0)"),
    }
)


def describe_protocol(config: DataConfig) -> str:
    """A test protocol in words: frames x clips x crops."""
    crops = {"center": "1 centre crop", "three": "3 crops", "ten": "10 crops"}[config.test_views]
    clips = f"{config.test_clips} {config.sampling} clip{'' if config.test_clips == 1 else 's'}"
    return f"{config.num_segments} frames x {clips} x {crops} of {config.test_crop_size} px"


@dataclass(frozen=True)
class PretrainedInfo:
    """One published checkpoint: its name, file, network, dataset, test protocol and reported top-1."""

    name: str  # ARCHITECTURE.TAG
    source: str  # the publisher: "reference" or "mmaction2"
    url: str
    dataset: str  # a row of the dataset catalog (tsm.data.PUBLIC_DATASETS)
    model_config: ModelConfig  # the network: its architecture entry with the published settings
    top1: float | None  # percent, as reported
    top1_measured_on: str  # the split the figure was measured on (the views: ``protocol``)
    data_config: DataConfig  # the published test protocol (and the publisher's training flips)
    legacy_name: str = ""  # its name in tsm 0.1
    sha256_prefix: str | None = None  # leading hex digits of the file's sha256, where its name has them
    view_average: str = "logits"  # how the publisher averages view scores: "logits" or "softmax"
    class_order: str = REFERENCE  # whose class-index order: "reference" or "mmaction2"
    buildable: bool = True
    reason: str = ""  # why tsm cannot build it, when not buildable
    also_reported: str = ""  # other figures of the same file
    reported_in: str = ""  # the publisher's document holding the figure
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def architecture(self) -> str:
        """The :func:`tsm.list_models` entry this checkpoint is an instance of."""
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def filename(self) -> str:
        """The published file name (the cache and mirrors keep the file under it)."""
        return self.url.rsplit("/", 1)[1]

    @property
    def num_classes(self) -> int:
        return self.model_config.num_classes

    @property
    def num_segments(self) -> int:
        """Frames per clip of the reported test."""
        return self.model_config.num_segments

    @property
    def protocol(self) -> str:
        """The test protocol in words: frames x clips x crops."""
        return describe_protocol(self.data_config)

    @property
    def license(self) -> PublisherLicense:
        """The licence of the publisher's repository (neither publisher states one for its weights alone)."""
        return PUBLISHER_LICENSES[self.source]

    @property
    def protocol_settings(self) -> dict[str, Any]:
        """The data-config settings of the protocol that differ from :class:`tsm.DataConfig`'s defaults."""
        defaults = DataConfig(num_segments=self.num_segments).to_dict()
        return {key: value for key, value in self.data_config.to_dict().items() if value != defaults[key]}

"""The ``config.json`` of a tsm model repo on the Hugging Face Hub: what the repo holds, readable
without its weights (architecture, settings, test pipeline, class names, the publisher's record of a
mirrored model), versioned so that an older tsm refuses a repo written for a newer one.

``model.safetensors`` beside it is an ordinary tsm checkpoint and carries the same settings, classes
and pipeline: a repo's weights alone still load anywhere; the config lets the Hub and other tools
read the model without downloading them, and lets tsm refuse a repo before fetching its weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tsm.checkpoint.registry import architecture_of
from tsm.data import DataConfig
from tsm.models import VIEW_AVERAGES, ModelConfig
from tsm.version import __version__

HUB_LIBRARY = "tsm"
HUB_CONFIG_FILE = "config.json"
HUB_WEIGHTS_FILE = "model.safetensors"
HUB_CONFIG_FORMAT = 1  # raised when an older tsm could no longer read what a newer one writes
ORIGINAL_FOLDER = "original"  # a mirrored model's file as its publisher published it


class HubError(RuntimeError):
    """A Hub repo could not be used as a tsm model: missing, unreachable, not a tsm model or too new."""


@dataclass(frozen=True)
class PublishedRecord:
    """Where a mirrored model comes from: the publisher's file, its sha256, licence and reported top-1."""

    name: str  # its tsm name, ARCHITECTURE.TAG (tsm.list_pretrained)
    publisher: str
    url: str
    filename: str  # the published file name; the repo keeps the file as original/<filename>
    sha256: str  # of the published file, computed when the mirror was made
    license: str  # the licence of the publisher's repository (an SPDX id as the Hub writes it)
    license_source: str
    top1: float | None
    top1_measured_on: str
    protocol: str  # frames x clips x crops of the reported test
    reported_in: str

    @property
    def path_in_repo(self) -> str:
        return f"{ORIGINAL_FOLDER}/{self.filename}"


@dataclass(frozen=True)
class HubConfig:
    """What ``config.json`` says about a tsm model repo."""

    model_config: ModelConfig
    data_config: DataConfig
    label_names: tuple[str, ...]
    view_average: str = "logits"
    published: PublishedRecord | None = None
    exports: Mapping[str, str] = field(default_factory=dict)  # export name -> its path in the repo
    tsm_version: str = __version__
    format_version: int = HUB_CONFIG_FORMAT

    def __post_init__(self) -> None:
        if len(self.label_names) != self.model_config.num_classes:
            classes = self.model_config.num_classes
            raise ValueError(f"{len(self.label_names)} class names for a model with {classes} classes")
        if self.view_average not in VIEW_AVERAGES:
            choices = ", ".join(VIEW_AVERAGES)
            raise ValueError(f"view_average must be one of {choices}, got {self.view_average!r}")
        object.__setattr__(self, "label_names", tuple(self.label_names))
        object.__setattr__(self, "exports", MappingProxyType(dict(self.exports)))

    @property
    def architecture(self) -> str | None:
        """The :func:`tsm.list_models` entry this network is an instance of, or None."""
        return architecture_of(self.model_config)

    @property
    def num_frames(self) -> int:
        return self.model_config.num_segments

    @property
    def online(self) -> bool:
        return self.model_config.is_online

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: timm's names where it has them (``architecture``, ``num_classes``,
        ``label_names``), then tsm's settings, pipeline and the publisher's record."""
        return {
            "library_name": HUB_LIBRARY,
            "format_version": self.format_version,
            "tsm_version": self.tsm_version,
            "architecture": self.architecture,
            "num_classes": self.model_config.num_classes,
            "num_frames": self.num_frames,
            "online": self.online,
            "label_names": list(self.label_names),
            "view_average": self.view_average,
            "model_config": self.model_config.to_dict(),
            "data_config": self.data_config.to_dict(),
            "published": asdict(self.published) if self.published is not None else None,
            "files": {"weights": HUB_WEIGHTS_FILE, "exports": dict(self.exports)},
        }

    def write(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str) -> HubConfig:
        """Read :meth:`to_dict`'s form; ``source`` names the repo in errors (one line each)."""
        if not isinstance(values, Mapping) or values.get("library_name") != HUB_LIBRARY:
            found = values.get("library_name") if isinstance(values, Mapping) else None
            raise HubError(
                f"{source} is not a tsm model: its {HUB_CONFIG_FILE} says library_name={found!r}, not 'tsm' "
                "(a tsm repo is written by tsm.save_pretrained / tsm hub push)"
            )
        written_by = values.get("tsm_version", "?")
        format_version = values.get("format_version")
        if not isinstance(format_version, int) or format_version > HUB_CONFIG_FORMAT:
            raise HubError(
                f"{source} was written by tsm {written_by} (config format {format_version}), newer than this "
                f"tsm {__version__} (format {HUB_CONFIG_FORMAT}): upgrade tsm (pip install -U 'tsm[hub]')"
            )
        try:
            published = values.get("published")
            return cls(
                model_config=ModelConfig.from_dict(values["model_config"]),
                data_config=DataConfig.from_dict(values["data_config"]),
                label_names=tuple(values["label_names"]),
                view_average=values.get("view_average", "logits"),
                published=PublishedRecord(**published) if published else None,
                exports=values.get("files", {}).get("exports", {}),
                tsm_version=written_by,
                format_version=format_version,
            )
        except (KeyError, TypeError, ValueError) as error:
            problem = f"lacks {error}" if isinstance(error, KeyError) else str(error)
            raise HubError(
                f"{source}: its {HUB_CONFIG_FILE} (written by tsm {written_by}) cannot be read by tsm "
                f"{__version__}: {problem}"
            ) from None

    @classmethod
    def read(cls, path: str | Path, source: str) -> HubConfig:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HubError(f"{source}: its {HUB_CONFIG_FILE} is not JSON ({error})") from None
        return cls.from_dict(values, source)

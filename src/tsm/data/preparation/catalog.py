"""The public video datasets, one row each: every per-dataset fact tsm uses, in one place.

A row says how the dataset is called (its title, and the tokens the publishers' checkpoint file
names use for it), how its official annotations are read, whether the reference's checkpoints
order its classes by ``sorted()`` (the class names themselves are the files under
``tsm/data/labels/``), whether it is distributed as frame folders (and their file names), and its
flip policy: direction-sensitive classes ("moving something left to right") are trained without
horizontal flips, unless a flip label map swaps the mirrored classes (MMAction2's
Something-Something V2 recipe). Adding a dataset is adding a row (and its label file).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tsm.data.preparation.annotations import (
    Annotations,
    read_hmdb51,
    read_jester,
    read_kinetics,
    read_sthv1,
    read_sthv2,
    read_ucf101,
)

AnnotationReader = Callable[[Path, list[str], int], Annotations]
# Something-Something V2 classes that swap under a horizontal flip ("... left to right" and
# "... right to left" style pairs), as MMAction2 maps them; use as ``flip_label_map``.
SOMETHING_V2_FLIP_LABEL_MAP = MappingProxyType(
    {"86": 87, "87": 86, "93": 94, "94": 93, "166": 167, "167": 166}
)


@dataclass(frozen=True)
class PublicDataset:
    """The facts of one public dataset (see the module docstring)."""

    name: str
    title: str
    read_annotations: AnnotationReader
    file_name_tokens: tuple[str, ...] = ()  # how checkpoint file names call it (reference, MMAction2)
    reference_sorts_classes: bool = False  # the reference orders classes by sorted(names)
    frame_template: str | None = None  # distributed as frame folders with these file names
    direction_sensitive: bool = False  # a horizontal flip changes the class of some clips
    flip_label_map: Mapping[str, int] | None = field(default=None)  # the classes a flip swaps

    def training_flips(self, publisher: str) -> dict[str, Any]:
        """The ``flip`` / ``flip_label_map`` data settings ``publisher`` trains this dataset with:
        direction-sensitive datasets without flips, but MMAction2 flips them when a map swaps the
        mirrored classes."""
        if not self.direction_sensitive:
            return {"flip": True}
        if publisher == "mmaction2" and self.flip_label_map is not None:
            return {"flip": True, "flip_label_map": dict(self.flip_label_map)}
        return {"flip": False}


_ROWS = (
    PublicDataset("kinetics400", "Kinetics-400", read_kinetics, ("kinetics", "kinetics400")),
    PublicDataset("kinetics600", "Kinetics-600", read_kinetics, ("kinetics600",)),
    PublicDataset("kinetics700", "Kinetics-700", read_kinetics, ("kinetics700",)),
    PublicDataset(
        "sthv1",
        "Something-Something V1",
        read_sthv1,
        ("something", "somethingv1", "sthv1"),
        reference_sorts_classes=True,
        frame_template="{:05d}.jpg",
        direction_sensitive=True,
    ),
    PublicDataset(
        "sthv2",
        "Something-Something V2",
        read_sthv2,
        ("somethingv2", "sthv2"),
        direction_sensitive=True,
        flip_label_map=SOMETHING_V2_FLIP_LABEL_MAP,
    ),
    PublicDataset(
        "jester",
        "Jester",
        read_jester,
        ("jester",),
        reference_sorts_classes=True,
        frame_template="{:05d}.jpg",
        direction_sensitive=True,
    ),
    PublicDataset("ucf101", "UCF101", read_ucf101, ("ucf101",)),
    PublicDataset("hmdb51", "HMDB51", read_hmdb51, ("hmdb51",)),
)
PUBLIC_DATASETS: Mapping[str, PublicDataset] = MappingProxyType({row.name: row for row in _ROWS})
DATASETS: tuple[str, ...] = tuple(PUBLIC_DATASETS)


def public_dataset(name: str) -> PublicDataset:
    """The row of ``name``, or a ValueError listing the datasets."""
    if name not in PUBLIC_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return PUBLIC_DATASETS[name]


def dataset_named_in_file(token: str) -> PublicDataset | None:
    """The dataset a checkpoint file name calls ``token`` (``"somethingv2"``, ``"kinetics400"``)."""
    token = token.lower()
    return next((row for row in _ROWS if token in row.file_name_tokens), None)

"""Class names of the public video datasets, in the label order of the published checkpoints.

The files under ``tsm/data/labels/`` are copied unchanged from public label maps (one name a line):

- kinetics400.txt: mit-han-lab/temporal-shift-module ``tools/kinetics_label_map.txt`` (identical to
  MMAction2's ``tools/data/kinetics/label_map_k400.txt``);
- kinetics600.txt, kinetics700.txt: open-mmlab/mmaction2 ``tools/data/kinetics/label_map_k{600,700}.txt``;
- sthv1.txt: open-mmlab/mmaction2 ``tools/data/sthv1/label_map.txt`` (order of
  ``something-something-v1-labels.csv``);
- sthv2.txt: open-mmlab/mmaction2 ``tools/data/sthv2/label_map.txt`` (index order of
  ``something-something-v2-labels.json``);
- jester.txt: open-mmlab/mmaction2 ``tools/data/jester/label_map.txt`` (order of ``jester-v1-labels.csv``);
- ucf101.txt: open-mmlab/mmaction2 ``tools/data/ucf101/label_map.txt`` (order of ``classInd.txt``);
- hmdb51.txt: open-mmlab/mmaction2 ``tools/data/hmdb51/label_map.txt`` (sorted class folder names).

Who trained a checkpoint decides its class order. MMAction2 uses these files as they are. The
reference (``tools/gen_label_sthv1.py``) sorts the names of ``*-labels.csv`` with Python's
``sorted`` for Something-Something V1 and Jester; for every other dataset both publishers use the
order above (Kinetics: plain alphabetical; UCF101: ``classInd.txt``, which is case-insensitive
alphabetical; SSv2: the json's indices).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Literal

from tsm.data.preparation.catalog import public_dataset

CLASS_ORDERS = ("reference", "mmaction2")
ClassOrder = Literal["reference", "mmaction2"]


@functools.cache
def _shipped(dataset: str) -> tuple[str, ...]:
    text = resources.files("tsm.data").joinpath("labels", f"{dataset}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def dataset_class_names(dataset: str, order: ClassOrder = "reference") -> list[str]:
    """Class names of ``dataset`` (one of ``DATASETS``) in label order: ``"reference"`` for the
    checkpoints of mit-han-lab/temporal-shift-module, ``"mmaction2"`` for MMAction2's."""
    facts = public_dataset(dataset)
    names = list(_shipped(facts.name))
    if order not in CLASS_ORDERS:
        raise ValueError(f"unknown class order {order!r}; choose 'reference' or 'mmaction2'")
    if order == "reference" and facts.reference_sorts_classes:
        names.sort()
    return names


__all__ = ["CLASS_ORDERS", "ClassOrder", "dataset_class_names"]

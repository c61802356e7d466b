"""What an export format's int8 writer takes and gives (:attr:`tsm.export.ExportFormat.quantize`):
the fp32 network as it is exported, with real calibration inputs, in; a quantized model that can
be written with any metadata out. :func:`tsm.export.export_int8` does the rest, the same for
every format: calibration clips, the check on held-out clips, the report and the refusal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn


@dataclass(frozen=True)
class Int8Job:
    """One int8 export: ``network`` (the Recognizer or its StreamingStep, eval, CPU fp32) as the
    fp32 export would write it, with ``example`` inputs, input and output ``names`` and
    ``metadata``; ``calibration``: real inputs (clips, or frames with the caches the fp32 step left
    after the frames before); ``folder``: scratch space; ``options``: the format's write options."""

    network: nn.Module
    example: tuple[Tensor, ...]
    names: tuple[list[str], list[str]]
    metadata: dict[str, str]
    calibration: Sequence[Sequence[Tensor]]
    folder: Path
    options: dict[str, Any] = field(default_factory=dict)


class QuantizedModel(Protocol):
    """A quantized model ready to write: ``details`` describes the scheme (recorded in the file's
    ``int8`` metadata); ``write(path, metadata)`` writes the file with ``metadata``."""

    details: dict[str, str]

    def write(self, path: Path, metadata: dict[str, str]) -> None: ...

"""The exports a tsm model repo may carry, one row each: every file format of
:data:`tsm.export.FORMATS` (so a format added there is offered here too), the int8 ONNX file and
the web folder. Each is written and checked as ``tsm export`` does; a failed check refuses the repo.
Online models are exported as their streaming step (what ``tsm stream`` and a device run), offline
ones as the clip model."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from tsm.data import DataConfig
from tsm.export import FORMATS, Int8Options, OnnxExporter, decoded_check_inputs, export_int8, export_model
from tsm.export.web import export_web
from tsm.models import Recognizer

EXPORTS_FOLDER = "exports"


@dataclass(frozen=True)
class ExportSettings:
    """How a repo's exports are made (``tsm export``'s options)."""

    frame_size: int | None = None  # default: the test pipeline's crop
    onnx_exporter: OnnxExporter = "dynamo"
    video: str | Path | None = None  # check on this video's frames (default: a synthetic clip)
    int8: Int8Options | None = None  # the calibration of the "int8" export
    ort_web: str | Path | None = None  # a copy of onnxruntime-web for "web" (default: npm)


@dataclass(frozen=True)
class ExportJob:
    """One model to export, with what every export needs."""

    model: Recognizer
    class_names: Sequence[str]
    data_config: DataConfig
    name: str
    settings: ExportSettings

    @property
    def size(self) -> int:
        return self.settings.frame_size or self.data_config.test_crop_size

    @property
    def streaming(self) -> bool:
        return self.model.config.is_online

    @property
    def shared_options(self) -> dict[str, Any]:
        """What every export call takes: frame size, classes, pipeline, the ONNX exporter."""
        return {
            "frame_size": self.size,
            "class_names": self.class_names,
            "data_config": self.data_config,
            "onnx_exporter": self.settings.onnx_exporter,
        }

    @functools.cached_property
    def check_inputs(self) -> dict[str, Tensor]:
        return decoded_check_inputs(self.data_config, self.size, self.streaming, self.settings.video)


@dataclass(frozen=True)
class HubExport:
    """One export: where it goes in the repo and how it is written (returns its check, one line)."""

    name: str
    path: str
    write: Callable[[ExportJob, Path], str]


def _passed(name: str, check: object) -> str:
    summary = check.summary()  # type: ignore[attr-defined]
    if not check.passed:  # type: ignore[attr-defined]
        raise ValueError(f"the {name} export failed its check, so nothing was written: {summary}")
    return summary


def _write_format(format_name: str, job: ExportJob, path: Path) -> str:
    check = export_model(
        job.model,
        path,
        format=format_name,
        streaming=job.streaming,
        check_inputs=job.check_inputs,
        **job.shared_options,
    )
    return _passed(format_name, check)


def _write_int8(job: ExportJob, path: Path) -> str:
    if job.settings.int8 is None:
        raise ValueError("the int8 export is calibrated on real videos: give them (--calibration SOURCE)")
    calibration = dataclasses.asdict(job.settings.int8)
    report = export_int8(job.model, path, streaming=job.streaming, **job.shared_options, **calibration)
    return report.summary()


def _write_web(job: ExportJob, path: Path) -> str:
    web = {"name": job.name, "ort_web": job.settings.ort_web}
    result = export_web(job.model, path, check_inputs=job.check_inputs, **web, **job.shared_options)
    return _passed("web", result.check)


def hub_exports() -> dict[str, HubExport]:
    """The exports by name: the file formats of :data:`tsm.export.FORMATS`, then int8 and web."""
    table = {
        name: HubExport(
            name, f"{EXPORTS_FOLDER}/model{spec.suffixes[0]}", functools.partial(_write_format, name)
        )
        for name, spec in FORMATS.items()
    }
    table["int8"] = HubExport("int8", f"{EXPORTS_FOLDER}/model_int8.onnx", _write_int8)
    table["web"] = HubExport("web", f"{EXPORTS_FOLDER}/web", _write_web)
    return table


def check_export_names(names: Sequence[str]) -> list[HubExport]:
    """The table rows of ``names``; an unknown name is a one-line error listing the known ones."""
    table = hub_exports()
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ValueError(f"unknown export {', '.join(map(repr, unknown))}: use {', '.join(table)}")
    return [table[name] for name in dict.fromkeys(names)]


def write_exports(job: ExportJob, folder: Path, exports: Sequence[HubExport]) -> dict[str, tuple[str, str]]:
    """Write ``exports`` of ``job`` under ``folder``; returns name -> (path in the repo, check)."""
    written = {}
    for export in exports:
        path = folder / export.path
        path.parent.mkdir(parents=True, exist_ok=True)
        written[export.name] = (export.path, export.write(job, path))
    return written

"""What a run's model is offered as, beyond its checkpoint: the ONNX streaming step (``tsm export
--streaming``) and the browser folder (``tsm export --format web``, zipped); each made on first
request, checked against PyTorch as ``tsm export`` checks, and kept in ``DIR/downloads/<run>/``."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from tsm.apps.teach.project import TeachProject
from tsm.checkpoint import load_checkpoint
from tsm.export import export_model
from tsm.export.web import export_web
from tsm.fileio import atomic_write_named

_LOCK = threading.Lock()  # one export at a time: each takes the CPU for seconds


def _onnx_step(checkpoint: Path, target: Path) -> None:
    model, info = load_checkpoint(checkpoint)
    check = export_model(
        model,
        target,
        streaming=True,
        frame_size=info.data_config.test_crop_size,
        class_names=info.class_names,
        data_config=info.data_config,
    )
    if not check.passed:
        raise ValueError(f"the ONNX step differs from PyTorch: {check.summary()}")


def _web_zip(checkpoint: Path, target: Path) -> None:
    model, info = load_checkpoint(checkpoint)
    folder = target.parent / "web"
    export = export_web(
        model,
        folder,
        info.data_config.test_crop_size,
        class_names=info.class_names,
        data_config=info.data_config,
        name=checkpoint.stem,
    )
    if export.check is not None and not export.check.passed:
        raise ValueError(f"the web model differs from PyTorch: {export.check.summary()}")
    shutil.make_archive(str(target.with_suffix("")), "zip", folder)


DOWNLOADS: dict[str, tuple[str, Callable[[Path, Path], None] | None]] = {
    "model": ("{run}.safetensors", None),  # the checkpoint itself
    "onnx": ("{run}-step.onnx", _onnx_step),
    "web": ("{run}-web.zip", _web_zip),
}


def download_file(project: TeachProject, run: str, kind: str) -> Path:
    """The file of ``kind`` ("model", "onnx" or "web") for ``run``, made now if it is not there."""
    checkpoint = project.model_path(run)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{run} has no model: train first")
    pattern, make = DOWNLOADS[kind]
    if make is None:
        return checkpoint
    path = project.downloads(run) / pattern.format(run=run)
    with _LOCK:
        if not path.is_file():
            atomic_write_named(path, lambda target: make(checkpoint, target))
    return path

"""ONNX files exported on first use, kept in a cache keyed on what decides their content.

The key hashes the model's weights and configuration, the kind (clip or streaming step), the
frame size, the exporter and the versions of tsm, torch and onnx (a new exporter may write
another graph). A file is exported and checked against PyTorch under a file lock, in a temporary
file that is renamed into place only after the check passes: processes starting at once wait for
each other, and no reader ever sees half a file or an unchecked one.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from tsm.export import OnnxExporter, export_model, require_export_extra
from tsm.models import Recognizer
from tsm.version import __version__

CACHE_VARIABLE = "TSM_ONNX_CACHE"
# The TorchScript-based exporter: 3-10x faster to export than the torch.export-based one, needs no
# onnxscript, and its files ran as fast (its extra shape arithmetic costs nothing measurable; see
# docs/benchmarks.md, "Inference engines").
DEFAULT_EXPORTER: OnnxExporter = "torchscript"


@dataclass(frozen=True)
class CachedExport:
    """Where the cached file is, and whether this call exported it (False: it was there)."""

    path: Path
    exported: bool
    seconds: float  # time this call spent waiting for and exporting the file


def onnx_cache_dir() -> Path:
    """``$TSM_ONNX_CACHE``, else ``$XDG_CACHE_HOME/tsm/onnx`` (``~/.cache/tsm/onnx``)."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsm" / "onnx"


def export_key(
    model: Recognizer, streaming: bool, frame_size: tuple[int, int], exporter: OnnxExporter
) -> str:
    """The sha256 of everything that decides the exported file's content."""
    digest = hashlib.sha256()
    onnx = require_export_extra("onnx")
    versions = f"tsm {__version__}, torch {torch.__version__}, onnx {onnx.__version__}"
    if exporter == "dynamo":
        versions += f", onnxscript {require_export_extra('onnxscript').__version__}"
    header = (streaming, tuple(frame_size), exporter, versions, repr(model.config))
    digest.update(repr(header).encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name} {data.dtype} {tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cached_export_path(
    model: Recognizer,
    streaming: bool,
    frame_size: tuple[int, int],
    exporter: OnnxExporter = DEFAULT_EXPORTER,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where the cache keeps (or will keep) the export of ``model`` with these settings."""
    kind = "stream" if streaming else "clip"
    height, width = frame_size
    key = export_key(model, streaming, frame_size, exporter)
    return Path(cache_dir or onnx_cache_dir()) / f"{kind}-{height}x{width}-{key[:24]}.onnx"


def export_lock(path: Path) -> FileLock:
    """The lock that the processes exporting ``path`` take in turn."""
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def cached_export(
    model: Recognizer,
    streaming: bool,
    frame_size: tuple[int, int],
    exporter: OnnxExporter = DEFAULT_EXPORTER,
    cache_dir: str | Path | None = None,
) -> CachedExport:
    """The cached ONNX file of ``model`` (clip model or streaming step at ``frame_size``),
    exported and checked against PyTorch (1e-4) on first use; safe under concurrent first use."""
    started = time.perf_counter()
    path = cached_export_path(model, streaming, frame_size, exporter, cache_dir)
    if path.is_file():
        return CachedExport(path, False, time.perf_counter() - started)
    path.parent.mkdir(parents=True, exist_ok=True)
    with export_lock(path):
        exported = not path.is_file()  # another process may have written it while this one waited
        if exported:
            _export_checked(model, streaming, frame_size, exporter, path)
    return CachedExport(path, exported, time.perf_counter() - started)


def _export_checked(
    model: Recognizer, streaming: bool, frame_size: tuple[int, int], exporter: OnnxExporter, path: Path
) -> None:
    """Export into a temporary file beside ``path``; rename it into place if the check passes."""
    on_cpu = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    network = model if on_cpu else copy.deepcopy(model)  # export_model moves it to the CPU in fp32
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.onnx")
    try:
        check = export_model(
            network, temporary, streaming=streaming, frame_size=frame_size, onnx_exporter=exporter
        )
        if not check.passed:
            raise ValueError(f"the ONNX export of this model differs from PyTorch: {check.summary()}")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

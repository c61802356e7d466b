"""Exported files made on first use, for runtimes that run files, kept in a cache keyed on what
decides their content.

The key hashes the model's weights and configuration, the kind (clip or streaming step), the
frame size, the export format and its options, and the versions of tsm, torch and the format's
packages (a new exporter may write another graph). A file is exported and checked (see
:func:`tsm.export.verify_export`, on random inputs and decoded video) under a file lock, in a
temporary file renamed into place only after the check passes: processes starting at once wait
for each other, and no reader ever sees half a file or an unchecked one.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from tsm.data import DataConfig
from tsm.export import FORMATS, decoded_check_inputs, export_model
from tsm.export.onnx import OnnxExporter
from tsm.models import ModelKind, Recognizer
from tsm.version import __version__

CACHE_VARIABLE = "TSM_EXPORT_CACHE"
OLD_CACHE_VARIABLE = "TSM_ONNX_CACHE"  # tsm 0.1's name, still read


@dataclass(frozen=True)
class CachedExport:
    """Where the cached file is, and whether this call exported it (False: it was there)."""

    path: Path
    exported: bool
    seconds: float  # time this call spent waiting for and exporting the file

    def note(self) -> str:
        """How the file came to be, for an engine's reason."""
        return f"exported in {self.seconds:.1f} s" if self.exported else "from the export cache"


def export_cache_dir() -> Path:
    """``$TSM_EXPORT_CACHE`` (or tsm 0.1's ``$TSM_ONNX_CACHE``), else ``$XDG_CACHE_HOME/tsm/exports``
    (``~/.cache/tsm/exports``)."""
    for variable in (CACHE_VARIABLE, OLD_CACHE_VARIABLE):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsm" / "exports"


def _versions(packages: tuple[str, ...]) -> str:
    found = [f"tsm {__version__}", f"torch {torch.__version__}"]
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)


def export_key(
    model: Recognizer, kind: ModelKind, frame_size: tuple[int, int], format: str, exporter: OnnxExporter
) -> str:
    """The sha256 of everything that decides the exported file's content."""
    spec = FORMATS[format]
    options = (exporter,) if "exporter" in spec.options else ()
    header = (kind, tuple(frame_size), format, options, _versions(spec.packages), repr(model.config))
    digest = hashlib.sha256(repr(header).encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name} {data.dtype} {tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cached_export_path(
    model: Recognizer,
    kind: ModelKind,
    frame_size: tuple[int, int],
    format: str,
    exporter: OnnxExporter,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where the cache keeps (or will keep) the export of ``model`` with these settings."""
    height, width = frame_size
    key = export_key(model, kind, frame_size, format, exporter)
    suffix = FORMATS[format].suffixes[0]
    return Path(cache_dir or export_cache_dir()) / f"{kind}-{height}x{width}-{key[:24]}{suffix}"


def export_lock(path: Path) -> FileLock:
    """The lock that the processes exporting ``path`` take in turn."""
    return FileLock(str(path.with_name(f".{path.name}.lock")))


def cached_export(
    model: Recognizer,
    kind: ModelKind,
    frame_size: tuple[int, int],
    format: str,
    exporter: OnnxExporter,
    cache_dir: str | Path | None = None,
) -> CachedExport:
    """The cached ``format`` file of ``model`` (clip model or streaming step at ``frame_size``),
    exported and checked on first use; safe under concurrent first use."""
    started = time.perf_counter()
    path = cached_export_path(model, kind, frame_size, format, exporter, cache_dir)
    if path.is_file():
        return CachedExport(path, False, time.perf_counter() - started)
    path.parent.mkdir(parents=True, exist_ok=True)
    with export_lock(path):
        exported = not path.is_file()  # another process may have written it while this one waited
        if exported:
            _export_checked(model, kind, frame_size, exporter, path)
    return CachedExport(path, exported, time.perf_counter() - started)


def _export_checked(
    model: Recognizer, kind: ModelKind, frame_size: tuple[int, int], exporter: OnnxExporter, path: Path
) -> None:
    """Export into a temporary file beside ``path``; rename it into place if the check passes."""
    on_cpu = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    network = model if on_cpu else copy.deepcopy(model)  # export_model moves it to the CPU in fp32
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(6)}{path.suffix}")
    streaming = kind == "stream"
    config = DataConfig(num_segments=model.num_segments, resize=None)
    real = decoded_check_inputs(config, frame_size, streaming)
    try:
        check = export_model(
            network,
            temporary,
            streaming=streaming,
            frame_size=frame_size,
            onnx_exporter=exporter,
            check_inputs=real,
        )
        if not check.passed:
            raise ValueError(f"the export of this model differs from PyTorch: {check.summary()}")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

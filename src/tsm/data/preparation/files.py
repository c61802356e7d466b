"""Small file helpers of dataset preparation: atomic writes with ordinary permissions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so encoders pick the container from it),
    renamed onto ``path`` when the block succeeds and deleted when it fails; the result gets the
    permissions of a newly created file (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix if suffix is None else suffix}", dir=path.parent
    )
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of ``atomic_output``'s temporary files (left by a killed run)."""
    return name.startswith(".") and ".tmp" in name


__all__ = ["atomic_output", "is_temporary", "write_text_atomic"]

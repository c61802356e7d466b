"""File writing shared by every layer: whole files or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file; the
    file gets the permissions of a newly created one.

    The temporary file is created as an ordinary file (the kernel applies the umask; ``mkstemp``
    would give 0600), and that mode is restored after ``write``, which may replace the file
    (safetensors writes its files with 0600). The umask is never changed, not even for a moment.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # O_EXCL: never another's file
    ordinary_mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        write(str(tmp))
        os.chmod(tmp, ordinary_mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

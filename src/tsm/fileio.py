"""File writing shared by every layer: whole files or nothing, with ordinary permissions, and the
removal of the temporary files a killed writer left behind."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A temporary file (or folder) for ``NAME`` is ``.NAME.HOST-PID-RANDOM.tmp``: HOST hashes this
# machine's name, PID is the writing process. Earlier versions wrote ``.NAME.RANDOM.tmp`` (16 hex).
_TEMPORARY = re.compile(
    r"\.(?P<name>.+)\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}|[0-9a-f]{16})\.tmp"
)
# A writer of this package adds to its file (or folder) all along; one untouched for this long
# is abandoned even when its process cannot be checked (another machine, an older name, a reused pid).
STALE_SECONDS = 3600.0


def _this_host() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temporary_path(path: str | Path) -> Path:
    """Where to write ``path`` before renaming it into place: ``.NAME.HOST-PID-RANDOM.tmp`` beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.{_this_host()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _process_is_running(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_abandoned(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file or folder of :func:`temporary_path` whose writer is gone:
    its process (on this machine) has ended, or nothing was written to it for ``STALE_SECONDS``."""
    match = _TEMPORARY.fullmatch(path.name)
    if match is None:
        return False
    try:
        idle = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:  # renamed into place or removed meanwhile
        return False
    if idle > STALE_SECONDS:
        return True
    own_machine = match["host"] == _this_host()
    return own_machine and int(match["pid"]) != os.getpid() and not _process_is_running(int(match["pid"]))


def remove_abandoned_temporaries(folder: str | Path) -> list[Path]:
    """Remove, anywhere under ``folder``, the temporary files and folders that killed writers of this
    package left (:func:`is_abandoned`); those of live writers stay. Returns what was removed."""
    removed = []
    for directory, subdirs, files in os.walk(folder):
        for name in [*subdirs, *files]:
            path = Path(directory, name)
            if not is_abandoned(path):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                subdirs.remove(name)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file; the
    file gets the permissions of a newly created one.

    The temporary file is created as an ordinary file (the kernel applies the umask; ``mkstemp``
    would give 0600), and that mode is restored after ``write``, which may replace the file
    (safetensors writes its files with 0600). The umask is never changed, not even for a moment.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
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


def replace_folder(out: str | Path, build: Callable[[Path], T]) -> T:
    """Build the folder ``out`` as ``build(folder)`` in a temporary folder beside it, then swap it into
    place: readers see the old folder or the new one, never half of one, and a build that fails
    leaves the old one as it was. Returns what ``build`` returns."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = temporary_path(out)
    building.mkdir()  # an ordinary folder (0o777 less the umask), not mkdtemp's 0o700
    try:
        result = build(building)
        previous = temporary_path(out)
        if out.exists():
            os.replace(out, previous)
        try:
            os.replace(building, out)
        except OSError:
            if previous.exists():
                os.replace(previous, out)
            raise
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return result


def atomic_write_named(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_file)`` then rename onto ``path``, for writers that need the real file name
    (they pick the format from its suffix): ``tmp_file`` has ``path``'s name, in a temporary folder
    beside ``path`` that is removed afterwards. ``write`` may put other files in that folder."""
    path = Path(path)
    folder = temporary_path(path)
    folder.mkdir(parents=True)
    try:
        target = folder / path.name
        write(target)
        os.replace(target, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path

"""Download weight files into torch's hub cache, verified, atomically and once: the published
video checkpoints and the backbones' ImageNet weights alike.

Files go to ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, where
``torch.hub.load_state_dict_from_url`` puts them too). A download is streamed to a temporary file
in that folder and renamed only when it is complete, is not a web page and, where the file name
carries one, matches its sha256 prefix; a file lock makes concurrent fetches of one file wait for
each other instead of writing it twice. ``TSM_WEIGHTS_MIRROR=<base URL>`` (http(s):// or
file://) fetches every file by its file name from a mirror instead of its publisher. A file that is
already in the cache is used without any network access.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch.hub
from filelock import FileLock
from tqdm import tqdm

from tsm.fileio import atomic_write
from tsm.version import __version__

MIRROR_VARIABLE = "TSM_WEIGHTS_MIRROR"
_CHUNK = 1 << 20
_TIMEOUT_SECONDS = 60
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--")
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


class DownloadError(RuntimeError):
    """A weights file could not be fetched, or what was fetched is not the published file."""


def sha256_prefix_in_name(filename: str) -> str | None:
    """The sha256 prefix a file name carries as ``NAME-<hex>.EXT`` (torchvision's and
    OpenMMLab's convention, the one ``torch.hub`` checks), or None."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_cache_dir() -> Path:
    """torch's hub cache for checkpoint files: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_file(filename: str) -> Path:
    """Where the cache keeps ``filename`` (whether or not it is there yet)."""
    return checkpoint_cache_dir() / filename


def source_url(url: str, filename: str) -> str:
    """``url``, or ``filename`` under the mirror named by ``TSM_WEIGHTS_MIRROR`` when that is set."""
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    if not mirror:
        return url
    if urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise DownloadError(
            f"{MIRROR_VARIABLE}={mirror!r} is not an http://, https:// or file:// URL; for a local folder "
            f"use {MIRROR_VARIABLE}={Path(mirror).absolute().as_uri()}"
        )
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(filename)}"


def download(url: str, filename: str, *, sha256_prefix: str | None = None, progress: bool = True) -> Path:
    """The cached copy of ``filename``, downloaded from ``url`` (or the mirror) if not cached yet.

    ``sha256_prefix``: the leading hex digits of the file's sha256 (MMAction2 writes them in its
    file names); a download that does not match is deleted and is an error naming both digests.
    """
    target = cached_file(filename)
    if target.is_file():
        _refuse_web_page(_head(target), target)
        return target
    source = source_url(url, filename)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{filename}.lock"):
        if not target.is_file():  # another process may have fetched it while this one waited
            atomic_write(target, lambda tmp: _fetch(source, Path(tmp), target, sha256_prefix, progress))
    return target


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(512)


def _fetch(url: str, tmp: Path, target: Path, sha256_prefix: str | None, progress: bool) -> None:
    """Stream ``url`` into ``tmp``; raise unless it is complete, not HTML and has the right hash."""
    request = urllib.request.Request(url, headers={"User-Agent": f"tsm/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        reason = f"the server answered HTTP {error.code} {error.reason}"
        raise DownloadError(_unreachable(url, target, reason)) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(_unreachable(url, target, f"{type(reason).__name__}: {reason}")) from None
    digest = hashlib.sha256()
    size = 0
    length = response.headers.get("Content-Length")
    total = int(length) if length else None
    bar = tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, disable=not progress
    )
    with response, bar, open(tmp, "wb") as out:
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as error:
            reason = f"the connection broke after {size} of {total or '?'} bytes ({type(error).__name__})"
            raise DownloadError(_unreachable(url, target, reason)) from None
    if total is not None and size != total:
        raise DownloadError(_unreachable(url, target, f"the connection closed after {size} of {total} bytes"))
    _refuse_web_page(_head(tmp), target, url, response.headers.get("Content-Type", ""))
    if sha256_prefix is not None and not digest.hexdigest().startswith(sha256_prefix.lower()):
        raise DownloadError(
            f"{url} has sha256 {digest.hexdigest()}, but its published name says it starts with "
            f"{sha256_prefix}: the file is damaged or not the published one, and was deleted; try again, "
            f"or use another mirror ({MIRROR_VARIABLE})"
        )


def _refuse_web_page(head: bytes, target: Path, url: str | None = None, content_type: str = "") -> None:
    """Web servers answer a missing file with an HTML page; saved as a checkpoint it fails later."""
    if "text/html" not in content_type.lower() and not head.lstrip().lower().startswith(_HTML_STARTS):
        return
    if url is None:
        raise DownloadError(
            f"{target} is a web page (HTML), not a weights file: it was saved from a server's error or "
            "login page. Delete it and download the file again"
        )
    raise DownloadError(
        _unreachable(
            url,
            target,
            "the server sent a web page (HTML) instead of the file: it has moved or the "
            "host is down (the reference's server has moved several times)",
        )
    )


def _unreachable(url: str, target: Path, reason: str) -> str:
    """The error for a file that could not be fetched: what to do without that server."""
    return (
        f"cannot download {url}: {reason}. Without network access, put the file at {target}, or set "
        f"{MIRROR_VARIABLE} to a base URL (http(s):// or file://) that serves {target.name}"
    )

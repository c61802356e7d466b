"""ONNX Runtime Web for the web export: the pinned ``onnxruntime-web`` npm package, fetched with
the npm client (``npm pack``), cached, verified, or taken from a copy the user points at.

Only the files the page needs are copied: two ES module builds, each with its WebAssembly
binary (SIMD + threads) and loader. ``ort.wasm.min.mjs`` runs on the CPU (the plain build, the
fastest there); ``ort.webgpu.min.mjs`` runs on WebGPU (its build is 2-3x slower on the CPU, so
the module loads it only when the browser has a WebGPU adapter). A browser downloads one of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from filelock import FileLock

from tsm.fileio import atomic_write

ORT_WEB_PACKAGE = "onnxruntime-web"
ORT_WEB_VERSION = "1.31.1"
# npm's ``dist.integrity`` of the package tarball (sha512 of the .tgz, base64).
ORT_WEB_INTEGRITY = (
    "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
)
# The files the page loads, from the package's dist/ folder, with their sha256 (so that a copy
# given with --ort-web is checked as strictly as the tarball).
ORT_WEB_FILES: dict[str, str] = {
    "ort.wasm.min.mjs":
        "c21d9c326d453a4a61398270c804d5979e118540597cb0c07f7b3d64e6098234",
    "ort-wasm-simd-threaded.mjs":
        "30ed0b5cd1182ede931fea448afb567d4dc705ec957af09f108a2be5f770dac3",
    "ort-wasm-simd-threaded.wasm":
        "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d",
    "ort.webgpu.min.mjs":
        "329cd956772397a1aedd668e911195d39afefb182f6fc14aafa4f08ac8d8f379",
    "ort-wasm-simd-threaded.asyncify.mjs":
        "59cf781530e1a16df2a291d78798e3ec1152467edaec402d6f9599d85047c302",
    "ort-wasm-simd-threaded.asyncify.wasm":
        "ca319e9539cd0f1e291cf56074760121eaf39650f5dbf84b6e52c07f4b2944ec",
}
_NPM_TIMEOUT_SECONDS = 600
_SPEC = f"{ORT_WEB_PACKAGE}@{ORT_WEB_VERSION}"
_BOTH_WAYS = (
    f"install Node.js with npm (tsm then runs `npm pack {_SPEC}` once and caches it), or pass "
    f"--ort-web DIR with a copy of that package's dist/ folder (e.g. node_modules/{ORT_WEB_PACKAGE})"
)


class OrtWebUnavailable(RuntimeError):
    """ONNX Runtime Web could not be fetched, or what was found is not the pinned version."""


def cache_dir() -> Path:
    """Where the fetched package is kept: ``$XDG_CACHE_HOME/tsm/onnxruntime-web`` (default
    ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsm" / ORT_WEB_PACKAGE


def tarball_integrity(path: Path) -> str:
    """npm's integrity string of a file: ``sha512-`` and the base64 digest."""
    digest = hashlib.sha512()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _npm_pack(destination: Path) -> Path:
    """Run ``npm pack`` for the pinned version into ``destination``; return the tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise OrtWebUnavailable(f"--format web needs {_SPEC} and npm was not found: {_BOTH_WAYS}")
    command = [npm, "pack", _SPEC, "--json", "--pack-destination", str(destination)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_NPM_TIMEOUT_SECONDS, cwd=destination
        )
    except subprocess.TimeoutExpired:
        message = f"`npm pack {_SPEC}` took over {_NPM_TIMEOUT_SECONDS} s: {_BOTH_WAYS}"
        raise OrtWebUnavailable(message) from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise OrtWebUnavailable(f"`npm pack {_SPEC}` failed ({reason}): {_BOTH_WAYS}")
    filename = json.loads(result.stdout)[0]["filename"]
    return destination / filename


def fetch_tarball() -> Path:
    """The cached package tarball, fetched with npm when missing or not the published file."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ORT_WEB_PACKAGE}-{ORT_WEB_VERSION}.tgz"
    with FileLock(folder / f".{target.name}.lock"):
        if target.is_file() and tarball_integrity(target) == ORT_WEB_INTEGRITY:
            return target
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            fetched = _npm_pack(Path(scratch))
            integrity = tarball_integrity(fetched)
            if integrity != ORT_WEB_INTEGRITY:
                raise OrtWebUnavailable(
                    f"the {_SPEC} tarball npm returned fails its integrity check (got {integrity}, "
                    f"published {ORT_WEB_INTEGRITY}); check the npm registry or pass --ort-web DIR"
                )
            atomic_write(target, lambda tmp: shutil.copyfile(fetched, tmp))
    return target


def _extract(tarball: Path, destination: Path) -> None:
    with tarfile.open(tarball, "r:gz") as archive:
        for name in ORT_WEB_FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise OrtWebUnavailable(f"{tarball} has no dist/{name}: it is not {_SPEC}")
            with member, open(destination / name, "wb") as output:
                shutil.copyfileobj(member, output)


def _copy_checked(source: Path, destination: Path) -> None:
    """Copy the page's files from a user's copy of the package, each checked against its hash."""
    folder = source / "dist" if (source / "dist" / next(iter(ORT_WEB_FILES))).is_file() else source
    if not folder.is_dir():
        raise FileNotFoundError(f"--ort-web {source}: no such folder")
    missing = [name for name in ORT_WEB_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--ort-web {source}: missing {', '.join(missing)}; point it at the dist/ folder of {_SPEC}"
        )
    for name, sha256 in ORT_WEB_FILES.items():
        if _sha256(folder / name) != sha256:
            raise ValueError(
                f"--ort-web {source}: {name} is not the file of {_SPEC} (sha256 differs); "
                f"use that version (npm pack {_SPEC}) or leave out --ort-web"
            )
        shutil.copyfile(folder / name, destination / name)


def install_ort_web(destination: Path, copy_from: Path | None = None) -> None:
    """Put ONNX Runtime Web's page files into ``destination`` (created): from ``copy_from`` (a
    copy of the package or its dist/ folder, checked) or from the npm package (fetched, cached)."""
    destination.mkdir(parents=True, exist_ok=True)
    if copy_from is not None:
        _copy_checked(Path(copy_from), destination)
        return
    tarball = fetch_tarball()
    _extract(tarball, destination)
    for name, sha256 in ORT_WEB_FILES.items():  # the tarball was verified; this guards the table
        if _sha256(destination / name) != sha256:
            raise OrtWebUnavailable(f"dist/{name} of {tarball} does not match its pinned sha256")

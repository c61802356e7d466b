"""A stand-in for the Hugging Face Hub's file endpoints, on 127.0.0.1, for the tests of ``hf-hub:``
names (the Hub itself cannot be reached from the test machines; docs/hub.md describes this).

It answers what ``huggingface_hub.hf_hub_download`` asks, the way the Hub does (read from
huggingface_hub's ``file_download.py`` and ``utils/_http.py``):

* ``HEAD``/``GET {endpoint}/{org}/{name}/resolve/{revision}/{path}``: a small file answers 200 with
  its git blob sha1 as ``ETag``, ``Content-Length`` and the commit as ``X-Repo-Commit``; a large
  (LFS) file answers ``302`` to a second server (the CDN: on 127.0.0.1 too, but named ``localhost``,
  another host, so huggingface_hub does not send the token there) with ``X-Linked-Etag`` (its
  sha256), ``X-Linked-Size`` and ``X-Repo-Commit``;
* errors as the Hub sends them: ``404`` with ``X-Error-Code: RepoNotFound``, ``RevisionNotFound``
  or ``EntryNotFound`` (with ``X-Repo-Commit``), and ``401`` + ``RepoNotFound`` for a private repo
  without its token.

A revision is a branch name or a 40-hex commit id. Both servers are threads of the test, record
every request, and stop by themselves after ``max_requests`` requests or ``lifetime`` seconds.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import HfApi

LFS_SUFFIXES = (".safetensors", ".onnx", ".pth", ".tar", ".pt", ".bin", ".wasm")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """A model repo: its commits (commit id -> files) and branches (name -> commit id)."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # a private repo answers only requests with this token


@dataclass
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    authorization: str | None


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def log_message(self, *args) -> None:
        pass

    def _answer(self, send_body: bool) -> None:
        hub: StandInHub = self.server.hub  # type: ignore[attr-defined]
        hub.count(Request(self.server.role, self.command, self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        status, headers, body = hub.answer(self.server.role, self.path, self.headers)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class StandInHub:
    """The Hub's file endpoints (``url``) and a CDN for large files (``cdn_url``), on 127.0.0.1."""

    def __init__(self, max_requests: int = 400, lifetime: float = 300.0) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.max_requests = max_requests
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._servers = [self._server("hub"), self._server("cdn")]
        self.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        # Another host name for the same loopback address: the CDN is another host, as on the Hub
        # (huggingface_hub compares host names, and from version 2.5 on ports too).
        self.cdn_url = f"http://localhost:{self._servers[1].server_address[1]}"
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            for server in self._servers
        ]
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def _server(self, role: str) -> http.server.ThreadingHTTPServer:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.hub, server.role = self, role  # type: ignore[attr-defined]
        return server

    def start(self) -> StandInHub:
        for thread in self._threads:
            thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop both servers (also called by the servers themselves when their bounds are reached)."""
        self._timer.cancel()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def count(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) == self.max_requests:
                threading.Thread(target=self.stop, daemon=True).start()

    # --- repos ----------------------------------------------------------------------------------
    def add_commit(self, repo_id: str, folder: Path, branch: str = "main", token: str | None = None) -> str:
        """Serve the files of ``folder`` as a new commit of ``repo_id`` on ``branch``; returns its id."""
        paths = sorted(path for path in folder.rglob("*") if path.is_file())
        files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in paths}
        repo = self.repos.setdefault(repo_id, Repo(token=token))
        listing = "".join(f"{name} {git_blob_sha1(data)}\n" for name, data in files.items())
        commit = hashlib.sha1(f"{repo_id}\n{len(repo.commits)}\n{listing}".encode()).hexdigest()
        repo.commits[commit] = files
        repo.branches[branch] = commit
        for data in files.values():
            self._blobs[hashlib.sha256(data).hexdigest()] = data
        return commit

    def hub_requests(self, path_part: str = "") -> list[Request]:
        """The requests for repo files (huggingface_hub 2 also asks the endpoint for other things,
        such as ``/api/agent-harnesses`` for its user agent)."""
        return [
            r for r in self.requests if r.server == "hub" and "/resolve/" in r.path and path_part in r.path
        ]

    # --- answers --------------------------------------------------------------------------------
    def answer(self, role: str, path: str, headers) -> tuple[int, dict[str, str], bytes]:
        if role == "cdn":
            data = self._blobs.get(path.rsplit("/", 1)[-1])
            if data is None:
                return 404, {}, b"no such blob"
            return 200, {"Content-Type": "application/octet-stream", "ETag": '"cdn"'}, data
        parts = path.lstrip("/").split("/", 4)
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "not a resolve URL"}'
        repo_id = f"{parts[0]}/{parts[1]}"
        revision, filename = urllib.parse.unquote(parts[3]), urllib.parse.unquote(parts[4])
        return self._resolve(repo_id, revision, filename, headers.get("Authorization"))

    def _resolve(
        self, repo_id: str, revision: str, filename: str, authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        repo = self.repos.get(repo_id)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        if repo.token is not None and authorization != f"Bearer {repo.token}":
            return 401, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        commit = repo.branches.get(revision, revision if revision in repo.commits else None)
        if commit is None:
            message = f'{{"error": "Invalid rev id: {revision}"}}'.encode()
            return 404, {"X-Error-Code": "RevisionNotFound"}, message
        data = repo.commits[commit].get(filename)
        if data is None:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            return 404, headers, b'{"error": "Entry not found"}'
        headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}
        if filename.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            headers |= {
                "Location": f"{self.cdn_url}/blobs/{sha256}",
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
            }
            return 302, headers, b""
        return 200, {**headers, "Content-Type": "application/octet-stream"}, data


def use_stand_in(monkeypatch, hub: StandInHub | None, cache: Path, offline: bool = False) -> None:
    """Point huggingface_hub at ``hub`` and the cache ``cache``, as ``HF_ENDPOINT``, ``HF_HUB_CACHE``
    and ``HF_HUB_OFFLINE`` do when set before Python starts (huggingface_hub reads them on import);
    no token unless a test sets ``HF_TOKEN``; nothing of the user's own Hugging Face folder is used."""
    from huggingface_hub import constants

    endpoint = hub.url if hub is not None else "http://127.0.0.1:9"  # discard port: nothing answers
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache.parent / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cache.parent / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(cache.parent / "hf-home" / "stored_tokens"))
    set_offline(monkeypatch, offline)


def set_offline(monkeypatch, offline: bool) -> None:
    """``HF_HUB_OFFLINE=1`` (or unset), as huggingface_hub reads it on import."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


def cache_files(cache: Path) -> list[str]:
    """Every file in huggingface_hub's cache (blobs, snapshots, refs...), relative, sorted; no locks."""
    if not cache.is_dir():
        return []
    return sorted(
        str(path.relative_to(cache))
        for path in cache.rglob("*")
        if path.is_file() and ".locks" not in path.parts
    )


@pytest.fixture
def commits(monkeypatch) -> list[dict]:
    """huggingface_hub's repo creation and commit calls, recorded instead of sent: what each commit
    would upload (path in the repo -> bytes, read when the call is made)."""
    made: list[dict] = []

    def create_repo(self, repo_id, *, private=None, exist_ok=False, **_):
        made.append({"create_repo": repo_id, "private": private, "exist_ok": exist_ok})

    def create_commit(self, repo_id, operations, *, commit_message, revision=None, **_):
        files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        made.append({"repo_id": repo_id, "files": files, "message": commit_message, "revision": revision})
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/0123")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, *, branch, exist_ok=False, **_: None)
    return made

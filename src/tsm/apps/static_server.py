"""Serve a web export folder over HTTP with the headers multithreaded WebAssembly needs.

Browsers give a page ``SharedArrayBuffer`` (and so WASM threads) only when it is cross-origin
isolated: its responses carry ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``. ``python -m http.server`` sends neither (the page
then runs on one thread); this server sends both, and the right types for ``.mjs`` and ``.wasm``.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import ClassVar

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation headers (unless the server sets
    ``isolated = False``, to measure or show the single-threaded case), quietly."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
    }

    def end_headers(self) -> None:
        if getattr(self.server, "isolated", True):
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """No line per request (the caller prints the URL once)."""


def make_server(folder: str | Path, port: int = 8000, host: str = "127.0.0.1", isolated: bool = True):
    """A threading HTTP server for ``folder`` (port 0: any free port); not yet serving."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to serve")
    handler = functools.partial(IsolatedHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}): pick another --port") from None
    server.isolated = isolated
    server.daemon_threads = True
    return server


def serve_folder(folder: str | Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve ``folder`` cross-origin isolated until interrupted; print its URL first."""
    server = make_server(folder, port, host)
    url = f"http://{host}:{server.server_address[1]}/"
    print(f"serving {folder} at {url} (cross-origin isolated: WASM threads on); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

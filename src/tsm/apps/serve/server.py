"""Run an app on uvicorn: bind, print the URL, and on SIGINT/SIGTERM close every stream cleanly."""

from __future__ import annotations

import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI

from tsm.apps.serve.settings import MIB

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CAMERA_WARNING = (
    "warning: serving on {host} without TLS: browsers give web pages the camera only on localhost "
    "or https; pass --ssl-certfile and --ssl-keyfile, or open the page on this machine"
)


class _StreamClosingServer(uvicorn.Server):
    """uvicorn, which first closes every stream with 1001 and a reason, then shuts down as usual
    (uvicorn alone would cut open WebSockets with 1012)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.batcher = app.state.batcher

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.batcher.close_all(1001, "the server is shutting down")
        await super().shutdown(sockets)


def camera_warning(host: str, tls: bool) -> str | None:
    """The warning for an address where browsers will not give the page a camera, if any."""
    return None if host in LOCAL_HOSTS or tls else CAMERA_WARNING.format(host=host)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port): clients may connect as soon as
    the URL is printed (the kernel queues them until uvicorn runs)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror}; pick another --port") from None
    return sock


def page_url(sock: socket.socket, host: str, tls: bool, token: str | None) -> str:
    """The page's address for people: the bound port, the token in the query when there is one."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/" + (f"?token={token}" if token else "")


def run_server(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``app`` (from :func:`create_app`) until SIGINT or SIGTERM, then close every stream."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ValueError("TLS needs both --ssl-certfile and --ssl-keyfile")
    settings = app.state.settings
    warning = camera_warning(host, tls=ssl_certfile is not None)
    if warning:
        print(warning, file=sys.stderr)
    sock = bind(host, port)
    config = uvicorn.Config(
        app,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        # Frames up to twice the limit get an error reply; larger messages close the connection (1009).
        ws_max_size=max(16 * MIB, 2 * settings.max_frame_bytes),
    )
    server = _StreamClosingServer(config, app)
    print(f"tsm serve: {page_url(sock, host, ssl_certfile is not None, settings.token)}", flush=True)
    # uvicorn handles the signals while it runs and raises them again once it has shut down:
    # by then the work is done, so they end the run quietly.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()

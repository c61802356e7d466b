"""``tsm serve`` as a command: its URL, clean closes on SIGINT/SIGTERM, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import ExitStack

import pytest

pytest.importorskip("fastapi")
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import tsm
from serve_helpers import png, tiny_checkpoint
from stream_helpers import synthetic_video
from tsm.apps.serve.server import camera_warning
from tsm.cli.main import main
from tsm.inference import file_runtime


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("serve_cli") / "online.safetensors")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_close_every_stream_cleanly(checkpoint, tmp_path, sig):
    frame = tsm.read_frames(synthetic_video(tmp_path / "clip.mp4", "grow", 4), [0])[0]
    command = [sys.executable, "-m", "tsm.cli.main", "serve", "--checkpoint", str(checkpoint), "--port", "0"]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        lines = [server.stdout.readline() for _ in range(3)]  # the model, the engine, the URL
        assert lines[1].startswith(f"engine: {file_runtime('x.onnx').name}"), lines  # --engine auto, CPU
        url = re.search(r"tsm serve: http://(127\.0\.0\.1:\d+)/$", lines[2].strip())
        assert url, lines
        with ExitStack() as stack:
            clients = [stack.enter_context(connect(f"ws://{url[1]}/ws/stream")) for _ in range(2)]
            for client in clients:
                client.send(png(frame))
                assert json.loads(client.recv(timeout=30))["frame"] == 0
            server.send_signal(sig)
            for client in clients:
                with pytest.raises(ConnectionClosed) as closed:
                    client.recv(timeout=30)
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                    1001,
                    "the server is shutting down",
                )
        _, errors = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Traceback" not in errors, errors


def test_bad_arguments_are_one_line_errors(checkpoint, capsys):
    args = ["serve", "--checkpoint", str(checkpoint)]
    cases = [
        (["--max-streams", "0"], "max_streams must be a positive integer, got 0"),
        (["--ssl-certfile", "cert.pem"], "TLS needs both --ssl-certfile and --ssl-keyfile"),
        (["--token", ""], "the token must not be empty"),
    ]
    for extra, message in cases:
        assert main([*args, *extra]) == 1
        error = capsys.readouterr().err
        assert error.startswith("tsm serve: error: ") and message in error and error.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--engine", "tvm"])
    assert exit_.value.code == 2 and "invalid choice: 'tvm'" in capsys.readouterr().err


def test_other_hosts_get_the_camera_warning():
    assert camera_warning("127.0.0.1", tls=False) is None and camera_warning("localhost", tls=False) is None
    assert "browsers give web pages the camera only on localhost or https" in camera_warning(
        "0.0.0.0", tls=False
    )
    assert camera_warning("0.0.0.0", tls=True) is None

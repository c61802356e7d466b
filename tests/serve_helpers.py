"""Shared by the serve tests: a small online checkpoint, an in-process server on a free port,
frames as PNG, and a streaming engine that holds its first call until a test releases it."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from PIL import Image

import tsm
from stream_helpers import random_eval_model
from tsm.data import render_synthetic_clip, write_video

CLASSES = ["move_right", "move_left", "grow", "shrink"]
DATA_CONFIG = {"num_segments": 4, "resize": 40, "input_size": 32}


def tiny_checkpoint(path: Path, name: str = "tsm_online_resnet18") -> Path:
    """A 4-class checkpoint at 32 px whose logits depend on the frames (ResNet-18; MobileNetV2 at
    random is nearly constant), with class names and a test pipeline."""
    model = random_eval_model(name, num_segments=4, num_classes=len(CLASSES))
    return tsm.save_checkpoint(path, model, CLASSES, DATA_CONFIG)


def camera_clip(path: Path, size: int = 128, frames_per_class: int = 16) -> Path:
    """A real-looking clip (the four synthetic classes one after another) as a y4m file."""
    rng = np.random.default_rng(7)
    frames = [render_synthetic_clip(name, size, frames_per_class, rng) for name in CLASSES]
    return write_video(path, np.concatenate(frames), fps=15, codec="rawvideo")


def clip_fitted_checkpoint(path: Path, clip: Path) -> Path:
    """A checkpoint whose classifier is fitted (least squares) to the frames of ``camera_clip``:
    its label follows the clip's classes, as a trained model's would, so a page shows labels
    that change. Features are the online model's per-frame features on the whole clip."""
    tiny_checkpoint(path)
    frames = tsm.read_frames(clip, range(tsm.probe(clip).num_frames))
    transform = tsm.data.frame_transform(DATA_CONFIG)
    whole_clip, _ = tsm.load_checkpoint(path, num_segments=len(frames))
    with torch.no_grad():
        features = whole_clip.eval().base_model(torch.stack([transform(frame) for frame in frames]))
    inputs = torch.cat([features, torch.ones(len(frames), 1)], dim=1).double()
    labels = torch.arange(len(CLASSES)).repeat_interleave(len(frames) // len(CLASSES))
    targets = 6.0 * torch.nn.functional.one_hot(labels, len(CLASSES)).double()  # peaked softmax
    solution = torch.linalg.lstsq(inputs, targets, driver="gelsd").solution.float()
    model, _ = tsm.load_checkpoint(path)
    model.new_fc.weight.data.copy_(solution[:-1].T)
    model.new_fc.bias.data.copy_(solution[-1])
    return tsm.save_checkpoint(path, model.eval(), CLASSES, DATA_CONFIG)


def png(frame: torch.Tensor) -> bytes:
    """A uint8 (3, H, W) frame as PNG (lossless: the server decodes exactly these pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(frame.permute(1, 2, 0).numpy()).save(buffer, "PNG")
    return buffer.getvalue()


@contextmanager
def running_server(app: Any, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port in a thread; yields ``host:port``.
    The server stops when the block ends (and after ``timeout`` s of shutdown at most)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def http(address: str, path: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    """GET (or POST ``data``, or ``method``) ``path``; the status and the body, errors included."""
    method = method or ("POST" if data is not None else "GET")
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(
    address: str, path: str, data: bytes | None = None, method: str | None = None
) -> tuple[int, Any]:
    status, body = http(address, path, data, method)
    return status, json.loads(body)


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, as curl -F field=@filename sends it."""
    boundary = "tsm-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(address: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://{address}{path}", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def metric(address: str, name: str) -> float:
    """One sample of the /metrics text, e.g. ``tsm_serve_dropped_frames_total``."""
    _, body = http(address, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class GatedEngine:
    """A streaming engine (around another) that waits in its first call until ``release`` is set,
    so that a test can line up frames from several streams; records the batch size of every call."""

    def __init__(self, engine: tsm.inference.StreamingEngine) -> None:
        self.engine = engine
        for name in tsm.inference.StreamingEngine.__annotations__:  # what the engine contract holds
            setattr(self, name, getattr(engine, name))
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def cache_shapes(self, frame_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return self.engine.cache_shapes(frame_shape)

    def __call__(self, frames: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.entered.set()
        if not self.release.wait(20):
            raise RuntimeError("the test never released the engine")
        self.batches.append(frames.shape[0])
        return self.engine(frames, *caches)

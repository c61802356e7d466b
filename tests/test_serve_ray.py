"""The same app as a Ray Serve deployment with two replicas, on a local Ray instance (slow)."""

from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import ExitStack

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("ray.serve")
from websockets.sync.client import connect

import tsm
from serve_helpers import http, http_json, png, tiny_checkpoint
from stream_helpers import synthetic_video
from tsm.apps.serve.ray_deployment import ray_application
from tsm.inference import StreamingRecognizer

pytestmark = pytest.mark.slow


@pytest.fixture()
def ray_serve(monkeypatch):
    """A local Ray instance (2 CPUs) and Serve's proxy on 127.0.0.1 and a free port; shut down after."""
    import ray
    from ray import serve

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))  # tsm and the tests
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield serve, f"127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_serve_streams_each_pinned_to_its_replica(ray_serve, tmp_path):
    serve, address = ray_serve
    checkpoint = tiny_checkpoint(tmp_path / "online.safetensors")
    application = ray_application(str(checkpoint), replicas=2, ray_actor_options={"num_cpus": 0.5})
    serve.run(application, name="tsm", route_prefix="/")
    status = serve.status().applications["tsm"].deployments["tsm_serve"]
    assert status.replica_states == {"RUNNING": 2}
    assert http_json(address, "/healthz") == (200, {"status": "ok"})
    assert http_json(address, "/info")[1]["classes"] == ["move_right", "move_left", "grow", "shrink"]
    assert b'src="app.js"' in http(address, "/")[1]
    # Streams interleaved through Ray's proxy: each keeps its own caches from start to end, so its
    # logits are those of the model on that stream alone.
    videos = [synthetic_video(tmp_path / f"{name}.mp4", name, 6) for name in ("grow", "move_left", "shrink")]
    clips = [tsm.read_frames(video, range(6)) for video in videos]
    streamed = [[] for _ in clips]
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://{address}/ws/stream?logits=1")) for _ in clips]
        for t in range(6):
            for client, clip in zip(clients, clips, strict=True):
                client.send(png(clip[t]))
            for client, got in zip(clients, streamed, strict=True):
                got.append(json.loads(client.recv(timeout=60))["logits"])
    model, info = tsm.load_checkpoint(checkpoint)
    transform = tsm.data.frame_transform(info.data_config)
    for clip, got in zip(clips, streamed, strict=True):
        alone = StreamingRecognizer(model)
        expected = torch.cat([alone.step(transform(frame)[None]) for frame in clip])
        torch.testing.assert_close(torch.tensor(got), expected, rtol=0, atol=1e-5)

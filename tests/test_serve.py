"""tsm serve with Python clients: exactness of the batched engine, drops, windows, faults, endpoints."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack

import pytest
import torch

pytest.importorskip("fastapi")
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import tsm
from serve_helpers import (
    CLASSES,
    DATA_CONFIG,
    GatedEngine,
    http,
    http_json,
    metric,
    multipart,
    png,
    post,
    running_server,
    tiny_checkpoint,
    wait_until,
)
from stream_helpers import random_eval_model, synthetic_video
from tsm.apps.serve import ServeSettings, create_app
from tsm.inference import Predictor, StreamingRecognizer, file_runtime, stream_predictions, streaming_engine
from tsm.models import StreamingStep

AUTO_ONNX = file_runtime("model.onnx").name  # what engine="auto" runs .onnx files (and checkpoints) on


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An online checkpoint and two decoded videos (12 and 10 frames, uint8 (F, 3, 48, 48))."""
    root = tmp_path_factory.mktemp("serve")
    checkpoint = tiny_checkpoint(root / "online.safetensors")
    videos = [
        synthetic_video(root / "grow.mp4", "grow", 12),
        synthetic_video(root / "left.mp4", "move_left", 10),
    ]
    frames = [tsm.read_frames(video, range(tsm.probe(video).num_frames)) for video in videos]
    return checkpoint, videos, frames


def receive(ws) -> dict:
    return json.loads(ws.recv(timeout=20))


def send_frame(ws, frame: torch.Tensor) -> dict:
    """Send one frame and wait for its reply."""
    ws.send(png(frame))
    return receive(ws)


def closed_with(ws) -> tuple[int, str]:
    """Wait until the server closes ``ws``; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=20)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_streamed_logits_equal_offline_and_tsm_stream_while_others_come_and_go(files):
    """Item 5: frames of a video sent one by one give the offline uni-directional model's per-frame
    logits (and tsm stream's) within 1e-5, while other streams connect, send and leave."""
    checkpoint, videos, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, engine="torch", settings=ServeSettings(max_streams=4))
    url_of = lambda address, query="": f"ws://{address}/ws/stream?logits=1{query}"  # noqa: E731
    other = frames[1]
    with running_server(app) as address, connect(url_of(address)) as stream, ExitStack() as stack:
        streamed, guests = [], []
        for t, frame in enumerate(frames[0]):
            if t % 3 == 0:  # a guest joins and sends two frames without waiting
                guests.append(stack.enter_context(connect(url_of(address))))
                guests[-1].send(png(other[t % len(other)]))
                guests[-1].send(png(other[(t + 1) % len(other)]))
            if t % 4 == 2:  # the oldest guest leaves without reading its replies
                guests.pop(0).close()
            if t == 7:  # one guest resets its stream
                guests[-1].send('{"reset": true}')
            stream.send(png(frame))
            for guest in guests:
                guest.send(png(other[t % len(other)]))
            reply = receive(stream)
            assert reply["frame"] == t and reply["fresh"] and reply["dropped"] == 0
            streamed.append(reply["logits"])
    streamed = torch.tensor(streamed)
    transform = tsm.data.frame_transform(info.data_config)
    offline, _ = tsm.load_checkpoint(checkpoint, num_segments=len(frames[0]))
    offline.eval()
    with torch.no_grad():
        expected = offline.forward_frames(torch.stack([transform(f) for f in frames[0]])[None])[0]
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5)
    streamer = StreamingRecognizer(model, engine="torch")
    events = list(stream_predictions(videos[0], streamer, CLASSES, info.data_config))
    torch.testing.assert_close(
        streamed.softmax(1), torch.stack([e.probabilities for e in events]), rtol=0, atol=1e-5
    )
    # The caches matter: frame 1 alone gives other logits.
    with torch.no_grad():
        alone = offline.forward_frames(transform(frames[0][1])[None].expand(12, -1, -1, -1)[None])[0, 0]
    assert not torch.allclose(streamed[1], alone, atol=1e-3)


@pytest.mark.parametrize(("engine_name", "tolerance"), [("torch", 1e-5), ("onnxruntime", 1e-4)])
def test_waiting_frames_of_all_streams_go_in_one_call_and_stay_exact(files, engine_name, tolerance):
    """Three streams wait while the engine is busy; the next tick stacks them into one call, and each
    stream's logits equal the same model's on that stream alone (PyTorch's; ONNX Runtime's engine
    within the engines' tolerance)."""
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    size = info.data_config.test_crop_size
    engine = GatedEngine(streaming_engine(model, engine_name, frame_size=(size, size)))
    app = create_app(model, info, engine=engine, settings=ServeSettings(max_streams=3))
    batcher = app.state.batcher
    inputs = [frames[0][:3], frames[1][:3], frames[0][5:8]]
    with running_server(app) as address, ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://{address}/ws/stream?logits=1")) for _ in inputs]
        clients[0].send(png(inputs[0][0]))
        assert engine.entered.wait(10)
        for client, clip in zip(clients[1:], inputs[1:], strict=True):
            client.send(png(clip[0]))
        wait_until(lambda: sum(s.waiting is not None for s in batcher.streams) == 2, what="2 waiting")
        engine.release.set()
        logits = [[receive(clients[0])["logits"]], [], []]
        for t in range(3):
            for index, client in enumerate(clients):
                if t or index:
                    logits[index].append(receive(client)["logits"])
                if t < 2:
                    client.send(png(inputs[index][t + 1]))
    assert engine.batches[:2] == [1, 2]
    transform = tsm.data.frame_transform(info.data_config)
    alone = StreamingRecognizer(model, engine="torch")
    for clip, streamed in zip(inputs, logits, strict=True):
        alone.reset()
        expected = torch.cat([alone.step(transform(frame)[None]) for frame in clip])
        torch.testing.assert_close(torch.tensor(streamed), expected, rtol=0, atol=tolerance)


def test_max_batch_takes_the_longest_waiting_streams_first(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    engine = GatedEngine(streaming_engine(model, "torch"))
    app = create_app(model, info, engine=engine, settings=ServeSettings(max_batch=2))
    with running_server(app) as address, ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://{address}/ws/stream")) for _ in range(4)]
        clients[0].send(png(frames[0][0]))
        assert engine.entered.wait(10)
        for count, client in enumerate(clients[1:], start=1):
            client.send(png(frames[0][count]))
            wait_until(lambda n=count: sum(s.waiting is not None for s in app.state.batcher.streams) == n)
        engine.release.set()
        batches = [receive(client)["batch"] for client in clients]
    assert engine.batches == [1, 2, 1] and batches == [1, 2, 2, 1]


def test_frames_are_decoded_while_the_engine_runs(files):
    """Decoding is not a step of the tick: a frame that arrives during an engine call is decoded
    during it, and is ready (the model input) when the call returns."""
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    engine = GatedEngine(streaming_engine(model, "torch"))
    app = create_app(model, info, engine=engine)
    batcher = app.state.batcher
    with running_server(app) as address, ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://{address}/ws/stream")) for _ in range(2)]
        clients[0].send(png(frames[0][0]))
        assert engine.entered.wait(10)
        clients[1].send(png(frames[1][0]))
        wait_until(lambda: any(s.ready for s in batcher.streams), what="a decoded frame")
        assert not engine.release.is_set() and metric(address, "tsm_serve_decode_seconds_count") == 2
        waiting = next(s.waiting for s in batcher.streams if s.ready)
        expected = tsm.data.frame_transform(info.data_config)(frames[1][0])
        assert torch.equal(waiting.decoded.result().model_input, expected)
        engine.release.set()
        assert [receive(client)["frame"] for client in clients] == [0, 0]


def test_a_stream_faster_than_the_model_keeps_its_newest_frame(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    engine = GatedEngine(streaming_engine(model, "torch"))
    app = create_app(model, info, engine=engine)
    with running_server(app) as address, connect(f"ws://{address}/ws/stream") as client:
        client.send(png(frames[0][0]))
        assert engine.entered.wait(10)
        for frame in frames[0][1:5]:
            client.send(png(frame))
        wait_until(lambda: next(iter(app.state.batcher.streams)).received == 5, what="5 frames received")
        engine.release.set()
        replies = [receive(client), receive(client)]
        assert [r["frame"] for r in replies] == [0, 4] and replies[1]["dropped"] == 3
        assert metric(address, "tsm_serve_dropped_frames_total") == 3
        assert metric(address, "tsm_serve_frames_total") == 2


def test_offline_models_run_on_sliding_windows_every_k_frames(files, tmp_path):
    """A bi-directional model: clips of the last T=4 frames on frames 3, 5, 7; in between, the
    latest result repeated (fresh false); nothing before the first window is full."""
    _, _, frames = files
    model = random_eval_model("tsm_resnet18", num_segments=4, num_classes=len(CLASSES))
    path = tsm.save_checkpoint(tmp_path / "offline.safetensors", model, CLASSES, DATA_CONFIG)
    model, info = tsm.load_checkpoint(path)
    model.eval()  # the reference below; the server runs an exported copy (auto: onnxruntime)
    app = create_app(model, info, settings=ServeSettings(every=2))
    clips = [frames[0][:8], frames[1][:8]]
    with running_server(app) as address, ExitStack() as stack:
        described = http_json(address, "/info")[1]
        assert (
            described["kind"] == "clip"
            and described["every"] == 2
            and "NEXT frame" in described["offline_reason"]
        )
        clients = [stack.enter_context(connect(f"ws://{address}/ws/stream?logits=1")) for _ in clips]
        replies = [[], []]
        for t in range(8):
            for client, clip in zip(clients, clips, strict=True):
                client.send(png(clip[t]))
            for client, got in zip(clients, replies, strict=True):
                got.append(receive(client))
    transform = tsm.data.frame_transform(info.data_config)
    for clip, got in zip(clips, replies, strict=True):
        assert [r["fresh"] for r in got] == [False, False, False, True, False, True, False, True]
        assert [r["label"] for r in got[:3]] == [None] * 3 and got[4]["logits"] == got[3]["logits"]
        windows = torch.stack(
            [torch.stack([transform(f) for f in clip[end - 3 : end + 1]]) for end in (3, 5, 7)]
        )
        with torch.no_grad():
            expected = model(windows)
        torch.testing.assert_close(
            torch.tensor([got[t]["logits"] for t in (3, 5, 7)]), expected, rtol=0, atol=1e-5
        )


def test_bad_messages_get_an_error_and_the_stream_goes_on(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    settings = ServeSettings(max_frame_bytes=20_000, max_frame_pixels=64 * 64)
    app = create_app(model, info, settings=settings)
    big = torch.zeros(3, 65, 64, dtype=torch.uint8)
    noise = torch.randint(
        0, 256, (3, 100, 100), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with running_server(app) as address, connect(f"ws://{address}/ws/stream") as client:
        assert send_frame(client, frames[0][0])["frame"] == 0
        cases = [
            (b"\x89PNG\r\n\x1a\n but not really", "not a JPEG or PNG image"),
            (png(big), "frame of 64x65 pixels is over the limit of 4096 pixels"),
            (png(noise), "bytes is over the limit of 20000 bytes"),
            (png(frames[0][1])[:200], "cannot be decoded"),
            ("hello", "text messages must be the control message"),
            ('{"reset": 1}', "text messages must be the control message"),
            ("[1, 2]", "text messages must be the control message"),
        ]
        for message, error in cases:
            client.send(message)
            reply = receive(client)
            assert error in reply["error"], reply
        reply = send_frame(client, frames[0][2])  # frames 1-4 were the bad binary ones
        assert reply["frame"] == 5 and reply["label"] in CLASSES
        client.send('{"reset": true}')
        assert receive(client) == {"reset": True}
        assert send_frame(client, frames[0][0])["frame"] == 0
        assert metric(address, "tsm_serve_bad_messages_total") == len(cases)


def test_full_server_and_clients_that_vanish_mid_frame(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, settings=ServeSettings(max_streams=2))
    with running_server(app) as address, ExitStack() as stack:
        first, second = (stack.enter_context(connect(f"ws://{address}/ws/stream")) for _ in range(2))
        with connect(f"ws://{address}/ws/stream") as third:
            code, reason = closed_with(third)
        assert code == 1013 and "server full: all 2 streams are taken" in reason
        # A client that disconnects in the middle of a frame frees its slot.
        header = bytes([0x82, 0xFE]) + (60_000).to_bytes(2, "big") + bytes(4)  # masked, 60 kB announced
        second.socket.sendall(header + bytes(1000))
        second.socket.close()
        wait_until(lambda: metric(address, "tsm_serve_open_streams") == 1, what="the slot to be freed")
        with connect(f"ws://{address}/ws/stream") as fourth:
            assert send_frame(fourth, frames[0][0])["frame"] == 0
            assert send_frame(first, frames[0][0])["frame"] == 0
        first.close()
        wait_until(lambda: metric(address, "tsm_serve_open_streams") == 0, what="all slots free")


def test_idle_streams_are_closed_and_their_slot_freed(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, settings=ServeSettings(max_streams=1, idle_timeout=0.5))
    with running_server(app) as address:
        with connect(f"ws://{address}/ws/stream") as client:
            assert send_frame(client, frames[0][0])["frame"] == 0
            code, reason = closed_with(client)
        assert code == 1000 and "no message for 0.5 s" in reason
        wait_until(lambda: metric(address, "tsm_serve_open_streams") == 0, what="the slot to be freed")


def test_token_is_required_when_set(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, settings=ServeSettings(token="s3cret"))
    with running_server(app) as address:
        for path in ("/info", "/metrics", "/info?token=wrong"):
            status, body = http_json(address, path)
            assert status == 401 and "token" in body["detail"]
        assert http(address, "/info?token=s3cret")[0] == 200
        assert http(address, "/healthz")[0] == 200 and http(address, "/")[0] == 200  # no secrets there
        with connect(f"ws://{address}/ws/stream") as client:
            code, reason = closed_with(client)
        assert code == 1008 and "token" in reason
        with connect(f"ws://{address}/ws/stream?token=s3cret") as client:
            assert send_frame(client, frames[0][0])["frame"] == 0


def test_http_endpoints(files):
    checkpoint, _, frames = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, settings=ServeSettings(smooth_window=6, agree=3), name="online")
    with running_server(app) as address:
        assert http_json(address, "/healthz") == (200, {"status": "ok"})
        status, described = http_json(address, "/info")
        reason = described.pop("engine_reason")
        assert status == 200 and described == {
            "model": "online", "classes": CLASSES, "num_segments": 4, "engine": AUTO_ONNX,
            "kind": "stream", "precision": "fp32", "input_size": 32, "resize": 40, "max_streams": 8,
            "batching": {"policy": "measured", "per_frame_ms": {}},
        }  # fmt: skip
        assert reason.startswith(f"{AUTO_ONNX} (") and ", fp32, " in reason
        assert http_json(address, "/page-config.json")[1] == {
            "backend": "server",
            "smoothWindow": 6,
            "agree": 3,
        }
        status, page = http(address, "/")
        assert status == 200 and b'src="app.js"' in page
        for asset in ("/app.js", "/server-backend.js", "/style.css"):
            assert http(address, asset)[0] == 200
        with connect(f"ws://{address}/ws/stream") as client:
            reply = send_frame(client, frames[0][0])
            assert metric(address, "tsm_serve_open_streams") == 1
        assert "logits" not in reply and reply["label"] == reply["top"][0][0]
        assert len(reply["top"]) == 4 and sum(p for _, p in reply["top"]) == pytest.approx(1, abs=1e-6)
        assert metric(address, "tsm_serve_frames_total") == 1
        assert metric(address, "tsm_serve_step_seconds_count") == 1
        for stage in ("decode", "queue", "frame"):  # where the frame's time went
            assert metric(address, f"tsm_serve_{stage}_seconds_count") == 1
        assert list(http_json(address, "/info")[1]["batching"]["per_frame_ms"]) == ["1"]
        assert metric(address, "tsm_serve_batch_size_count") == 1


def test_predict_uploads_answer_as_tsm_predict_json(files, monkeypatch, tmp_path):
    checkpoint, videos, _ = files
    model, info = tsm.load_checkpoint(checkpoint)
    app = create_app(model, info, settings=ServeSettings(max_upload_bytes=50_000))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where uploads go, to see them removed
    expected = Predictor.from_checkpoint(checkpoint).predict_video(videos[0]).to_dict()
    with running_server(app) as address:
        status, record = http_json(address, "/predict?name=grow.mp4", videos[0].read_bytes())
        assert status == 200 and record["path"] == "grow.mp4" and record["views"] == expected["views"]
        assert [t["class"] for t in record["top"]] == [t["class"] for t in expected["top"]]
        assert [t["score"] for t in record["top"]] == pytest.approx(
            [t["score"] for t in expected["top"]], abs=1e-6
        )
        status, record = http_json(address, "/predict", b"not a video" * 10)
        assert status == 422 and record["path"] == "upload" and str(tmp_path) not in record["error"]
        status, record = http_json(address, "/predict", bytes(50_001))
        assert status == 413 and "over the limit of 50000 bytes" in record["error"]
    assert not list(tmp_path.iterdir())


def test_an_exported_step_serves_streams_and_uploads_raw_or_multipart(files, tmp_path):
    """tsm serve on a tsm export --streaming file: frames give the file's own logits (those of
    StreamingRecognizer on it), and POST /predict runs on the same file, whether the video comes as
    the body or as a form's file field; a form without a file is a one-line 400."""
    checkpoint, videos, frames = files
    step_file = tmp_path / "step.onnx"
    model, info = tsm.load_checkpoint(checkpoint)
    tsm.export_model(
        model, step_file, streaming=True, frame_size=32, class_names=CLASSES, data_config=info.data_config
    )
    app = create_app(step_file, settings=ServeSettings(max_streams=2))
    served = app.state.models.current
    assert served.name == "step.onnx" and served.engine.name == AUTO_ONNX and served.kind == "stream"
    streamer = StreamingRecognizer(step_file)
    transform = tsm.data.frame_transform(served.data_config)
    video = videos[0].read_bytes()
    with running_server(app) as address, connect(f"ws://{address}/ws/stream?logits=1") as client:
        assert http_json(address, "/info")[1]["engine_reason"].endswith("step.onnx")
        for frame in frames[0][:4]:
            client.send(png(frame))
            expected = streamer.step(transform(frame)[None])[0]
            torch.testing.assert_close(torch.tensor(receive(client)["logits"]), expected, rtol=0, atol=1e-6)
        raw = post(address, "/predict?name=grow.mp4", video, "application/octet-stream")
        form = post(address, "/predict?name=grow.mp4", *multipart("file", "grow.mp4", video))
        missing = post(address, "/predict", *multipart("file", "grow.mp4", b"")[:1], "multipart/form-data")
        only_a_field = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--\r\n"
        no_file = post(address, "/predict", only_a_field, "multipart/form-data; boundary=b")
    expected = Predictor.from_checkpoint(step_file).predict_video(videos[0]).to_dict()
    assert raw[0] == form[0] == 200 and raw[1] == form[1]
    assert [t["class"] for t in raw[1]["top"]] == [t["class"] for t in expected["top"]]
    scores = [t["score"] for t in expected["top"]]
    assert [t["score"] for t in raw[1]["top"]] == pytest.approx(scores, abs=1e-6)
    assert missing[0] == 400 and "multipart" in missing[1]["error"]
    assert no_file[0] == 400 and no_file[1]["error"].startswith("the form has no file field")


def test_engine_choices_and_mismatches_are_clear_errors(files):
    checkpoint, _, _ = files
    model, info = tsm.load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="unknown engine 'tvm'"):
        create_app(model, info, engine="tvm")
    offline = random_eval_model("tsm_resnet18", num_segments=4, num_classes=4)
    with pytest.raises(ValueError, match=r"the model cannot stream: .*NEXT frame"):
        create_app(offline, engine=StreamingStep(model))
    with pytest.raises(ValueError, match="max_streams must be a positive integer"):
        ServeSettings(max_streams=0)


def test_the_decoding_thread_runs_torch_single_threaded_beside_the_engine(files):
    """A second OpenMP team on the decoding thread made the torch engine's calls 2-3x as long."""
    checkpoint, _, _ = files
    model, info = tsm.load_checkpoint(checkpoint)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the suite runs single-threaded: a new thread would show 1 anyway
    try:
        batcher = create_app(model, info, engine="torch").state.batcher
        assert batcher._decoder.submit(torch.get_num_threads).result(timeout=10) == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

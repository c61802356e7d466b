"""tsm serve --teach: the /teach/* endpoints, the live switch to a taught model (streams keep their
connections and get the new model's exact logits), reopening a project, and who may teach."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
import torch
from fastapi import HTTPException
from starlette.requests import Request
from websockets.sync.client import connect

import tsm
from serve_helpers import http, http_json, multipart, png, post, running_server, wait_until
from teach_helpers import BASE_FILE, files_under, synthetic_video, teachnet_registered
from tsm.apps.serve import ServeSettings, create_app
from tsm.apps.serve.teach_routes import LOCAL_ONLY, _access
from tsm.cli.main import main
from tsm.inference import StreamingRecognizer

CLASSES = ["move_down", "move_up"]


@pytest.fixture(scope="module")
def teachnet():
    with teachnet_registered():
        yield


@pytest.fixture(scope="module")
def server(teachnet, tmp_path_factory):
    """A teach-mode server on the small online base, and its project folder."""
    folder = tmp_path_factory.mktemp("teach_serve")
    settings = ServeSettings(max_streams=2, max_upload_bytes=1 << 20)
    app = create_app(BASE_FILE, teach=folder / "project", settings=settings)
    with running_server(app) as address:
        yield address, folder / "project", folder


def frames_of(video: Path) -> torch.Tensor:
    return tsm.read_frames(video, range(tsm.probe(video).num_frames))


def test_clips_go_in_as_a_body_or_a_form_are_listed_with_thumbnails_and_deleted(server):
    address, project, folder = server
    rng = np.random.default_rng(0)
    video = synthetic_video(folder / "videos", "grow", rng).read_bytes()
    status, raw = http_json(address, "/teach/clips?label=wave", video)
    assert status == 201 and raw["label"] == "wave" and raw["frames"] > 1 and "path" not in raw
    status, form = post(address, "/teach/clips?label=wave", *multipart("file", "clip.mp4", video))
    assert status == 201 and form["id"] != raw["id"]
    listing = http_json(address, "/teach/clips")[1]
    assert listing["classes"] == {"wave": 2}
    assert {clip["id"] for clip in listing["clips"]} == {raw["id"], form["id"]}
    assert listing["limits"]["max_clip_seconds"] == 10
    status, thumbnail = http(address, f"/{raw['thumbnail']}")
    assert status == 200 and thumbnail[:2] == b"\xff\xd8"
    assert http_json(address, f"/teach/clips/{raw['id']}", method="DELETE") == (200, {"deleted": raw["id"]})
    assert http_json(address, f"/teach/clips/{form['id']}", method="DELETE")[0] == 200
    status, missing = http_json(address, "/teach/clips/nothere", method="DELETE")
    assert status == 404 and "GET /teach/clips lists them" in missing["error"]
    assert http_json(address, "/teach/clips")[1]["classes"] == {}
    assert not (project / "clips" / "wave").exists()


def test_bad_uploads_get_one_line_errors_and_leave_nothing_in_the_project(server):
    address, project, folder = server
    before = files_under(project)
    video = synthetic_video(folder / "videos", "grow", np.random.default_rng(1)).read_bytes()
    status, body = http_json(address, "/teach/clips?label=wave", b"\x00not a video" * 50)
    assert status == 422 and body["error"].startswith("cannot use the video: not a readable video")
    assert "\n" not in body["error"]
    status, body = http_json(address, "/teach/clips?label=../wave", video)
    assert status == 400 and "bad class name" in body["error"]
    assert http_json(address, "/teach/clips", video)[0] == 400  # no label
    status, body = http_json(address, "/teach/clips?label=wave", bytes(2 << 20))
    assert status == 413 and "limit" in body["error"]
    status, body = http_json(address, "/teach/train", b"")
    assert status == 400 and body == {"error": "record clips of at least two classes first"}
    assert files_under(project) == before


def test_a_run_switches_the_live_model_and_streams_get_its_exact_logits(server):
    address, project, folder = server
    rng = np.random.default_rng(2)
    for name in CLASSES:
        for _ in range(3):
            video = synthetic_video(folder / "videos", name, rng)
            assert http_json(address, f"/teach/clips?label={name}", video.read_bytes())[0] == 201
    frames = frames_of(synthetic_video(folder / "videos", "move_down", rng))
    with connect(f"ws://{address}/ws/stream?logits=1") as stream:
        stream.send(png(frames[0]))
        assert len(json.loads(stream.recv(timeout=30))["logits"]) == 4  # the base's classes
        status, started = http_json(address, "/teach/train", b"")
        assert status == 202 and started["run"] == "run-001"
        status, busy = http_json(address, "/teach/train", b"")
        assert status == 409 and "going on" in busy["error"]
        wait_until(lambda: http_json(address, "/teach/status")[1]["state"] != "running", 120, "the run")
        status = http_json(address, "/teach/status")[1]
        assert status["state"] == "done" and status["served"] == "run-001" and status["classes"] == CLASSES
        assert status["clips_done"] == status["clips_total"] == 6 and status["held_out_clips"] == 2
        # The open stream goes on: its next reply says what it is served now, then the new model's.
        stream.send(png(frames[1]))
        switched = json.loads(stream.recv(timeout=30))["switched"]
        assert switched["classes"] == CLASSES and switched["model"] == "run-001"
        replies = [json.loads(stream.recv(timeout=30))]
        for frame in frames[2:5]:
            stream.send(png(frame))
            replies.append(json.loads(stream.recv(timeout=30)))
    info = http_json(address, "/info")[1]
    assert info["classes"] == CLASSES and info["model"] == "run-001" and info["engine"] == "onnxruntime"
    # From a fresh start on the saved checkpoint, frame by frame: the same logits.
    model, checkpoint_info = tsm.load_checkpoint(project / "models" / "run-001.safetensors")
    streamer = StreamingRecognizer(model, engine="torch")
    transform = tsm.data.frame_transform(checkpoint_info.data_config)
    expected = torch.stack([streamer.step(transform(frame)[None])[0] for frame in frames[1:5]])
    torch.testing.assert_close(torch.tensor([r["logits"] for r in replies]), expected, rtol=0, atol=1e-4)
    # Uploads run on it too.
    upload = synthetic_video(folder / "videos", "move_up", rng).read_bytes()
    status, record = http_json(address, "/predict", upload)
    assert status == 200 and {entry["class"] for entry in record["top"]} == set(CLASSES)


def test_the_taught_model_downloads_as_a_checkpoint_an_onnx_step_and_a_web_folder(server):
    address, project, _ = server
    wait_until(lambda: (project / "models" / "run-001.safetensors").exists(), 120, "a taught model")
    status, body = http(address, "/teach/download/model")
    assert status == 200 and body == (project / "models" / "run-001.safetensors").read_bytes()
    status, body = http(address, "/teach/download/onnx")
    assert status == 200 and body[:2] != b"{\""
    step = project / "downloads" / "run-001" / "run-001-step.onnx"
    metadata = tsm.read_export_metadata(step)
    assert metadata["tsm_export"] == "stream" and metadata["class_names"] == CLASSES
    status, body = http(address, "/teach/download/web")
    assert status == 200, body[:300]
    with zipfile.ZipFile(io.BytesIO(body)) as folder:
        assert {"index.html", "tsm.js", "page-config.json", "model/model.onnx"} <= set(folder.namelist())
        assert json.loads(folder.read("model/classes.json")) == CLASSES
    assert http_json(address, "/teach/download/exe")[0] == 404
    status, body = http_json(address, "/teach/download/model?run=../../base")
    assert status == 404 and "not a run's name" in body["error"]


def test_a_reopened_project_serves_its_last_taught_model(server):
    _, project, _ = server
    wait_until(lambda: (project / "models" / "run-001.safetensors").exists(), 120, "a taught model")
    app = create_app(BASE_FILE, teach=project)
    assert app.state.models.current.class_names == CLASSES and app.state.models.current.name == "run-001"
    with running_server(app) as address:
        assert http_json(address, "/teach/status")[1] == {"state": "idle", "served": "run-001"}
        assert http_json(address, "/info")[1]["classes"] == CLASSES


def _request(host: str, query: bytes = b"") -> Request:
    return Request({"type": "http", "client": (host, 50000), "query_string": query, "headers": []})


def test_teaching_answers_this_machine_only_or_a_client_with_the_token():
    local_only = _access(ServeSettings())
    local_only(_request("127.0.0.1"))
    with pytest.raises(HTTPException) as refused:
        local_only(_request("192.168.1.20"))
    assert refused.value.status_code == 403 and refused.value.detail == LOCAL_ONLY
    with_token = _access(ServeSettings(token="s3cret"))
    with_token(_request("192.168.1.20", b"token=s3cret"))
    with pytest.raises(HTTPException) as refused:
        with_token(_request("127.0.0.1", b"token=wrong"))
    assert refused.value.status_code == 401


def test_the_cli_refuses_teaching_on_the_network_without_a_token(tmp_path, capsys):
    arguments = ["serve", "--teach", str(tmp_path / "project"), "--checkpoint", str(BASE_FILE)]
    assert main([*arguments, "--host", "0.0.0.0"]) != 0
    assert "needs --token" in capsys.readouterr().err
    assert main(["serve", "--teach", str(tmp_path / "new")]) != 0
    assert "records no base model yet: give one with --checkpoint" in capsys.readouterr().err

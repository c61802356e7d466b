"""Published models by name: registry, verified download into torch's hub cache, mirror, class names.

A loopback HTTP server (a thread of the test) serves checkpoints built in each publisher's layout
(tests/foreign_models.py) under the published file names, through ``TSM_WEIGHTS_MIRROR``; loading
by name must give the logits of the independent re-creation. TORCH_HOME points into tmp_path, so
the real cache is never touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.server
import io
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

import tsm
from foreign_models import (
    MMRecognizer2D,
    ReferenceMobileNetV2,
    ReferenceTSN,
    assert_same_logits,
    data_parallel_state,
    online_demo_stream,
    randomize,
)
from stream_helpers import synthetic_video
from tsm.checkpoint import loader, registry
from tsm.cli.main import main
from tsm.download import MIRROR_VARIABLE, DownloadError, cached_file

SIZE = 32  # pixels of the test clips
# The real class-name lists (issue 12's tsm.data.dataset_class_names), before the tests stand in for them.
REAL_CLASS_NAMES = getattr(tsm.data, "dataset_class_names", None)
CLASS_COUNTS = {"kinetics400": 400, "sthv1": 174, "sthv2": 174, "jester": 27}
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>moved</body></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` by name; ``server.behaviour[name]`` makes a file misbehave."""

    def do_GET(self) -> None:
        name = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
        self.server.requests.append(name)
        behaviour = self.server.behaviour.get(name)
        if behaviour == "html":  # what a moved or broken host answers, with status 200
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(HTML_PAGE)))
            self.end_headers()
            self.wfile.write(HTML_PAGE)
            return
        if name not in self.server.files:
            self.send_error(404)
            return
        data = self.server.files[name]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if behaviour == "truncate":  # the connection closes half way
            self.wfile.write(data[: len(data) // 2])
            return
        pieces = 8 if behaviour == "slow" else 1
        step = -(-len(data) // pieces)
        for start in range(0, len(data), step):
            self.wfile.write(data[start : start + step])
            self.wfile.flush()
            if behaviour == "slow":
                time.sleep(0.05)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    """A loopback file server; ``server.base`` is its URL, ``server.files`` what it serves."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.behaviour, httpd.requests = {}, {}, []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/weights"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path, no mirror, and stand-in class-name lists."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)

    def class_names(dataset: str, order: str = "reference") -> list[str]:
        return [f"{dataset}:{order}:{index}" for index in range(CLASS_COUNTS[dataset])]

    # tsm.data.dataset_class_names reads the real lists; these tests check which list is asked for.
    monkeypatch.setattr(loader, "dataset_class_names", class_names)
    return tmp_path / "torch-home" / "hub" / "checkpoints"


def _serve(server, monkeypatch, name: str, data: bytes, behaviour: str | None = None) -> str:
    """Serve ``data`` under the published file name of ``name`` and point the mirror at the server."""
    filename = tsm.pretrained_info(name).filename
    server.files[filename] = data
    if behaviour:
        server.behaviour[filename] = behaviour
    monkeypatch.setenv(MIRROR_VARIABLE, server.base)
    return filename


def _saved(checkpoint: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _register(monkeypatch, info: tsm.PretrainedInfo) -> None:
    """Replace one registry entry (same name and file name) for the duration of a test."""
    monkeypatch.setitem(registry._TAGS, info.name, info)


def _with_sha256_of(monkeypatch, name: str, data: bytes) -> None:
    """The test file is not the published one: give its entry the test file's sha256 prefix."""
    info = tsm.pretrained_info(name)
    _register(monkeypatch, dataclasses.replace(info, sha256_prefix=hashlib.sha256(data).hexdigest()[:8]))


def _assert_same_logits(model: tsm.Recognizer, foreign: torch.nn.Module, clips: torch.Tensor) -> None:
    """Equal logits, in float64, on outputs that depend on the input (see foreign_models)."""
    assert_same_logits(model, foreign, clips, torch.float64)


def _calibrated(foreign: torch.nn.Module, frames: int = 8) -> torch.nn.Module:
    """Random weights with BatchNorm statistics of real inputs, so outputs depend on the input."""
    return randomize(foreign, calibrate_on=torch.randn(2, frames, 3, SIZE, SIZE))


def _left_in_cache(cache: Path) -> list[str]:
    """Files in the cache besides lock files: partial downloads would show here."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) if cache.is_dir() else []


# --- the registry ---------------------------------------------------------------------------------
def test_registry_entries_are_consistent():
    names = tsm.list_pretrained()
    assert len(names) == len(set(names)) == len(registry.PUBLISHED) >= 26
    architectures = tsm.list_models()
    for name in names:
        info = tsm.pretrained_info(name)
        assert info.name == name and info.dataset in CLASS_COUNTS
        assert info.num_classes == CLASS_COUNTS[info.dataset]
        # ARCHITECTURE.PUBLISHER_DATASET...: the architecture is create_model's, with the published settings
        assert re.fullmatch(rf"{info.architecture}\.{info.source}_{info.dataset}[a-z0-9_]*", name)
        assert info.architecture in architectures
        published_settings = {"num_classes", "num_segments", "backbone_segments"}
        assert {
            key
            for key, value in info.model_config.to_dict().items()
            if value != getattr(tsm.checkpoint.model_config(info.architecture), key)
        } <= published_settings
        assert tsm.pretrained_info(info.legacy_name) is info  # the names of tsm 0.1 still resolve
        assert info.url.startswith("https://") and info.url.endswith(info.filename)
        assert f"{info.num_segments}f" in name or name.startswith("tsm_online_")
        if info.source == "mmaction2":  # <config>_<YYYYMMDD>-<sha256 prefix>.pth
            assert info.filename == f"{info.url.split('/')[-2]}_{info.filename.split('_')[-1]}"
            assert info.sha256_prefix == re.search(r"_\d{8}-([0-9a-f]{8})\.pth$", info.filename).group(1)
            assert info.view_average == "softmax" and info.class_order == "mmaction2"
        else:
            assert info.sha256_prefix is None and info.url.startswith("https://hanlab18.mit.edu/")
        assert info.data_config.num_segments == info.num_segments
        assert info.data_config.flip == (info.dataset == "kinetics400" or info.source == "mmaction2")
        swaps_labels = info.source == "mmaction2" and info.dataset == "sthv2"  # left/right classes
        assert (info.data_config.flip_label_map is not None) == swaps_labels
        assert info.buildable == (not info.reason)
        if info.buildable:  # the network can be built (on the meta device: no memory, no init)
            with torch.device("meta"):
                assert tsm.create_model(name).config == info.model_config
        assert (info.top1 is None) == (name == "tsm_online_mobilenet_v2.reference_jester")


def test_registry_figures_and_protocols_of_some_entries():
    """Spot checks against the publishers' tables (reference README, MMAction2 README)."""
    r50 = tsm.pretrained_info("tsm_resnet50.reference_kinetics400_8f")
    assert (r50.top1, r50.num_segments, r50.filename) == (
        71.2,
        8,
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
    )
    assert r50.protocol == "8 frames x 1 uniform clip x 1 centre crop of 224 px"
    dense = tsm.pretrained_info("tsm_resnet50.reference_kinetics400_8f_dense")
    assert dense.top1 == 74.1 and dense.protocol == "8 frames x 10 dense clips x 3 crops of 256 px"
    mm = tsm.pretrained_info("tsm_resnet50.mmaction2_sthv2_8f")
    assert mm.top1 == 62.72 and mm.sha256_prefix == "be0fc26e"
    assert mm.protocol == "8 frames x 2 uniform clips x 3 crops of 256 px"
    assert tsm.pretrained_info("tsm_resnet50.mmaction2_kinetics400_8f").protocol.endswith(
        "x 10 crops of 224 px"
    )
    assert tsm.pretrained_info("tsn_resnet50.reference_kinetics400_8f").model_config.shift is False


@pytest.mark.skipif(REAL_CLASS_NAMES is None, reason="tsm.data.dataset_class_names is not in this tree yet")
def test_the_real_class_lists_fit_the_registry():
    for name in tsm.list_pretrained():
        info = tsm.pretrained_info(name)
        assert len(REAL_CLASS_NAMES(info.dataset, order=info.class_order)) == info.num_classes, name
    assert REAL_CLASS_NAMES("kinetics400", order="reference")[0] == "abseiling"
    # The online demo prints its gestures in sorted order; MMAction2 keeps the labels file's order.
    assert REAL_CLASS_NAMES("jester", order="reference")[0] == "Doing other things"
    assert REAL_CLASS_NAMES("jester", order="mmaction2")[0] == "Swiping Left"


def test_list_pretrained_patterns():
    r101 = ["tsm_resnet101.mmaction2_sthv2_8f", "tsm_resnet101.reference_sthv1_8f"]
    assert tsm.list_pretrained("resnet101") == [*r101, "tsm_resnet101.reference_sthv2_8f"]
    assert tsm.list_pretrained("*.mmaction2_*16f") == [
        "tsm_mobileone_s4.mmaction2_kinetics400_16f",
        "tsm_resnet50.mmaction2_kinetics400_16f",
        "tsm_resnet50.mmaction2_sthv2_16f",
    ]
    assert tsm.list_pretrained("no-such-model") == []


def test_unknown_and_unbuildable_names_are_clear_errors(server, monkeypatch):
    monkeypatch.setenv(MIRROR_VARIABLE, server.base)
    with pytest.raises(
        ValueError, match=r"unknown pretrained model 'tsm_resnet50.reference_kinetic400'.*mean"
    ):
        tsm.load_pretrained("tsm_resnet50.reference_kinetic400")
    with pytest.raises(
        FileNotFoundError, match=r"does not exist and is not a published model.*'tsm_resnet50.ref"
    ):
        tsm.load_checkpoint("tsm_resnet50.reference_kinetics400_8")
    with pytest.raises(ValueError, match="optical-flow"):
        tsm.load_checkpoint("tsm_resnet50.reference_kinetics400_flow_8f")
    assert server.requests == []  # nothing was fetched for them


# --- loading by name through the mirror: the publishers' logits, class names, protocol -------------
def test_reference_model_by_name_gives_the_reference_logits(server, monkeypatch, cache, capsys):
    ref = _calibrated(ReferenceTSN(400, 8, "mobilenetv2"))
    filename = _serve(
        server,
        monkeypatch,
        "tsm_mobilenet_v2.reference_kinetics400_8f_dense",
        _saved(
            {"epoch": 100, "arch": "mobilenetv2", "state_dict": data_parallel_state(ref), "best_prec1": 69.5}
        ),
    )
    model, info = tsm.load_pretrained("tsm_mobilenet_v2.reference_kinetics400_8f_dense")
    _assert_same_logits(model, ref, torch.randn(2, 8, 3, SIZE, SIZE))
    assert server.requests == [filename] and (cache / filename).is_file()
    assert "B/s" in capsys.readouterr().err  # the progress bar shows the transfer rate
    assert info.format == "reference" and model.config.backbone == "mobilenet_v2"
    assert info.class_names[:2] == ["kinetics400:reference:0", "kinetics400:reference:1"]
    config = info.data_config
    assert (config.sampling, config.test_views, config.full_res) == ("dense", "three", True)
    assert config.test_clips == 10 and config.num_segments == 8
    assert (
        info.sources["num_segments"]
        == "published settings of tsm_mobilenet_v2.reference_kinetics400_8f_dense"
    )
    umask = os.umask(0o022)
    os.umask(umask)
    assert (cache / filename).stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


def test_non_local_models_by_name_give_the_publishers_logits(server, monkeypatch, cache):
    """The reference's non-local TSM and MMAction2's gaussian one, served under their published
    names: the mode comes from the file, the registry cross-checks it."""
    ref = _calibrated(ReferenceTSN(400, 8, "resnet50", non_local=True))
    state = {"epoch": 100, "arch": "resnet50", "state_dict": data_parallel_state(ref)}
    _serve(server, monkeypatch, "tsm_resnet50_nl.reference_kinetics400_8f_dense", _saved(state))
    model, info = tsm.load_pretrained("tsm_resnet50_nl.reference_kinetics400_8f_dense", progress=False)
    _assert_same_logits(model, ref, torch.randn(2, 8, 3, SIZE, SIZE))
    assert model.config.non_local == "embedded_gaussian" and info.data_config.sampling == "dense"
    name = "tsm_resnet50_nl_gaussian.mmaction2_kinetics400_8f"
    cfg = {"sub_sample": True, "use_scale": False, "norm_cfg": {"type": "BN3d"}, "mode": "gaussian"}
    mm = _calibrated(MMRecognizer2D("r50", 400, 8, non_local_cfg=cfg))
    data = _saved({"state_dict": mm.state_dict()})
    _serve(server, monkeypatch, name, data)
    _with_sha256_of(monkeypatch, name, data)
    model, info = tsm.load_pretrained(name, progress=False)
    _assert_same_logits(model, mm, torch.randn(2, 8, 3, SIZE, SIZE))
    assert model.config.non_local == "gaussian" and info.class_names[0] == "kinetics400:mmaction2:0"


def test_mobileone_model_by_name_keeps_its_eight_frame_backbone(server, monkeypatch, cache):
    name = "tsm_mobileone_s4.mmaction2_kinetics400_16f"
    mm = _calibrated(MMRecognizer2D("mobileone-s4", 400, 16, backbone_segments=8), frames=16)
    data = _saved({"state_dict": mm.state_dict()})
    _serve(server, monkeypatch, name, data)
    _with_sha256_of(monkeypatch, name, data)
    model, info = tsm.load_pretrained(name, progress=False)
    _assert_same_logits(model, mm, torch.randn(2, 16, 3, SIZE, SIZE))
    assert model.config.backbone_segments == 8 and model.config.place == "block"
    assert info.sources["backbone_segments"] == f"published settings of {name}"


def test_mmaction2_model_by_name_gives_the_mmaction2_logits(server, monkeypatch):
    name = "tsm_mobilenet_v2.mmaction2_kinetics400_8f"
    mm = _calibrated(MMRecognizer2D("mobilenetv2", 400, 8))
    cfg = "backbone=dict(type='MobileNetV2TSM', shift_div=8, num_segments=8, is_shift=True)"
    data = _saved({"state_dict": mm.state_dict(), "meta": {"cfg": cfg}})
    _serve(server, monkeypatch, name, data)
    _with_sha256_of(monkeypatch, name, data)
    model, info = tsm.load_checkpoint(name)  # a name works wherever a checkpoint path does
    _assert_same_logits(model, mm, torch.randn(2, 8, 3, SIZE, SIZE))
    assert info.format == "mmaction2" and info.class_names[0] == "kinetics400:mmaction2:0"
    assert info.data_config.test_views == "three" and info.data_config.full_res is True


def test_online_demo_by_name_streams_like_the_demo(server, monkeypatch):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    _serve(server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", _saved(demo.state_dict()))
    model, info = tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)
    frames = torch.randn(8, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = online_demo_stream(demo, frames)
        actual = model.eval().forward_frames(frames.unsqueeze(0))[0]
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * expected.abs().max().item())
    assert model.is_online and len(info.class_names) == 27 and info.data_config.flip is False


def test_a_file_mirror_and_a_wrong_file_under_a_published_name(tmp_path, monkeypatch):
    """file:// mirrors work; weights that are not the published network are refused, not used."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    other = _calibrated(ReferenceTSN(400, 8, "resnet18"))  # served as the ResNet-50
    name = "tsm_resnet50.reference_kinetics400_8f"
    torch.save({"state_dict": data_parallel_state(other)}, mirror / tsm.pretrained_info(name).filename)
    monkeypatch.setenv(MIRROR_VARIABLE, mirror.as_uri())
    with pytest.raises(
        ValueError, match=r"is not the published tsm_resnet50\.reference_kinetics400_8f.*'resnet18'"
    ):
        tsm.load_pretrained(name, progress=False)
    # Told to be a ResNet-18, the same file loads: the registry's other settings still apply.
    model, info = tsm.load_pretrained(name, progress=False, backbone="resnet18")
    _assert_same_logits(model, other, torch.randn(2, 8, 3, SIZE, SIZE))
    assert len(info.class_names) == 400


def test_cli_predict_by_name_prints_the_dataset_class_names(server, monkeypatch, tmp_path, capsys):
    ref = _calibrated(ReferenceTSN(400, 8, "resnet18"))
    name = "tsm_resnet50.reference_kinetics400_8f"
    info = tsm.pretrained_info(name)
    small = info.data_config.replace(resize=40, input_size=SIZE)  # a small-image protocol, for speed
    _register(
        monkeypatch,
        dataclasses.replace(
            info, model_config=info.model_config.replace(backbone="resnet18"), data_config=small
        ),
    )
    _serve(server, monkeypatch, name, _saved({"state_dict": data_parallel_state(ref)}))
    video = synthetic_video(tmp_path / "my_video.mp4", "grow", 12)
    assert main(["predict", str(video), "--checkpoint", name, "--topk", "3"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(rf"{re.escape(str(video))}: (kinetics400:reference:\d+ 0\.\d{{3}}(, )?){{3}}\n", out)


# --- download failures ----------------------------------------------------------------------------
def test_transfer_that_stops_half_way_leaves_nothing_in_the_cache(server, monkeypatch, cache):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    data = _saved(demo.state_dict())
    _serve(server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", data, behaviour="truncate")
    with pytest.raises(DownloadError, match=rf"(closed|broke) after {len(data) // 2} of {len(data)} bytes"):
        tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)
    assert _left_in_cache(cache) == []
    server.behaviour.clear()  # the next try succeeds
    assert (
        tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)[0].num_classes == 27
    )


def test_wrong_hash_is_deleted_and_names_both_digests(server, monkeypatch, cache):
    name = "tsm_mobilenet_v2.mmaction2_kinetics400_8f"  # its published file starts with sha256 401127fd
    data = _saved({"state_dict": _calibrated(MMRecognizer2D("mobilenetv2", 400, 8)).state_dict()})
    _serve(server, monkeypatch, name, data)
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(DownloadError, match=rf"has sha256 {digest}.*starts with 401127fd.*was deleted"):
        tsm.load_pretrained(name, progress=False)
    assert _left_in_cache(cache) == []


def test_web_page_instead_of_a_checkpoint_is_explained(server, monkeypatch, cache):
    name = "tsm_resnet50.reference_sthv2_8f"
    filename = _serve(server, monkeypatch, name, b"", behaviour="html")
    with pytest.raises(DownloadError, match=r"sent a web page \(HTML\).*moved.*TSM_WEIGHTS_MIRROR"):
        tsm.load_pretrained(name, progress=False)
    assert _left_in_cache(cache) == []
    cache.mkdir(parents=True, exist_ok=True)  # the same page saved by hand into the cache
    (cache / filename).write_bytes(HTML_PAGE)
    with pytest.raises(DownloadError, match=r"is a web page \(HTML\), not a weights file.*Delete it"):
        tsm.load_pretrained(name, progress=False)


def test_refused_connection_says_where_to_put_the_file(monkeypatch, cache):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{port}/models/")
    name = "tsm_resnet50.reference_kinetics400_8f"
    filename = tsm.pretrained_info(name).filename
    with pytest.raises(DownloadError) as error:
        tsm.load_pretrained(name)
    message = str(error.value)
    assert f"cannot download http://127.0.0.1:{port}/models/{filename}" in message
    assert "ConnectionRefusedError" in message
    assert f"put the file at {cache / filename}" in message and MIRROR_VARIABLE in message
    assert cached_file(filename) == cache / filename


def test_http_error_and_bad_mirror_variable(server, monkeypatch):
    monkeypatch.setenv(MIRROR_VARIABLE, server.base)  # the server does not have the file: 404
    with pytest.raises(DownloadError, match=r"HTTP 404.*put the file at"):
        tsm.load_pretrained("tsm_resnet50.reference_sthv1_8f")
    monkeypatch.setenv(MIRROR_VARIABLE, "/srv/weights")
    with pytest.raises(DownloadError, match=r"not an http://, https:// or file:// URL.*file:///srv/weights"):
        tsm.load_pretrained("tsm_resnet50.reference_sthv1_8f")


# --- the cache ------------------------------------------------------------------------------------
def test_cached_file_is_used_without_any_network(server, monkeypatch, cache):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    filename = _serve(
        server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", _saved(demo.state_dict())
    )
    first, _ = tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used for a cached file")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv(MIRROR_VARIABLE, "http://127.0.0.1:9/unreachable")
    again, _ = tsm.load_checkpoint("tsm_online_mobilenet_v2.reference_jester")
    assert server.requests == [filename]
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert tsm.checkpoint.is_cached("tsm_online_mobilenet_v2.reference_jester")


def test_file_put_in_the_cache_by_hand_is_used(monkeypatch, cache):
    """What the offline error tells the user to do: no server, no mirror."""
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used"))
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    cache.mkdir(parents=True)
    torch.save(demo.state_dict(), cache / "mobilenetv2_jester_online.pth.tar")
    model, info = tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester")
    assert model.is_online and info.class_names[0] == "jester:reference:0"


def test_concurrent_loads_download_once(server, monkeypatch, cache):
    """Two loads racing on the lock: one downloads, the other waits and reads the cached file."""
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    data = _saved(demo.state_dict())
    filename = _serve(server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", data, behaviour="slow")
    results, errors = [], []

    def load() -> None:
        try:
            results.append(
                loader.download_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)
            )
        except Exception as error:  # reported below: a thread cannot raise into the test
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [cache / filename] * 3
    assert server.requests == [filename]  # downloaded once
    assert (cache / filename).read_bytes() == data and _left_in_cache(cache) == [filename]


def test_full_size_resnet50_by_name_through_the_cli(server, monkeypatch, tmp_path, capsys):
    """tsm predict VIDEO --checkpoint tsm_resnet50.reference_kinetics400_8f."""
    ref = _calibrated(ReferenceTSN(400, 8, "resnet50"))
    _serve(
        server,
        monkeypatch,
        "tsm_resnet50.reference_kinetics400_8f",
        _saved({"epoch": 50, "arch": "resnet50", "state_dict": data_parallel_state(ref), "best_prec1": 71.2}),
    )
    video = synthetic_video(tmp_path / "my_video.mp4", "grow", 16)
    assert (
        main(["predict", str(video), "--checkpoint", "tsm_resnet50.reference_kinetics400_8f", "--json"]) == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["views"] == 1
    assert all(top["class"].startswith("kinetics400:reference:") for top in record["top"])
    model, _ = tsm.load_checkpoint("tsm_resnet50.reference_kinetics400_8f")  # from the cache now
    _assert_same_logits(model, ref, torch.randn(2, 8, 3, SIZE, SIZE))


# --- the command line and the docs ----------------------------------------------------------------
def test_cli_models_lists_the_registry_and_what_is_cached(server, monkeypatch, capsys):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    _serve(server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", _saved(demo.state_dict()))
    assert main(["models", "--pretrained", "jester"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["name", "dataset", "frames", "views", "top-1", "cached"]
    assert row.split()[0] == "tsm_online_mobilenet_v2.reference_jester" and row.split()[-1] == "no"
    tsm.load_pretrained("tsm_online_mobilenet_v2.reference_jester", progress=False)
    assert main(["models", "--pretrained", "jester"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "yes"
    assert main(["models", "--pretrained", "*flow*"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and "not buildable: optical-flow input" in rows[0]
    assert main(["models", "--pretrained", "no-such"]) == 1
    assert main(["models", "online_mobilenet"]) == 0
    assert capsys.readouterr().out.startswith("tsm_online_mobilenet_v2  (backbone='mobilenet_v2'")


def test_cli_download_fetches_and_converts(server, monkeypatch, cache, tmp_path, capsys):
    name = "tsm_mobilenet_v2.mmaction2_kinetics400_8f"
    mm = _calibrated(MMRecognizer2D("mobilenetv2", 400, 8))
    data = _saved({"state_dict": mm.state_dict()})
    filename = _serve(server, monkeypatch, name, data)
    _with_sha256_of(monkeypatch, name, data)
    assert main(["download", name, "--quiet"]) == 0
    assert capsys.readouterr().out == f"{name}: {cache / filename}\n"
    out = tmp_path / "mobilenet.safetensors"
    assert main(["download", name, "--out", str(out), "--size", str(SIZE)]) == 0
    report = capsys.readouterr().out
    assert "class names: 400 (kinetics400:mmaction2:0" in report and "difference| = 0\n" in report
    assert server.requests == [filename]  # the second command used the cache
    model, info = tsm.load_checkpoint(out)  # one self-describing file: weights, names, protocol
    _assert_same_logits(model, mm, torch.randn(2, 8, 3, SIZE, SIZE))
    assert info.format == "tsm" and info.class_names[0] == "kinetics400:mmaction2:0"
    assert info.data_config.test_views == "three" and info.data_config.full_res is True


def test_training_options_take_a_name(server, monkeypatch):
    """--model.init.finetune_from NAME (fine-tuning on another label set) and
    --model.init.checkpoint NAME, never --ckpt_path NAME (a Lightning training state)."""
    from tsm.cli.ckpt_path import is_model_file

    name = "tsm_mobilenet_v2.reference_kinetics400_8f_dense"
    ref = _calibrated(ReferenceTSN(400, 8, "mobilenetv2"))
    _serve(server, monkeypatch, name, _saved({"state_dict": data_parallel_state(ref)}))
    assert is_model_file(name) and is_model_file("model.pth") and not is_model_file("last.ckpt")
    fresh = tsm.create_model("tsm_mobilenet_v2", num_classes=5, num_segments=8)
    head = fresh.new_fc.weight.clone()
    tsm.init_from_checkpoint(fresh, name)  # the 400-class head is not copied into a 5-class model
    published_model, _ = tsm.load_pretrained(name, progress=False)
    expected = published_model.state_dict()
    assert torch.equal(fresh.new_fc.weight, head)
    backbone = {key: value for key, value in fresh.state_dict().items() if not key.startswith("new_fc")}
    assert all(torch.equal(value, expected[key]) for key, value in backbone.items())


def test_model_zoo_doc_is_the_registry(capsys):
    doc = (Path(__file__).parents[1] / "docs" / "model-zoo.md").read_text(encoding="utf-8")
    section = doc.split("<!-- registry table: start -->\n")[1].split("<!-- registry table: end -->")[0]
    assert main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out == section, "docs/model-zoo.md is stale: paste `tsm models --markdown`"
    assert all(f"`{name}`" in section for name in tsm.list_pretrained())


def test_cli_stream_and_export_take_a_name(server, monkeypatch, tmp_path, capsys):
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    _serve(server, monkeypatch, "tsm_online_mobilenet_v2.reference_jester", _saved(demo.state_dict()))
    video = synthetic_video(tmp_path / "gesture.mp4", "move_left", 6)
    assert main(["stream", str(video), "--checkpoint", "tsm_online_mobilenet_v2.reference_jester"]) == 0
    assert "jester:reference:" in capsys.readouterr().out  # labels are the dataset's class names
    out = tmp_path / "step.pt"
    options = ["--out", str(out), "--format", "torchscript", "--streaming", "--size", str(SIZE)]
    code = main(["export", "tsm_online_mobilenet_v2.reference_jester", *options])
    assert code == 0 and tsm.read_export_metadata(out)["class_names"][0] == "jester:reference:0"


def test_tsm_test_by_name_takes_the_published_protocol(capsys):
    """`tsm test --model.init.checkpoint NAME`: frames, test views and view averaging of the publisher."""
    name = "tsm_resnet50.mmaction2_sthv2_8f"
    with pytest.raises(SystemExit) as printed_and_done:  # LightningCLI exits after --print-config
        main(["test", "--data.test", "sthv2/val.txt", "--model.init.checkpoint", name, "--print-config"])
    assert printed_and_done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init"]["checkpoint"] == name and printed["model"]["view_average"] == "softmax"
    data = printed["data"]
    assert data["num_segments"] == 8
    expected = tsm.pretrained_info(name).data_config.to_dict()
    assert {key: data["data_config"][key] for key in expected} == expected
    assert data["data_config"]["twice_sample"] and data["data_config"]["test_views"] == "three"


def test_allow_pickle_is_honoured_for_published_names(server, monkeypatch):
    """A published file that needs full unpickling is refused by name as by path, unless allowed."""
    ref = _calibrated(ReferenceTSN(400, 8, "resnet18"))
    name = "tsm_resnet50.reference_kinetics400_8f"
    info = tsm.pretrained_info(name)
    resnet18 = info.model_config.replace(backbone="resnet18")
    _register(monkeypatch, dataclasses.replace(info, model_config=resnet18))
    checkpoint = {"state_dict": data_parallel_state(ref), "args": argparse.Namespace(lr=0.02)}
    _serve(server, monkeypatch, name, _saved(checkpoint))
    with pytest.raises(tsm.UnsafeCheckpointError, match=r"argparse\.Namespace.*allow_pickle=True"):
        tsm.load_checkpoint(name, progress=False)
    with pytest.raises(tsm.UnsafeCheckpointError, match=r"argparse\.Namespace"):
        tsm.create_model(name, pretrained=True, progress=False)
    model, _ = tsm.load_pretrained(name, allow_pickle=True, progress=False)
    _assert_same_logits(model, ref, torch.randn(2, 8, 3, SIZE, SIZE))


def test_create_model_builds_a_published_network_and_loads_its_weights(server, monkeypatch):
    name = "tsm_online_mobilenet_v2.reference_jester"
    blank = tsm.create_model(name)  # the network alone: no download
    assert blank.config == tsm.pretrained_info(name).model_config and server.requests == []
    assert (blank.num_classes, blank.is_online) == (27, True)
    demo = randomize(ReferenceMobileNetV2(n_class=27))
    _serve(server, monkeypatch, name, _saved(demo.state_dict()))
    loaded = tsm.create_model(name, pretrained=True, progress=False)
    legacy, _ = tsm.load_pretrained("tsm_online_mobilenetv2_jester", progress=False)  # tsm 0.1's name
    assert all(torch.equal(value, legacy.state_dict()[key]) for key, value in loaded.state_dict().items())
    with pytest.raises(ValueError, match=r"pretrained=True needs a published name.*tsm_resnet50\.mmaction2"):
        tsm.create_model("tsm_resnet50", pretrained=True)
    with pytest.raises(ValueError, match="tsm_resnet18 has no published weights"):
        tsm.create_model("tsm_resnet18", pretrained=True)
    with pytest.raises(ValueError, match="backbone_weights would be overwritten"):
        tsm.create_model(name, pretrained=True, backbone_weights="imagenet")

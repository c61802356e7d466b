"""``tsm export --format web``: what the folder holds, replacing it, the errors (offline model,
no npm, npm failing, a tarball that is not the published one, a bad --ort-web copy), the cache,
and the COOP/COEP server of --serve."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import jsonschema
import pytest

import tsm
from tsm.apps.static_server import ISOLATION_HEADERS, make_server
from tsm.cli.main import main
from tsm.data import PIPELINE_VERSION, DataConfig, FramePipeline, synthetic_class_names
from tsm.export import export_model, ort_web, read_export_metadata
from tsm.export.ort_web import ORT_WEB_FILES, ORT_WEB_VERSION, install_ort_web
from tsm.export.web import PAGE_ASSETS, write_web_folder
from tsm.models import StreamingStep

CLASSES = synthetic_class_names(4)
DATA = DataConfig(resize=40, input_size=32)
FAST = ["--onnx-exporter", "torchscript", "--no-check"]


def web_command(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    """``tsm export CKPT --format web --out OUT`` (the fast exporter, no check) and ``extra``."""
    return ["export", str(checkpoint), "--format", "web", "--out", str(out), *FAST, *extra]


def checkpoint(folder: Path, **overrides) -> Path:
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=4, num_segments=8, **overrides)
    return tsm.save_checkpoint(folder / "model.safetensors", model, class_names=CLASSES, data_config=DATA)


@pytest.fixture(scope="module")
def online(tmp_path_factory) -> Path:
    return checkpoint(tmp_path_factory.mktemp("online"))


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """ONNX Runtime Web's page files, from the npm package (fetched once into the user cache)."""
    folder = tmp_path_factory.mktemp("ort") / "package" / "dist"
    install_ort_web(folder)
    return folder


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    return captured.err


def test_the_folder_holds_the_page_the_model_and_the_runtime_only(online, dist, tmp_path) -> None:
    out = tmp_path / "site"
    assert main(web_command(online, out, "--ort-web", str(dist))) == 0
    page = {name for name in files_under(PAGE_ASSETS) if "__pycache__" not in name}
    model = {"model/model.onnx", "model/classes.json", "model/pipeline.json"}
    runtime = {f"ort/{name}" for name in ORT_WEB_FILES}
    assert files_under(out) == page | model | runtime | {"page-config.json"}
    assert {"tsm.js", "local-backend.js"} <= page
    page_config = {"backend": "local", "model": "./model/", "smoothWindow": 12, "agree": 2}
    assert json.loads((out / "page-config.json").read_text()) == page_config
    assert json.loads((out / "model/classes.json").read_text()) == CLASSES
    assert read_export_metadata(out / "model/model.onnx")["tsm_export"] == "stream"
    pipeline = json.loads((out / "model/pipeline.json").read_text())
    assert (pipeline["resize"], pipeline["crop_size"], pipeline["frame_size"]) == (40, [32, 32], [32, 32])
    assert (pipeline["mean"], pipeline["std"]) == (list(DATA.mean), list(DATA.std))
    # pipeline.json is the typed FramePipeline (versioned) plus the step's inputs and outputs, and
    # the schema shipped beside tsm.js accepts it.
    spec = FramePipeline.from_dict(pipeline)
    assert spec == FramePipeline.of(DATA) and pipeline["version"] == PIPELINE_VERSION
    schema = json.loads((out / "pipeline.schema.json").read_text())
    jsonschema.validate(pipeline, schema)
    assert set(spec.to_dict()) | {"name", "model", "precision", "num_classes", "num_segments"} < set(
        schema["required"]
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**pipeline, "std": [0.2, 0.0, 0.2]}, schema)
    model_shapes = StreamingStep(tsm.load_checkpoint(online)[0]).cache_shapes((1, 3, 32, 32))
    assert [[1, *cache["shape"]] for cache in pipeline["inputs"]["caches"]] == [list(s) for s in model_shapes]
    assert pipeline["outputs"]["caches"] == [f"new_{cache['name']}" for cache in pipeline["inputs"]["caches"]]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # an ordinary folder, not mkdtemp's 0o700
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no leftovers


def test_an_earlier_export_is_replaced_and_other_folders_are_refused(online, dist, tmp_path, capsys) -> None:
    out = tmp_path / "site"
    command = web_command(online, out, "--ort-web", str(dist))
    assert main(command) == 0
    (out / "model" / "stale.txt").write_text("from before")
    assert main(command) == 0
    assert not (out / "model" / "stale.txt").exists()
    capsys.readouterr()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    command[command.index(str(out))] = str(foreign)
    assert main(command) == 1
    assert "is not a web export folder: choose a new or empty folder" in one_line_error(capsys)
    assert files_under(foreign) == {"holiday.jpg"}


def test_an_offline_checkpoint_is_refused_in_one_line(tmp_path, capsys) -> None:
    offline = checkpoint(tmp_path, mode="bidirectional")
    assert main(web_command(offline, tmp_path / "site")) == 1
    error = one_line_error(capsys)
    assert error.startswith("tsm export: error: --format web runs the model frame by frame, and a ")
    assert "bidirectional TSM model cannot stream" in error and "online (uni-directional) model" in error
    assert not (tmp_path / "site").exists()


def test_web_options_need_the_web_format(online, tmp_path, capsys) -> None:
    assert main(["export", str(online), "--out", str(tmp_path / "m.onnx"), "--serve"]) == 1
    assert "--ort-web and --serve go with --format web" in one_line_error(capsys)


def fake_npm(folder: Path, script: str) -> Path:
    """A folder with an ``npm`` that runs ``script`` (bash), first on PATH."""
    folder.mkdir()
    npm = folder / "npm"
    npm.write_text(f"#!/bin/bash\n{script}\n")
    npm.chmod(0o755)
    return folder


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_without_npm_the_error_names_both_ways(online, empty_cache, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))
    assert main(web_command(online, tmp_path / "site")) == 1
    error = one_line_error(capsys)
    assert f"needs onnxruntime-web@{ORT_WEB_VERSION} and npm was not found" in error
    assert "install Node.js with npm" in error and "--ort-web DIR" in error
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('echo "npm error code E404" >&2; exit 1', r"`npm pack onnxruntime-web@\S+` failed \(npm error"),
        (
            'cd "$5" && echo not-the-package > x.tgz && echo \'[{"filename": "x.tgz"}]\'',
            r"tarball npm returned fails its integrity check \(got sha512-",
        ),
    ],
    ids=["npm-fails", "wrong-tarball"],
)
def test_npm_problems_are_one_line(online, empty_cache, tmp_path, monkeypatch, capsys, script, message):
    monkeypatch.setenv("PATH", f"{fake_npm(tmp_path / 'bin', script)}{os.pathsep}{os.environ['PATH']}")
    assert main(web_command(online, tmp_path / "site")) == 1
    assert re.search(message, one_line_error(capsys))
    assert not list(empty_cache.rglob("*.tgz"))  # nothing unverified is cached


def test_the_verified_tarball_is_cached(dist, tmp_path, monkeypatch) -> None:
    """Once fetched (the dist fixture), the package comes from the cache: npm is not run again."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))
    install_ort_web(tmp_path / "ort")
    assert files_under(tmp_path / "ort") == set(ORT_WEB_FILES)
    for name in ORT_WEB_FILES:
        assert (tmp_path / "ort" / name).read_bytes() == (dist / name).read_bytes()
    assert ort_web.tarball_integrity(next(ort_web.cache_dir().glob("*.tgz"))) == ort_web.ORT_WEB_INTEGRITY


def test_an_ort_web_copy_is_checked(dist, tmp_path) -> None:
    package = dist.parent  # package/dist: the package folder and its dist/ both work
    for source in (package, dist):
        target = tmp_path / source.name
        install_ort_web(target, copy_from=source)
        assert files_under(target) == set(ORT_WEB_FILES)
    partial = tmp_path / "partial"
    shutil.copytree(dist, partial)
    (partial / "ort-wasm-simd-threaded.wasm").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing ort-wasm-simd-threaded\.wasm; point it at"):
        install_ort_web(tmp_path / "out1", copy_from=partial)
    changed = tmp_path / "changed"
    shutil.copytree(dist, changed)
    with open(changed / "ort.wasm.min.mjs", "a") as script:
        script.write("// changed\n")
    not_pinned = rf"ort\.wasm\.min\.mjs is not the file of onnxruntime-web@{ORT_WEB_VERSION}"
    with pytest.raises(ValueError, match=not_pinned):
        install_ort_web(tmp_path / "out2", copy_from=changed)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        install_ort_web(tmp_path / "out3", copy_from=tmp_path / "nowhere")


def fetch(url: str):
    """The body and headers (case-insensitive) of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers


def test_the_server_sends_the_isolation_headers_and_module_types(tmp_path) -> None:
    for name in ("tsm.js", "a.mjs", "b.wasm", "page-config.json"):
        (tmp_path / name).write_text("x")
    for isolated in (True, False):
        server = make_server(tmp_path, port=0, isolated=isolated)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}/"
            types = [fetch(base + name)[1]["Content-Type"] for name in ("tsm.js", "a.mjs", "b.wasm")]
            assert types == ["text/javascript", "text/javascript", "application/wasm"]
            headers = fetch(base + "page-config.json")[1]
            sent = {name: headers.get(name) for name in ISOLATION_HEADERS}
            assert sent == (ISOLATION_HEADERS if isolated else dict.fromkeys(ISOLATION_HEADERS))
            with pytest.raises(ValueError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*pick another --port"):
                make_server(tmp_path, port=server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.mark.slow
def test_serve_prints_the_url_and_serves_the_folder(online, dist, tmp_path) -> None:
    out = tmp_path / "site"
    command = [sys.executable, "-m", "tsm.cli.main", *web_command(online, out, "--ort-web", str(dist))]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command += ["--serve", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        served = re.search(r"at (http://127\.0\.0\.1:\d+/) \(cross-origin isolated", lines[1])
        assert lines[0].startswith(f"wrote {out}: web folder") and served, lines
        url = served.group(1)
        body, headers = fetch(url + "page-config.json")
        assert json.loads(body) == {"backend": "local", "model": "./model/", "smoothWindow": 12, "agree": 2}
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert fetch(url + "model/model.onnx")[0] == (out / "model/model.onnx").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_streaming_onnx_comes_from_one_replaceable_call(tmp_path, dist) -> None:
    """write_web_folder takes the model writer (e.g. a quantised export) as one function."""

    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=4, num_segments=8)
    calls = []

    def writer(path: Path):
        calls.append(path.name)
        options = {"class_names": CLASSES, "data_config": DATA, "onnx_exporter": "torchscript"}
        return export_model(model, path, streaming=True, frame_size=32, check=False, **options)

    result = write_web_folder(tmp_path / "site", writer, name="quantised", ort_web=dist)
    assert calls == ["model.onnx"] and result.pipeline["name"] == "quantised"


def test_an_int8_step_goes_into_the_folder_checked_as_tsm_export_int8_does(tmp_path, dist, capsys) -> None:
    """--format web --int8 --calibration: the folder's step is the int8 file (its metadata says so,
    pipeline.json too), calibrated on the list and checked on others; --int8 alone is an error."""
    videos = tsm.generate_synthetic_dataset(tmp_path / "data", train=3, val=1, test=2, size=32, frames=8)
    config = videos.data_config.replace(num_segments=8)
    model = tsm.create_model("tsm_online_resnet18", num_classes=4, num_segments=8)
    source = tsm.save_checkpoint(tmp_path / "online.safetensors", model, videos.class_names, config)
    out = tmp_path / "site"
    int8 = ["--int8", "--calibration", str(videos.lists["train"]), "--check", str(videos.lists["test"])]
    arguments = web_command(source, out, "--ort-web", str(dist), *int8, "--max-drop", "100")
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "web folder, streaming step int8" in printed and "int8 vs fp32 on 2 clips" in printed
    assert json.loads((out / "model" / "pipeline.json").read_text())["precision"] == "int8"
    assert read_export_metadata(out / "model" / "model.onnx")["int8"]["calibration_clips"] == 3
    assert main(web_command(source, tmp_path / "other", "--int8")) == 1
    assert "--int8 needs --calibration SOURCE" in one_line_error(capsys)
    assert not (tmp_path / "other").exists()

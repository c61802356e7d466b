"""tsm.js in headless Chromium against PyTorch: the streaming logits (exact on frames the
pipeline does not resize), the antialiased resize and centre crop, several streams with resets,
clear errors for broken model folders, WASM threads with and without cross-origin isolation.

One web export (``tsm export --format web``, the default exporter) of a tiny online MobileNetV2
with calibrated BatchNorm statistics; frames are decoded from H.264 clips of tsm.data's
synthetic task and handed to the page as their exact RGB bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate

import tsm
from tsm.cli.main import main
from tsm.data import (
    PIPELINE_VERSION,
    DataConfig,
    frame_transform,
    read_frames,
    render_synthetic_clip,
    synthetic_class_names,
    write_video,
)
from tsm.export.web import PAGE_ASSETS
from tsm.models import StreamingStep
from web_helpers import (
    add_harness,
    chromium,
    chromium_missing_reason,
    open_harness,
    playwright_session,
    rgb_payload,
    served,
)

RESIZE, CROP = 40, 32
DATA = DataConfig(resize=RESIZE, input_size=CROP)
CLASSES = synthetic_class_names(4)
LOGIT_TOLERANCE = 1e-4
ONE_LEVEL = (1 / 255) / min(DATA.std)  # one uint8 step after normalisation

_missing = chromium_missing_reason()
if _missing and os.environ.get("CI"):
    raise RuntimeError(f"the web tests need Chromium and Playwright in CI: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


def decoded_clip(
    folder: Path, class_name: str, height: int, width: int, frames: int = 10, seed: int = 0
) -> np.ndarray:
    """A clip of ``class_name`` at height x width, encoded with H.264 and decoded: (F, H, W, 3)."""
    side = max(height, width)
    pixels = render_synthetic_clip(class_name, side, frames, np.random.default_rng(seed))
    top, left = (side - height) // 2, (side - width) // 2
    pixels = np.ascontiguousarray(pixels[:, top : top + height, left : left + width])
    pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    path = write_video(folder / f"{class_name}_{height}x{width}_{seed}.mp4", pixels, pix_fmt=pix_fmt)
    return read_frames(path, range(frames)).permute(0, 2, 3, 1).numpy()


def kernel_transform(frame: torch.Tensor) -> torch.Tensor:
    """The test pipeline with PyTorch's uint8 antialiased bilinear kernel called directly, which
    computes the same on every CPU: torchvision runs it on x86 with AVX2 and on ARM, and tsm.js
    implements it; on x86 without AVX2 torchvision resizes in float32 instead and rounds, one
    uint8 level away on ~15 % of the values."""
    height, width = frame.shape[-2:]
    short, long = sorted((height, width))
    size = (RESIZE, int(RESIZE * long / short)) if height <= width else (int(RESIZE * long / short), RESIZE)
    if size != (height, width):
        frame = interpolate(frame[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return frame_transform(DATA.replace(resize=None))(frame)  # centre crop, normalisation


def pytorch_stream(
    model: tsm.Recognizer, frames: np.ndarray, reset_at: int | None = None, transform=kernel_transform
) -> torch.Tensor:
    """The PyTorch streaming step's logits for each frame (test pipeline per frame), (F, K)."""
    step = StreamingStep(model)
    caches: list[torch.Tensor] = []
    logits = []
    with torch.no_grad():
        for index, frame in enumerate(frames):
            if index == reset_at:
                caches = []
            pixels = torch.from_numpy(frame).permute(2, 0, 1)
            output, *caches = step(transform(pixels).unsqueeze(0), *caches)
            logits.append(output[0])
    return torch.stack(logits)


@pytest.fixture(scope="module")
def model() -> tsm.Recognizer:
    """A tiny online MobileNetV2 whose logits depend strongly on the frames and the caches:
    BatchNorm statistics from synthetic clips (random ones leave the logits nearly constant) and
    a head that keeps them small (|logits| < 1, so that float32 rounding stays far below 1e-4)."""
    model = tsm.create_model("tsm_online_mobilenet_v2", num_classes=len(CLASSES), num_segments=8)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative: the statistics of all calibration clips
    transform, rng = frame_transform(DATA), np.random.default_rng(0)
    clips = [
        torch.stack([transform(torch.from_numpy(f).permute(2, 0, 1)) for f in clip])
        for clip in (render_synthetic_clip(name, RESIZE, 8, rng) for name in CLASSES * 4)
    ]
    with torch.no_grad():
        model.train()(torch.stack(clips))
    torch.nn.init.normal_(model.new_fc.weight, 0, 0.005, generator=torch.Generator().manual_seed(1))
    return model.eval()


def edit_pipeline(folder: Path, **changes) -> None:
    """Change (None: remove) fields of a copied model folder's pipeline.json."""
    pipeline = json.loads((folder / "pipeline.json").read_text())
    pipeline.update(changes)
    (folder / "pipeline.json").write_text(json.dumps({k: v for k, v in pipeline.items() if v is not None}))


@pytest.fixture(scope="module")
def site(model, tmp_path_factory) -> Path:
    """A web export of the model with the harness page, plus broken copies of its model folder."""
    folder = tmp_path_factory.mktemp("web")
    checkpoint = folder / "tiny.safetensors"
    tsm.save_checkpoint(checkpoint, model, class_names=CLASSES, data_config=DATA)
    site = folder / "site"
    assert main(["export", str(checkpoint), "--format", "web", "--out", str(site)]) == 0
    add_harness(site)
    broken = {
        "no-classes": lambda path: (path / "classes.json").unlink(),
        "bad-json": lambda path: (path / "pipeline.json").write_text("{ not json"),
        "few-classes": lambda path: (path / "classes.json").write_text('["a", "b"]'),
        "bad-onnx": lambda path: (path / "model.onnx").write_bytes((path / "model.onnx").read_bytes()[:5000]),
        "newer": lambda path: edit_pipeline(path, version=PIPELINE_VERSION + 1, new_field=1),
        "older": lambda path: edit_pipeline(path, format="tsm-web-pipeline/1", version=None),
        "two-means": lambda path: edit_pipeline(path, mean=[0.5, 0.5]),
        "bicubic": lambda path: edit_pipeline(path, interpolation="bicubic"),
    }
    for name, damage in broken.items():
        shutil.copytree(site / "model", site / name)
        damage(site / name)
    return site


@pytest.fixture(scope="module")
def playwright():
    with playwright_session() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    with chromium(playwright) as browser:
        yield browser


@pytest.fixture(scope="module")
def page(site, browser):
    with served(site) as url:
        requests: list[str] = []
        page = open_harness(browser, url, requests)
        yield page
        outside = [request for request in requests if not request.startswith(url)]
        assert not outside, f"the page requested outside its folder: {outside}"
        page.close()


RUN_STREAMS = """async ({streams, resets}) => {
    const load = () => tsm.loadRecognizer('./model/', {engine: 'wasm'});
    const recognizers = await Promise.all(streams.map(load));
    const logits = streams.map(() => []);
    for (let t = 0; t < streams[0].length; t++) {
        recognizers.forEach((recognizer, s) => { if (resets[s] === t) recognizer.reset(); });
        // all streams at once: their steps interleave on the one shared model
        const results = await Promise.all(recognizers.map((recognizer, s) => {
            const frame = streams[s][t];
            return recognizer.step(imageFromRgb(frame.data, frame.width, frame.height));
        }));
        results.forEach((result, s) => logits[s].push(Array.from(result.logits)));
    }
    return {logits, info: recognizers[0].info};
}"""


def run_streams(page, streams: list[np.ndarray], resets: list[int | None]) -> tuple[list[torch.Tensor], dict]:
    payload = {"streams": [[rgb_payload(f) for f in frames] for frames in streams], "resets": resets}
    result = page.evaluate(RUN_STREAMS, payload)
    return [torch.tensor(logits) for logits in result["logits"]], result["info"]


def test_logits_equal_pytorch_on_frames_of_the_resize_size(page, model, tmp_path) -> None:
    """Short side == the pipeline's resize: no resampling, so tsm.js must match PyTorch to 1e-4,
    over three streams side by side (landscape, portrait, square), one reset mid-stream."""
    streams = [
        decoded_clip(tmp_path, "move_right", RESIZE, 56),
        decoded_clip(tmp_path, "grow", 64, RESIZE, seed=1),
        decoded_clip(tmp_path, "move_left", RESIZE, RESIZE, seed=2),
    ]
    resets = [5, None, 3]
    browser_logits, info = run_streams(page, streams, resets)
    assert info["engine"] == "wasm" and info["classes"] == CLASSES
    for frames, reset, actual in zip(streams, resets, browser_logits, strict=True):
        expected = pytorch_stream(model, frames, reset)
        assert (actual - expected).abs().max() <= LOGIT_TOLERANCE
    # The test can fail: the caches change the logits (a missed reset would show) and frames differ.
    without_reset = pytorch_stream(model, streams[0])
    assert (without_reset[5:] - pytorch_stream(model, streams[0], 5)[5:]).abs().max() > 100 * LOGIT_TOLERANCE
    assert browser_logits[0].std(dim=0).min() > 100 * LOGIT_TOLERANCE


PREPROCESS = """async ({frames}) => {
    const recognizer = await tsm.loadRecognizer('./model/', {engine: 'wasm'});
    const image = (frame) => imageFromRgb(frame.data, frame.width, frame.height);
    return frames.map((frame) => Array.from(tsm.preprocess(image(frame), recognizer.pipeline)));
}"""


@pytest.mark.parametrize(
    ("height", "width"),
    [(72, 96), (30, 44), (61, 75), (96, 54), (41, 40), (21, 100)],
    ids=["down", "up", "odd", "portrait", "one-row", "pad"],
)
def test_preprocessing_matches_the_test_pipeline(page, tmp_path, height, width) -> None:
    """Resize (PyTorch's uint8 antialiased bilinear kernel: triangle filter, int16 weights, width
    then height), centre crop (zero padding where the crop is wider) and normalisation: the same
    float32 values as PyTorch's kernel on any CPU, and within one uint8 level of torchvision's
    pipeline wherever it resizes in float32 instead."""
    frames = decoded_clip(tmp_path, "rotate_clockwise", height, width, frames=3)
    actual = torch.tensor(page.evaluate(PREPROCESS, {"frames": [rgb_payload(f) for f in frames]}))
    pixels = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
    kernel = torch.stack([kernel_transform(frame).flatten() for frame in pixels])
    assert torch.equal(actual, kernel)
    pipeline = torch.stack([frame_transform(DATA)(frame).flatten() for frame in pixels])
    assert (actual - pipeline).abs().max() <= ONE_LEVEL * (1 + 1e-5)


def test_top1_agrees_with_pytorch_on_resized_clips(page, model, tmp_path) -> None:
    """Frames of other sizes (down- and upscaled, odd): top-1 equals PyTorch's on >= 95 % of the
    frames (PyTorch with its uint8 resize kernel, as the test pipeline runs on AVX2 or ARM)."""
    clips = [
        decoded_clip(tmp_path, name, height, width, frames=12, seed=seed)
        for seed, (name, (height, width)) in enumerate(
            zip(CLASSES * 2, [(72, 96)] * 4 + [(30, 44), (96, 54), (61, 75), (120, 160)], strict=True)
        )
    ]
    browser_logits, _ = run_streams(page, clips, [None] * len(clips))
    expected = torch.cat([pytorch_stream(model, frames) for frames in clips]).argmax(dim=1)
    actual = torch.cat(browser_logits).argmax(dim=1)
    assert len(expected.unique()) >= 2, "the model must not give one class for every frame"
    assert (actual == expected).float().mean() >= 0.95


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("missing", r"pipeline\.json is missing: .*HTTP 404.*tsm export CKPT --format web"),
        ("no-classes", r"classes\.json is missing: .*HTTP 404"),
        ("bad-json", r"pipeline\.json .* is not valid JSON"),
        ("few-classes", r"classes\.json must list 4 class names .* got 2 entries"),
        ("bad-onnx", r"model\.onnx is not a model ONNX Runtime can load"),
        ("newer", r"version 3 was written by a newer tsm; this tsm\.js reads up to version 2"),
        ("older", r"not a tsm-frame-pipeline file of version 1-2 \(written by an older tsm\?\)"),
        ("two-means", r"pipeline\.mean needs at least 3 items \(pipeline\.schema\.json\)"),
        ("bicubic", r"antialiased bilinear interpolation only, the pipeline asks for bicubic"),
    ],
)
def test_broken_model_folders_get_clear_errors(page, folder, message) -> None:
    error = page.evaluate(
        """async (folder) => {
            try { await tsm.loadRecognizer(`./${folder}/`, {engine: 'wasm'}); return null; }
            catch (error) { return `${error.name}: ${error.message}`; }
        }""",
        folder,
    )
    assert error is not None and error.startswith("ModelFolderError: tsm.js: ")
    assert __import__("re").search(message, error), error


ENGINE = """async () => {
    const recognizer = await tsm.loadRecognizer('./model/', {engine: 'wasm', threads: 2});
    const frame = new ImageData(new Uint8ClampedArray(48 * 40 * 4).fill(90), 48, 40);
    const {logits, top} = await recognizer.step(frame);
    return {isolated: crossOriginIsolated, label: recognizer.info.label, logits: Array.from(logits), top};
}"""


def test_wasm_threads_need_cross_origin_isolation(site, browser) -> None:
    """With COOP/COEP the page is cross-origin isolated and runs 2 threads; without, one thread
    and a label that says why. Both give the same logits."""
    results = {}
    for isolated in (True, False):
        with served(site, isolated=isolated) as url:
            page = open_harness(browser, url)
            results[isolated] = page.evaluate(ENGINE)
            page.close()
    assert results[True]["isolated"] and results[True]["label"] == "wasm (SIMD, threads on: 2)"
    assert not results[False]["isolated"]
    assert results[False]["label"] == "wasm (SIMD, threads off: page not cross-origin isolated)"
    difference = np.abs(np.array(results[True]["logits"]) - np.array(results[False]["logits"]))
    assert difference.max() <= LOGIT_TOLERANCE
    names = [name for name, _ in results[True]["top"]]
    assert sorted(names) == sorted(CLASSES) and abs(sum(p for _, p in results[True]["top"]) - 1) < 1e-5


FRAME_KINDS = """async ({frame}) => {
    const image = imageFromRgb(frame.data, frame.width, frame.height);
    const canvas = new OffscreenCanvas(frame.width, frame.height);
    canvas.getContext('2d').putImageData(image, 0, 0);
    const inputs = {
        imageData: image,
        videoFrame: new VideoFrame(image.data, {
            format: 'RGBA', codedWidth: frame.width, codedHeight: frame.height, timestamp: 0,
        }),
        canvas,
    };
    const logits = {};
    for (const [kind, input] of Object.entries(inputs)) {
        const recognizer = await tsm.loadRecognizer('./model/', {engine: 'wasm'});
        logits[kind] = Array.from((await recognizer.step(input)).logits);
    }
    return logits;
}"""


def test_a_video_frame_or_a_canvas_gives_the_logits_of_its_image_data(page, tmp_path) -> None:
    frame = decoded_clip(tmp_path, "shrink", 48, 64, frames=1)[0]
    logits = page.evaluate(FRAME_KINDS, {"frame": rgb_payload(frame)})
    assert logits["videoFrame"] == logits["imageData"] and logits["canvas"] == logits["imageData"]


# A software WebGPU adapter (SwiftShader) in headless Chromium: slow, but the WebGPU path runs.
WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--enable-unsafe-swiftshader", "--use-webgpu-adapter=swiftshader")
WEBGPU = """async ({frames}) => {
    const recognizer = await tsm.loadRecognizer('./model/');  // 'auto': WebGPU where there is an adapter
    const logits = [];
    for (const frame of frames) {
        const image = imageFromRgb(frame.data, frame.width, frame.height);
        logits.push(Array.from((await recognizer.step(image)).logits));
    }
    return {label: recognizer.info.label, logits};
}"""


@pytest.mark.slow
def test_webgpu_is_chosen_where_there_is_an_adapter(site, model, playwright, tmp_path) -> None:
    frames = decoded_clip(tmp_path, "move_up", RESIZE, 48, frames=4)
    with chromium(playwright, WEBGPU_FLAGS) as browser, served(site) as url:
        page = open_harness(browser, url)
        result = page.evaluate(WEBGPU, {"frames": [rgb_payload(f) for f in frames]})
    assert result["label"] == "webgpu"
    expected = pytorch_stream(model, frames)
    assert (torch.tensor(result["logits"]) - expected).abs().max() <= 1e-3  # GPU float32 kernels


EXAMPLE = Path(__file__).parents[1] / "docs" / "web" / "example.html"


def fake_camera(folder: Path) -> Path:
    """A y4m file of synthetic clips (320x240) for Chromium's fake camera, which loops it."""
    rng = np.random.default_rng(0)
    clips = [render_synthetic_clip(name, 320, 12, rng) for name in CLASSES]
    frames = np.concatenate(clips)[:, 40:280]
    return write_video(folder / "camera.y4m", np.ascontiguousarray(frames), codec="rawvideo")


@pytest.mark.slow
def test_the_documented_example_page_runs_on_a_fake_camera(site, playwright, tmp_path) -> None:
    """docs/web/example.html next to tsm.js: labels change on the camera's frames, the engine and
    frames per second are shown, and nothing is requested from outside the folder."""
    shutil.copyfile(EXAMPLE, site / EXAMPLE.name)
    camera = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    flags = (*camera, f"--use-file-for-fake-video-capture={fake_camera(tmp_path)}")
    with chromium(playwright, flags) as browser, served(site) as url:
        page = browser.new_page(viewport={"width": 520, "height": 400})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url + EXAMPLE.name)
        shown = "document.getElementById('engine').textContent.includes('frames/s')"
        page.wait_for_function(shown, timeout=30_000)
        labels = set()
        for _ in range(40):
            labels.add(page.inner_text("#label").rsplit(" ", 2)[0])
            page.wait_for_timeout(100)
        page.screenshot(path=str(tmp_path / "example.png"))
        engine = page.inner_text("#engine")
    assert labels <= set(CLASSES) and len(labels) >= 2, labels
    assert engine.startswith("wasm (SIMD, threads ") and engine.endswith("frames/s")
    assert "not cross-origin isolated" not in engine  # one thread only where the CPU has one core
    assert all(request.startswith(url) for request in requests), requests


PAGE = PAGE_ASSETS / "index.html"


@pytest.mark.slow
def test_the_page_runs_the_model_in_the_browser_on_a_fake_camera(site, playwright, tmp_path) -> None:
    """The page of tsm serve in the exported folder: local backend (tsm.js), labels that change on
    the fake camera, the engine shown, nothing requested outside the folder, no page errors."""
    camera = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    flags = (*camera, f"--use-file-for-fake-video-capture={fake_camera(tmp_path)}")
    with chromium(playwright, flags) as browser, served(site) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + PAGE.name)
        recognised = f"{json.dumps(CLASSES)}.includes(document.getElementById('label').textContent)"
        page.wait_for_function(recognised, timeout=30_000)
        labels = set()
        for _ in range(40):
            labels.add(page.inner_text("#label"))
            page.wait_for_timeout(100)
        page.screenshot(path=str(tmp_path / "page.png"))
        state, model_info, fps = page.evaluate(
            "[document.body.dataset.state, document.getElementById('model-info').textContent,"
            " document.getElementById('fps').textContent]"
        )
    assert not errors, errors
    assert state == "connected" and "engine wasm (SIMD, threads " in model_info, model_info
    assert "not cross-origin isolated" not in model_info
    assert float(fps) > 0
    assert labels <= set(CLASSES) and len(labels) >= 2, labels
    assert all(request.startswith(url) for request in requests), requests


def test_the_page_shows_what_is_wrong_with_a_broken_model_folder(site, browser, tmp_path) -> None:
    broken = tmp_path / "site"
    shutil.copytree(site, broken, ignore=shutil.ignore_patterns("*.wasm", "*.mjs"))  # not loaded
    (broken / "model" / "classes.json").unlink()
    with served(broken) as url:
        page = browser.new_page()
        page.goto(url + PAGE.name)
        page.wait_for_function("document.body.dataset.state === 'error'", timeout=30_000)
        shown = page.inner_text("#state-text")
        page.close()
    assert shown.startswith("Error: tsm.js: classes.json is missing: ") and "HTTP 404" in shown, shown

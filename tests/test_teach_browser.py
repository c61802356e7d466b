"""The Teach panel in Chromium on a fake camera: classes added, a clip of each recorded from the
camera (MediaRecorder) and one added as a file, training, and the live label following the taught
classes. ``TSM_SCREENSHOTS=DIR`` also saves the panel's screenshots there (docs/images)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright")

from serve_helpers import running_server
from teach_helpers import BASE_FILE, teachnet_registered
from tsm.apps.serve import ServeSettings, create_app
from tsm.data import render_synthetic_clip, write_video
from web_helpers import CHROMIUM, CHROMIUM_FLAGS, chromium_missing_reason, playwright_session

pytestmark = pytest.mark.skipif(chromium_missing_reason() is not None, reason=str(chromium_missing_reason()))

# What the camera shows, one after another, 1.6 s each: motions the base's features tell apart.
SEGMENTS = {"right": "move_right", "left": "move_left", "growing": "grow"}
SEGMENT_FRAMES, FPS, CAMERA_SIZE = 24, 15, 128

# window.segmentNow(colours): the camera's segment now, by the preview's mean colour (the nearest
# segment's mean colour).
SEGMENT_NOW = """() => { window.segmentNow = (colours) => {
    const video = document.getElementById('video');
    window.probe ??= Object.assign(document.createElement('canvas'), {width: 16, height: 16});
    const context = window.probe.getContext('2d', {willReadFrequently: true});
    context.drawImage(video, 0, 0, 16, 16);
    const pixels = context.getImageData(0, 0, 16, 16).data;
    const mean = [0, 1, 2].map((c) => pixels.filter((_, i) => i % 4 === c).reduce((a, b) => a + b) / 256);
    const distance = (colour) => colour.reduce((sum, value, c) => sum + (value - mean[c]) ** 2, 0);
    return Object.keys(colours).reduce((a, b) => (distance(colours[a]) <= distance(colours[b]) ? a : b));
}; }"""
# Click a class's Record button as its segment starts (so that a 1 s clip holds only it).
RECORD_AT_START = """async ([label, colours]) => {
    let previous = window.segmentNow(colours);
    for (let tries = 0; tries < 600; tries += 1) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
        const current = window.segmentNow(colours);
        if (current === label && previous !== label) {
            document.querySelector(`.teach-class[data-label="${label}"] .record`).click();
            return true;
        }
        previous = current;
    }
    return false;
}"""
# For `ms` milliseconds: the camera's segment, the shown label, and how long the segment has been on.
FOLLOW = """async ([colours, ms]) => {
    const samples = [];
    let segment = window.segmentNow(colours), since = performance.now();
    const end = since + ms;
    while (performance.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const current = window.segmentNow(colours);
        if (current !== segment) { segment = current; since = performance.now(); }
        samples.push([segment, document.getElementById('label').textContent, performance.now() - since]);
    }
    return samples;
}"""


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    """The fake camera's clip (y4m), a video of each segment, and the segments' mean colours."""
    folder = tmp_path_factory.mktemp("teach_camera")
    rng = np.random.default_rng(0)
    segments = {}
    for name, motion in SEGMENTS.items():
        segments[name] = render_synthetic_clip(motion, CAMERA_SIZE, SEGMENT_FRAMES, rng)
    colours = {name: frames.reshape(-1, 3).mean(axis=0).tolist() for name, frames in segments.items()}
    camera = np.concatenate(list(segments.values()))
    clip = write_video(folder / "camera.y4m", camera, fps=FPS, codec="rawvideo")
    files = {name: write_video(folder / f"{name}.mp4", frames, fps=FPS) for name, frames in segments.items()}
    return clip, files, colours


def screenshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    target = os.environ.get("TSM_SCREENSHOTS")
    if target:
        shutil.copyfile(tmp_path / name, Path(target) / name)


def add_clips(page, label: str, video: Path, colours: dict) -> None:
    """Record a clip of ``label`` from the camera (as its segment starts), then add ``video``."""
    thumbnails = f"document.querySelectorAll('.teach-class[data-label=\"{label}\"] .teach-thumb').length"
    assert page.evaluate(RECORD_AT_START, [label, colours])
    page.wait_for_function(f"{thumbnails} === 1", timeout=30_000)
    page.set_input_files(f'.teach-class[data-label="{label}"] input[type=file]', str(video))
    page.wait_for_function(f"{thumbnails} === 2", timeout=30_000)


def open_page(browser, address: str) -> tuple:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"http://{address}/")
    page.wait_for_selector("body[data-state=connected]", timeout=30_000)
    page.wait_for_selector("#teach:not([hidden])", timeout=30_000)
    page.evaluate(SEGMENT_NOW)
    return page, errors


def test_clips_recorded_in_the_page_teach_the_live_model(camera, tmp_path):
    clip, files, colours = camera
    pairs = [(a, b) for a in colours for b in colours if a < b]
    distances = [np.linalg.norm(np.subtract(colours[a], colours[b])) for a, b in pairs]
    assert min(distances) > 30  # the segments can be told apart by their colour
    flags = [*CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    flags.append(f"--use-file-for-fake-video-capture={clip}")
    settings = ServeSettings(smooth_window=1, agree=1)
    with teachnet_registered(), playwright_session() as playwright:
        app = create_app(BASE_FILE, teach=tmp_path / "project", settings=settings)
        with running_server(app) as address:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=flags)
            page, errors = open_page(browser, address)
            page.select_option("#teach-seconds", "1")
            page.select_option("#teach-countdown", "0")
            for label in SEGMENTS:
                page.fill("#teach-class-name", label)
                page.click("#teach-add-class button")
                page.wait_for_selector(f'.teach-class[data-label="{label}"]')
            for label in SEGMENTS:
                add_clips(page, label, files[label], colours)
            assert "Added" in page.inner_text("#teach-message")
            screenshot(page, tmp_path, "teach-clips.png")
            page.click("#teach-train-button")
            page.wait_for_selector("body[data-teach=done]", timeout=120_000)
            model = page.inner_text("#model-info")
            assert "run-001" in model and "3 classes" in model and not page.is_hidden("#teach-downloads")
            samples = page.evaluate(FOLLOW, [colours, 6000])
            agreeing = "window.segmentNow(%s) === document.getElementById('label').textContent"
            page.wait_for_function(agreeing % json.dumps(colours), timeout=30_000)
            screenshot(page, tmp_path, "teach-live.png")  # a moment the label names what the camera shows
            assert not errors, errors
            browser.close()
    settled = [(segment, label) for segment, label, since in samples if since > 600]
    agree = sum(segment == label for segment, label in settled)
    assert agree >= 0.7 * len(settled) and {label for _, label in settled} == set(SEGMENTS), samples

"""The page of tsm serve in a real browser (Chromium driven by Playwright) with a fake camera."""

from __future__ import annotations

import re
import shutil

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("playwright")
from playwright.sync_api import sync_playwright

import tsm
from serve_helpers import camera_clip, clip_fitted_checkpoint, running_server, tiny_checkpoint
from tsm.apps.serve import ServeSettings, create_app
from tsm.inference import StreamingRecognizer
from tsm.models import LabelSmoother

CHROMIUM = "/usr/bin/chromium"
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
QUIET += ["--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium whose camera plays a clip of the four synthetic classes; and the clip's path."""
    clip = camera_clip(tmp_path_factory.mktemp("camera") / "camera.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM, args=[*QUIET, *camera, f"--use-file-for-fake-video-capture={clip}"]
        )
        yield chromium, clip
        chromium.close()


def frame_number(page) -> int:
    text = page.inner_text("#frame")
    return int(text) if text.isdigit() else -1


def test_the_page_recognises_the_camera_resets_and_says_when_the_server_is_full(browser, tmp_path):
    chromium, clip = browser
    checkpoint = clip_fitted_checkpoint(tmp_path / "online.safetensors", clip)
    model, info = tsm.load_checkpoint(checkpoint)
    # The camera's frames do change the model's label (so the page has something to show).
    frames = tsm.read_frames(clip, range(tsm.probe(clip).num_frames))
    transform = tsm.data.frame_transform(info.data_config)
    streamer = StreamingRecognizer(model)
    assert len({int(streamer.step(transform(f)[None]).argmax()) for f in frames}) >= 2
    app = create_app(model, info, settings=ServeSettings(max_streams=1, smooth_window=1, agree=1))
    with running_server(app) as address:
        page = chromium.new_page(viewport={"width": 1280, "height": 720})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"http://{address}/")
        page.wait_for_selector("body[data-state=connected]", timeout=20_000)
        assert page.inner_text("#state-text") == "Connected"
        page.wait_for_function("Number(document.getElementById('frame').textContent) >= 5", timeout=20_000)
        labels = set()
        for _ in range(200):  # the clip shows the four classes one after another, about 4 s
            labels.add(page.inner_text("#label"))
            if len(labels & set(info.class_names)) >= 2:
                break
            page.wait_for_timeout(50)
        assert len(labels & set(info.class_names)) >= 2, labels
        assert re.fullmatch(r"\d+\.\d", page.inner_text("#fps")) and float(page.inner_text("#fps")) > 0
        assert re.fullmatch(r"\d+ms", page.inner_text("#latency"))
        assert page.locator("#top li").count() == 4
        assert "mirrored" in page.get_attribute("#preview", "class")
        # Reset: the server starts the stream afresh, numbering its frames from 0 again.
        page.wait_for_function("Number(document.getElementById('frame').textContent) >= 30", timeout=30_000)
        before = frame_number(page)
        page.click("#reset-button")
        page.wait_for_function(
            f"(n => n >= 0 && n < {before} - 10)(Number(document.getElementById('frame').textContent || -1))",
            timeout=20_000,
        )
        page.screenshot(path=str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
        # A second page finds the only slot taken.
        second = chromium.new_page()
        second.goto(f"http://{address}/")
        second.wait_for_selector("body[data-state=full]", timeout=20_000)
        assert second.inner_text("#state-text").startswith("Server full: all 1 streams are taken")
        # When the first page leaves, the second one gets the slot by reconnecting.
        page.close()
        assert second.inner_text("#reset-button") == "Reconnect"
        second.click("#reset-button")
        second.wait_for_selector("body[data-state=connected]", timeout=20_000)
        second.wait_for_function("Number(document.getElementById('frame').textContent) >= 1", timeout=20_000)
        assert second.inner_text("#reset-button") == "Reset"
        assert not errors, errors
        second.close()


def test_the_pages_label_smoothing_is_tsms(browser, tmp_path):
    """app.js's LabelSmoother against tsm.models.LabelSmoother on random logits with resets."""
    chromium, _ = browser
    checkpoint = tiny_checkpoint(tmp_path / "online.safetensors")
    app = create_app(*tsm.load_checkpoint(checkpoint))
    generator = torch.Generator().manual_seed(3)
    cases = [
        (window, agree, torch.randn(40, 5, generator=generator))
        for window, agree in [(1, 1), (12, 2), (4, 3)]
    ]
    with running_server(app) as address:
        page = chromium.new_page()
        page.goto(f"http://{address}/")
        script = """async ([window, agree, rows, resetAt]) => {
            const { LabelSmoother } = await import('./app.js');
            const smoother = new LabelSmoother(window, agree);
            return rows.map((row, t) => {
                if (t === resetAt) smoother.reset();
                return smoother.update(row);
            });
        }"""
        for window, agree, logits in cases:
            shown = page.evaluate(script, [window, agree, logits.tolist(), 25])
            reference = LabelSmoother(window, agree)
            expected = []
            for t, row in enumerate(logits):
                if t == 25:
                    reference.reset()
                expected.append(int(reference.update(row[None])[0]))
            assert shown == expected, (window, agree)
            assert len(set(expected)) > 1
        page.close()

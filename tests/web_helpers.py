"""Headless Chromium (Debian's, driven by Playwright) on web export folders served on 127.0.0.1:
shared by the web tests and benchmarks/bench_web.py."""

from __future__ import annotations

import base64
import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tsm.apps.static_server import make_server

CHROMIUM = Path("/usr/bin/chromium")
HARNESS = Path(__file__).parent / "web" / "harness.html"
# Quiet, offline Chromium: without the networking flags it keeps calling home on a closed network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'tsm[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


@contextlib.contextmanager
def served(folder: Path, isolated: bool = True) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1 (with or without COOP/COEP); yield its URL."""
    server = make_server(folder, port=0, isolated=isolated)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def playwright_session() -> Iterator:
    """Playwright (sync API; one per process at a time: launch every browser from it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@contextlib.contextmanager
def chromium(playwright, extra_flags: tuple[str, ...] = ()) -> Iterator:
    """A headless Chromium browser, closed on exit."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, *extra_flags])
    try:
        yield browser
    finally:
        browser.close()


def add_harness(folder: Path) -> None:
    """Put the test harness page next to tsm.js in a served copy of an export."""
    shutil.copyfile(HARNESS, folder / HARNESS.name)


def open_harness(browser, url: str, requests: list[str] | None = None):
    """A page on the harness, with tsm.js imported (``window.tsm``); page errors raise."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if requests is not None:
        page.on("request", lambda request: requests.append(request.url))
    page.goto(url + HARNESS.name)
    page.wait_for_function("window.tsm !== undefined", timeout=30_000)
    assert not errors, errors
    return page


def rgb_payload(frame: np.ndarray) -> dict:
    """A uint8 (H, W, 3) frame for ``window.imageFromRgb`` (its exact bytes, base64)."""
    height, width = frame.shape[:2]
    data = base64.b64encode(np.ascontiguousarray(frame, dtype=np.uint8).tobytes()).decode()
    return {"data": data, "width": width, "height": height}

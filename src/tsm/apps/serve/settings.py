"""``ServeSettings``: the limits and options of one ``tsm serve`` app, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from tsm.models import DEMO_AGREE, DEMO_SMOOTH_WINDOW

MIB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """What the app accepts and how it recognises; the server's address and TLS are uvicorn's.

    Attributes:
        max_streams: WebSocket streams served at once; one more is closed with code 1013.
        max_batch: the most streams stacked into one engine call (the longest-waiting first);
            None: as many as pay, from the engine's measured cost per frame at each batch size
            (:class:`~tsm.apps.serve.batch_policy.BatchPolicy`). 1 recognises one stream at a
            time (no batching).
        every: offline (sliding-window) checkpoints: recognise every k-th frame; None: every T-th.
        idle_timeout: seconds without a message after which a stream is closed and its slot freed.
        max_frame_bytes, max_frame_pixels: the largest encoded frame and its width x height.
        max_upload_bytes: the largest video ``POST /predict`` takes.
        token: when set, required as ``?token=`` by the stream, /info, /metrics and /predict.
        smooth_window, agree: the page's label smoothing (``tsm stream``'s ``--smooth-window``,
            ``--agree``; the reference demo's 12 and 2).
        topk: classes in each reply's ``top`` list.
    """

    max_streams: int = 8
    max_batch: int | None = None
    every: int | None = None
    idle_timeout: float = 60.0
    max_frame_bytes: int = 8 * MIB
    max_frame_pixels: int = 3840 * 2160
    max_upload_bytes: int = 100 * MIB
    token: str | None = None
    smooth_window: int = DEMO_SMOOTH_WINDOW
    agree: int = DEMO_AGREE
    topk: int = 5

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_frame_bytes", "max_frame_pixels", "max_upload_bytes"):
            _check_positive(name, getattr(self, name))
        for name in ("smooth_window", "agree", "topk"):
            _check_positive(name, getattr(self, name))
        for name in ("every", "max_batch"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be a positive number of seconds, got {self.idle_timeout!r}")
        if self.token is not None and not self.token:
            raise ValueError("the token must not be empty: omit it to serve without one")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")

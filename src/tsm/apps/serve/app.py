"""``create_app``: the ASGI app of ``tsm serve`` (page, stream protocol, HTTP endpoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from tsm.apps.serve.access import TOKEN_HINT, token_matches
from tsm.apps.serve.batcher import SlotRunner, StreamBatcher
from tsm.apps.serve.metrics import ServeMetrics
from tsm.apps.serve.served_model import ServedModel, serve_model
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.step_runner import StepRunner
from tsm.apps.serve.stream_socket import serve_stream
from tsm.apps.serve.upload import UploadPredictor
from tsm.apps.serve.window_runner import WindowRunner
from tsm.checkpoint import CheckpointInfo
from tsm.data import frame_transform
from tsm.export.web import PAGE_ASSETS
from tsm.inference import DEFAULT_ENGINE, Precision, Predictor, StreamingEngine
from tsm.models import Recognizer


def create_app(
    model: Recognizer | str | Path,
    info: CheckpointInfo | None = None,
    *,
    engine: StreamingEngine | str = DEFAULT_ENGINE,
    settings: ServeSettings | None = None,
    name: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    precision: Precision = "fp32",
) -> FastAPI:
    """The live-recognition app for ``model``: a Recognizer (with its checkpoint's ``info``:
    classes, pipeline), a checkpoint or published name, or an exported file.

    ``engine``: an engine name ("auto", the default everywhere, "torch", "onnxruntime", ...) or a
    streaming engine object; streams and uploads run on it (offline models on sliding windows
    through the clip engine of that name). ``threads``: the engine's CPU threads. ``precision``:
    "fp32", "bf16" or "auto" (:func:`~tsm.inference.streaming_engine`). Mount the app in another
    ASGI server or run it with uvicorn.
    """
    settings = settings or ServeSettings()
    served = serve_model(
        model, info, engine=engine, name=name, device=device, threads=threads, precision=precision
    )
    metrics = ServeMetrics(settings.max_streams)
    batcher = StreamBatcher(
        _runner(served, settings),
        frame_transform(served.data_config),
        served.class_names,
        served.device,
        settings,
        metrics,
    )
    predictor = Predictor(served.uploads, served.info)  # the streams' runtime, on whole videos
    uploads = UploadPredictor(predictor, batcher, settings.max_upload_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close_all(1001, "the server is shutting down")
        await batcher.shutdown()

    def require_token(request: Request) -> None:
        if not token_matches(request.query_params.get("token"), settings.token):
            raise HTTPException(status_code=401, detail=TOKEN_HINT)

    app = FastAPI(title="tsm serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.served = served
    app.state.settings = settings
    guarded = [Depends(require_token)]
    app.get("/healthz")(lambda: {"status": "ok"})
    app.get("/info", dependencies=guarded)(lambda: _info(served, settings, batcher))
    app.get("/page-config.json")(lambda: _page_config(settings))
    app.get("/metrics", dependencies=guarded)(
        lambda: Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)
    )
    app.post("/predict", dependencies=guarded)(uploads.__call__)

    @app.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        await serve_stream(websocket, batcher, settings)

    app.mount("/", StaticFiles(directory=PAGE_ASSETS, html=True), name="page")
    return app


def _runner(served: ServedModel, settings: ServeSettings) -> SlotRunner:
    if served.kind == "stream":
        return StepRunner(served.engine, settings.max_streams)
    every = settings.every or served.engine.num_segments
    return WindowRunner(served.engine, settings.max_streams, served.frame_size, every, served.device)


def _info(served: ServedModel, settings: ServeSettings, batcher: StreamBatcher) -> dict[str, Any]:
    info = {**served.describe(), "max_streams": settings.max_streams, "batching": batcher.policy.describe()}
    if served.kind == "clip":
        info["every"] = settings.every or served.engine.num_segments
        info["offline_reason"] = served.offline_reason
    return info


def _page_config(settings: ServeSettings) -> dict[str, Any]:
    """Which backend the page loads, and its label smoothing."""
    return {"backend": "server", "smoothWindow": settings.smooth_window, "agree": settings.agree}

"""``create_app``: the ASGI app of ``tsm serve`` (page, stream protocol, HTTP endpoints)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from tsm.apps.serve.access import TOKEN_HINT, token_matches
from tsm.apps.serve.batcher import StreamBatcher
from tsm.apps.serve.live_model import ModelSwitch, live_model
from tsm.apps.serve.metrics import ServeMetrics
from tsm.apps.serve.served_model import ServedModel, serve_model
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.stream_socket import serve_stream
from tsm.apps.serve.teach_routes import TeachRoutes, add_teach_routes, open_teach
from tsm.apps.serve.upload import UploadPredictor
from tsm.apps.teach import TeachOptions
from tsm.checkpoint import CheckpointInfo
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
    teach: TeachOptions | str | Path | None = None,
) -> FastAPI:
    """The live-recognition app for ``model``: a Recognizer (with its checkpoint's ``info``:
    classes, pipeline), a checkpoint or published name, or an exported file.

    ``engine``: an engine name ("auto", the default everywhere, "torch", "onnxruntime", ...) or a
    streaming engine object; streams and uploads run on it (offline models on sliding windows
    through the clip engine of that name). ``threads``: the engine's CPU threads. ``precision``:
    "fp32", "bf16" or "auto" (:func:`~tsm.inference.streaming_engine`). ``teach``: a
    teach project folder (or :class:`~tsm.apps.teach.TeachOptions`): ``model`` is then the base
    that the ``/teach/*`` endpoints fine-tune, and the project's last taught model is served
    (docs/teach.md). Mount the app in another ASGI server or run it with uvicorn.
    """
    settings = settings or ServeSettings()
    engine_name = engine if isinstance(engine, str) else DEFAULT_ENGINE  # what taught models run on
    session = None
    if teach is not None:
        teach = teach if isinstance(teach, TeachOptions) else TeachOptions(Path(teach))
        session, model, info, name = open_teach(teach, model, info, engine_name, threads, name)
    served = serve_model(
        model, info, engine=engine, name=name, device=device, threads=threads, precision=precision
    )
    if session is not None:
        session.prepare_in_background()  # the features' network, while the first clips are recorded
    metrics = ServeMetrics(settings.max_streams)
    batcher = StreamBatcher(live_model(served, settings), settings, metrics)
    predictor = Predictor(served.uploads, served.info)  # the streams' runtime, on whole videos
    uploads = UploadPredictor(predictor, batcher, settings.max_upload_bytes)
    models = ModelSwitch(served, batcher, uploads, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if session is not None:
            await asyncio.to_thread(session.close)
        await batcher.close_all(1001, "the server is shutting down")
        await batcher.shutdown()

    def require_token(request: Request) -> None:
        if not token_matches(request.query_params.get("token"), settings.token):
            raise HTTPException(status_code=401, detail=TOKEN_HINT)

    app = FastAPI(title="tsm serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.models = models  # models.current: the served model
    app.state.settings = settings
    guarded = [Depends(require_token)]
    app.get("/healthz")(lambda: {"status": "ok"})
    app.get("/info", dependencies=guarded)(models.info)
    app.get("/page-config.json")(lambda: _page_config(settings, teach=session is not None))
    app.get("/metrics", dependencies=guarded)(
        lambda: Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)
    )
    app.post("/predict", dependencies=guarded)(uploads.__call__)
    if session is not None:

        def serve(taught: Recognizer, taught_info: CheckpointInfo, run: str) -> ServedModel:
            options = {"engine": engine_name, "name": run, "device": device, "threads": threads}
            options["precision"] = precision
            return serve_model(taught, taught_info, **options)

        add_teach_routes(app, TeachRoutes(session, models, serve, settings))

    @app.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        await serve_stream(websocket, batcher, settings)

    app.mount("/", StaticFiles(directory=PAGE_ASSETS, html=True), name="page")
    return app


def _page_config(settings: ServeSettings, teach: bool) -> dict[str, Any]:
    """Which backend the page loads, its label smoothing, and whether it shows the Teach panel."""
    config = {"backend": "server", "smoothWindow": settings.smooth_window, "agree": settings.agree}
    return {**config, "teach": True} if teach else config

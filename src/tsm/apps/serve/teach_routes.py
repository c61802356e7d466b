"""Teach mode of ``tsm serve`` (``--teach DIR``): the ``/teach/*`` endpoints the page's Teach panel
uses, on a :class:`tsm.apps.teach.TeachSession` whose taught models replace the served one live.

Teach mode changes what the server runs and writes files, so its endpoints answer only clients on
this machine (127.0.0.1, ::1), or, when the server has a token, clients that give it.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from tsm.apps.serve.access import TOKEN_HINT, token_matches
from tsm.apps.serve.live_model import ModelSwitch
from tsm.apps.serve.served_model import ServedModel
from tsm.apps.serve.server import LOCAL_HOSTS
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.upload import UploadRefused, receive_upload
from tsm.apps.teach import (
    DOWNLOADS,
    ClipRefused,
    RunBusy,
    TeachOptions,
    TeachProject,
    TeachSession,
    download_file,
)
from tsm.checkpoint import CheckpointInfo, load_checkpoint
from tsm.errors import one_line
from tsm.inference import is_exported_file, prediction_data_config
from tsm.models import Recognizer

Serve = Callable[[Recognizer, CheckpointInfo, str], ServedModel]  # model, info, name
LOCAL_ONLY = "teach mode answers only on this machine (127.0.0.1) unless the server has a --token"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _access(settings: ServeSettings):
    def check(request: Request) -> None:
        if settings.token is not None:
            if not token_matches(request.query_params.get("token"), settings.token):
                raise HTTPException(status_code=401, detail=TOKEN_HINT)
        elif request.client is None or request.client.host not in LOCAL_HOSTS:
            raise HTTPException(status_code=403, detail=LOCAL_ONLY)

    return check


def _clip_record(clip: Any) -> dict[str, Any]:
    return {**clip.to_dict(), "thumbnail": f"teach/clips/{clip.id}/thumbnail.jpg"}


def _listing(project: TeachProject) -> dict[str, Any]:
    clips = project.clips()
    classes: dict[str, int] = {}
    for clip in clips:
        classes[clip.label] = classes.get(clip.label, 0) + 1
    limits = project.limits
    return {
        "clips": [_clip_record(clip) for clip in clips],
        "classes": classes,
        "disk_mb": round(project.disk_bytes() / (1 << 20), 1),
        "limits": {
            "max_clip_seconds": limits.max_clip_seconds,
            "max_clips": limits.max_clips,
            "max_classes": limits.max_classes,
            "max_disk_mb": limits.max_disk_mb,
        },
    }


class TeachRoutes:
    """The endpoints of one session; ``serve(model, info, name)`` readies a taught model as the app
    serves models (its engine), and ``models`` switches to it on the app's event loop."""

    def __init__(
        self, session: TeachSession, models: ModelSwitch, serve: Serve, settings: ServeSettings
    ) -> None:
        self.session = session
        self.project = session.project
        self.models = models
        self.serve = serve
        self.settings = settings
        self.short_side = session.data_config.resize

    async def add_clip(self, request: Request, label: str = "") -> JSONResponse:
        with tempfile.TemporaryDirectory(prefix="tsm-teach-") as folder:
            path = Path(folder) / "upload"  # the client never names a server path
            try:
                await receive_upload(request, path, self.settings.max_upload_bytes)
                clip = await asyncio.to_thread(self.project.add_clip, label, path, self.short_side)
            except UploadRefused as refused:
                return _error(refused.status, str(refused))
            except ClipRefused as refused:
                return _error(422, f"cannot use the video: {refused}")
            except ValueError as error:
                return _error(400, str(error))
        return JSONResponse(_clip_record(clip), status_code=201)

    async def list_clips(self) -> dict[str, Any]:
        return await asyncio.to_thread(_listing, self.project)

    async def delete_clip(self, clip_id: str) -> JSONResponse:
        clip = await asyncio.to_thread(self.project.find_clip, clip_id)
        if clip is None:
            return _error(404, f"no clip {clip_id[:40]!r}: GET /teach/clips lists them")
        await asyncio.to_thread(self.project.delete_clip, clip)
        return JSONResponse({"deleted": clip.id})

    async def thumbnail(self, clip_id: str) -> Response:
        clip = await asyncio.to_thread(self.project.find_clip, clip_id)
        path = self.project.thumbnail(clip) if clip is not None else None
        if path is None:
            return _error(404, f"no thumbnail of clip {clip_id[:40]!r}")
        return FileResponse(path, media_type="image/jpeg")

    async def train(self) -> JSONResponse:
        loop = asyncio.get_running_loop()

        def install(model: Recognizer, info: CheckpointInfo, run: str) -> None:
            served = self.serve(model, info, run)  # in the run's thread: the export takes seconds
            asyncio.run_coroutine_threadsafe(self.models.switch(served), loop).result()

        try:
            run = self.session.start(install)
        except RunBusy as busy:
            return _error(409, str(busy))
        except ValueError as error:
            return _error(400, str(error))
        return JSONResponse({"run": run, "status": "teach/status"}, status_code=202)

    async def download(self, kind: str, run: str | None = None) -> Response:
        if kind not in DOWNLOADS:
            return _error(404, f"unknown download {kind!r}: use one of {', '.join(DOWNLOADS)}")
        run = run or self.session.served_run
        try:
            if run is None or not self.project.model_path(run).is_file():
                return _error(404, "no taught model yet: train first")
        except ValueError as error:
            return _error(404, str(error))
        try:
            path = await asyncio.to_thread(download_file, self.project, run, kind)
        except Exception as error:  # an export that cannot be made is an answer, not a crash
            return _error(503, f"cannot make the {kind} download: {one_line(error)}")
        return FileResponse(path, filename=path.name)


def add_teach_routes(app: FastAPI, routes: TeachRoutes) -> None:
    """Mount ``/teach/*`` on ``app``."""
    router = APIRouter(prefix="/teach", dependencies=[Depends(_access(routes.settings))])
    router.post("/clips")(routes.add_clip)
    router.get("/clips")(routes.list_clips)
    router.delete("/clips/{clip_id}")(routes.delete_clip)
    router.get("/clips/{clip_id}/thumbnail.jpg")(routes.thumbnail)
    router.post("/train")(routes.train)
    router.get("/status")(lambda: routes.session.status())
    router.get("/download/{kind}")(routes.download)
    app.include_router(router)


def open_teach(
    options: TeachOptions,
    model: Recognizer | str | Path,
    info: CheckpointInfo | None,
    engine: str,
    threads: int | None,
    name: str | None = None,
) -> tuple[TeachSession, Recognizer, CheckpointInfo | None, str | None]:
    """The session of the project ``options.folder`` on the base ``model`` (a Recognizer with its
    ``info``, or a checkpoint or published name; its features run on ``engine``), and what to
    serve first, with its info and name: the project's last taught model (named by its run), else
    the base (``name``, else its file's or published name)."""
    recorded = None
    if isinstance(model, str | Path):
        name = name or Path(str(model)).name
        if is_exported_file(model):
            raise ValueError(
                f"teaching fine-tunes a checkpoint, and {model} is an exported file: give the checkpoint"
            )
        recorded = str(Path(model).resolve()) if Path(model).is_file() else str(model)
        model, info = load_checkpoint(model)
    project = TeachProject(options.folder, recorded, options.limits)
    config = prediction_data_config(info, model.num_segments)
    session = TeachSession(project, model, config, options.fit, engine, threads)
    taught = project.served_model_path()
    if taught is None:
        return session, model, info, name
    served, served_info = load_checkpoint(taught)
    return session, served, served_info, taught.stem

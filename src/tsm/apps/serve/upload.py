"""``POST /predict``: a whole video, as the request body or as a file field of a multipart form
(what HTML forms and ``curl -F file=@video.mp4`` send), classified as ``tsm predict --json`` does."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from tsm.apps.serve.batcher import StreamBatcher
from tsm.inference import Predictor

FORM_HINT = (
    "send the video as the request body, or as a file field of a multipart form (curl -F file=@video.mp4)"
)


class UploadRefused(Exception):
    """An upload that cannot be predicted on: its HTTP status and the one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _limited(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, refused as soon as it passes the limit."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise UploadRefused(413, f"the upload is over the limit of {max_bytes} bytes")
        yield chunk


async def receive_upload(request: Request, path: Path, max_bytes: int) -> None:
    """Write the uploaded video to ``path``: the body itself, or the form's one file field, up to
    ``max_bytes``; :class:`UploadRefused` says why not (too large, no file, empty)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UploadRefused(413, f"the upload is over the limit of {max_bytes} bytes")
    body = _limited(request, max_bytes)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        with path.open("wb") as file:
            async for chunk in body:
                file.write(chunk)
    else:
        try:
            form = await MultiPartParser(request.headers, body, max_files=1, max_fields=16).parse()
        except MultiPartException as error:
            raise UploadRefused(
                400, f"cannot read the multipart form: {error.message}; {FORM_HINT}"
            ) from None
        try:
            files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
            if not files:
                raise UploadRefused(400, f"the form has no file field; {FORM_HINT}")
            with path.open("wb") as file:
                await asyncio.to_thread(shutil.copyfileobj, files[0].file, file)
        finally:
            await form.close()
    if path.stat().st_size == 0:
        raise UploadRefused(400, f"empty upload: {FORM_HINT}")


class UploadPredictor:
    """Streams an upload into a temporary file (removed afterwards), within a byte limit, then
    predicts on the model's worker thread (the streams' engine), one upload at a time."""

    def __init__(self, predictor: Predictor, batcher: StreamBatcher, max_bytes: int) -> None:
        self.predictor = predictor  # replaced on the worker thread when the served model changes
        self.batcher = batcher
        self.max_bytes = max_bytes
        self._busy = asyncio.Lock()

    async def __call__(self, request: Request) -> JSONResponse:
        if self._busy.locked():
            return JSONResponse({"error": "busy with another upload: try again"}, status_code=503)
        async with self._busy:
            with tempfile.TemporaryDirectory(prefix="tsm-serve-") as folder:
                path = Path(folder) / "upload"  # the client never names a server path
                try:
                    await receive_upload(request, path, self.max_bytes)
                except UploadRefused as refused:
                    return JSONResponse({"error": str(refused)}, status_code=refused.status)
                [prediction] = await self.batcher.in_worker(lambda: self.predictor.predict([path]))
        name = request.query_params.get("name", "upload")  # only echoed, never used as a path
        record = {**prediction.to_dict(), "path": name}
        if prediction.error is not None:
            record["error"] = prediction.error.replace(str(path), name)
        return JSONResponse(record, status_code=422 if prediction.error else 200)

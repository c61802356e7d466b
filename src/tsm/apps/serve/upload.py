"""``POST /predict``: a whole video in the request body, classified as ``tsm predict --json`` does."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse

from tsm.apps.serve.batcher import StreamBatcher
from tsm.inference import Predictor


class UploadPredictor:
    """Streams an upload into a temporary file (removed afterwards), within a byte limit, then
    predicts on the model's worker thread, one upload at a time."""

    def __init__(self, predictor: Predictor, batcher: StreamBatcher, max_bytes: int) -> None:
        self.predictor = predictor
        self.batcher = batcher
        self.max_bytes = max_bytes
        self._busy = asyncio.Lock()

    def _too_large(self) -> JSONResponse:
        message = f"the upload is over the limit of {self.max_bytes} bytes"
        return JSONResponse({"error": message}, status_code=413)

    async def __call__(self, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return self._too_large()
        if self._busy.locked():
            return JSONResponse({"error": "busy with another upload: try again"}, status_code=503)
        async with self._busy:
            with tempfile.TemporaryDirectory(prefix="tsm-serve-") as folder:
                path = Path(folder) / "upload"  # the client never names a server path
                size = 0
                with path.open("wb") as file:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > self.max_bytes:
                            return self._too_large()
                        file.write(chunk)
                if size == 0:
                    message = "empty request: send the video file as the request body"
                    return JSONResponse({"error": message}, status_code=400)
                [prediction] = await self.batcher.in_worker(self.predictor.predict, [path])
        name = request.query_params.get("name", "upload")  # only echoed, never used as a path
        record = {**prediction.to_dict(), "path": name}
        if prediction.error is not None:
            record["error"] = prediction.error.replace(str(path), name)
        return JSONResponse(record, status_code=422 if prediction.error else 200)

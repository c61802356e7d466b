"""``/ws/stream``: frames in (binary JPEG/PNG), one JSON reply per recognised frame out."""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from tsm.apps.serve.access import TOKEN_HINT, token_matches
from tsm.apps.serve.batcher import StreamBatcher
from tsm.apps.serve.replies import error_reply
from tsm.apps.serve.settings import ServeSettings
from tsm.apps.serve.streams import Stream

CONTROL_HINT = 'text messages must be the control message {"reset": true}; send frames as binary JPEG or PNG'


async def serve_stream(websocket: WebSocket, batcher: StreamBatcher, settings: ServeSettings) -> None:
    """One client's stream, from the handshake to the close (a slot is held in between)."""
    await websocket.accept()
    if not token_matches(websocket.query_params.get("token"), settings.token):
        await websocket.close(1008, TOKEN_HINT)
        return
    stream = batcher.open(with_logits=websocket.query_params.get("logits") in ("1", "true"))
    if stream is None:
        reason = f"server full: all {settings.max_streams} streams are taken, try again later"
        await websocket.close(1013, reason)
        return
    sender = asyncio.create_task(_send_replies(websocket, stream, batcher))
    try:
        if await _receive_messages(websocket, stream, batcher, settings.idle_timeout):
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await websocket.close(stream.close_code, stream.close_reason)
    finally:
        sender.cancel()
        batcher.close(stream)


async def _receive_messages(
    websocket: WebSocket, stream: Stream, batcher: StreamBatcher, idle_timeout: float
) -> bool:
    """Read messages until the client leaves (False) or the server closes the stream (True)."""
    closing = asyncio.ensure_future(stream.closing.wait())
    try:
        while True:
            receive = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait(
                {receive, closing}, timeout=idle_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if receive not in done:
                receive.cancel()
                stream.request_close(1000, f"no message for {idle_timeout:g} s: the stream was closed")
                return True
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return False
            if message.get("bytes") is not None:
                batcher.submit(stream, message["bytes"])
            else:
                _control(message.get("text") or "", stream, batcher)
    finally:
        closing.cancel()


def _control(text: str, stream: Stream, batcher: StreamBatcher) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and value.keys() == {"reset"} and value["reset"] is True:
        batcher.reset(stream)
    else:
        batcher.metrics.bad_messages.inc()
        stream.post(error_reply(f"{CONTROL_HINT} (got {text[:60]!r})"))


async def _send_replies(websocket: WebSocket, stream: Stream, batcher: StreamBatcher) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        while True:
            reply = await stream.outbox.get()
            await websocket.send_text(json.dumps(reply))
            batcher.reply_sent(stream)

"""Server-Sent Events on the wire: how an event is written, and a response that streams them,
notices at once when the client leaves, and ends when the server stops.

Starlette's `StreamingResponse` learns that a client left only when its next write fails
(ASGI 2.4), which for a quiet stream is the next heartbeat; and uvicorn, stopping, waits
for every open response to end, which a stream never would. `EventStream` listens for the
disconnect while it streams, and ends when `Streams.stop()` is called: `Server` calls it
first thing when uvicorn shuts down, before uvicorn waits for open responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import uvicorn
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("jobkit.http.sse")

MEDIA_TYPE: Final = "text/event-stream"
RETRY_MS: Final = 3000  # the reconnection delay clients are told to use
HEARTBEAT: Final = b": keep-alive\n\n"


def event(name: str, data: Any, *, event_id: int | str | None = None) -> bytes:
    """One event: `event:` `name`, `data:` `data` as compact JSON (one line), and `id:`
    when given (a client echoes the last one in `Last-Event-ID` when it reconnects)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {name}\n" if event_id is None else f"id: {event_id}\nevent: {name}\n"
    return f"{head}data: {body}\n\n".encode()


class EventStream:
    """An ASGI response streaming `chunks` (from `event`, or `HEARTBEAT`) after a `retry:`
    hint, until they end, the client leaves, or `stopping` is set; `on_close` runs once at
    the end in every case."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        stopping: asyncio.Event,
        on_close: Callable[[], None],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.chunks = chunks
        self.stopping = stopping
        self.on_close = on_close
        self.headers = {
            "content-type": MEDIA_TYPE,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # proxies such as nginx: pass each event on at once
            **(headers or {}),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
                }
            )
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            await self._stream(receive, send)
        finally:
            self.on_close()
            await _close(self.chunks)

    async def _stream(self, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        left = asyncio.ensure_future(_disconnected(receive))
        stop = asyncio.ensure_future(self.stopping.wait())
        tasks = (pump, left, stop)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if pump in done and not pump.cancelled() and pump.exception() is not None:
            # Headers are sent: the client sees the stream end, and reconnects.
            log.error("an event stream failed", exc_info=pump.exception())
        if left not in done:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        await send(_body(f"retry: {RETRY_MS}\n\n".encode()))
        async for chunk in self.chunks:
            await send(_body(chunk))


def _body(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Run the generator's `finally` (its watch is left) now, not when it is collected."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


class Server(uvicorn.Server):
    """uvicorn's server, which first calls `stop_streams` when it shuts down: uvicorn waits
    for open responses to end before it stops, and a stream never would. `jobkit serve`
    passes `app.on_shutdown`, which also starts push dispatch's grace period."""

    def __init__(self, config: uvicorn.Config, stop_streams: Callable[[], None]) -> None:
        super().__init__(config)
        self.stop_streams = stop_streams

    async def shutdown(self, sockets: Any = None) -> None:
        self.stop_streams()
        await super().shutdown(sockets)

"""Request bodies over a size limit are refused, whether declared (Content-Length) or streamed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message

from jobkit_http.problems import Problem


def limited(request: Request, limit: int) -> Request:
    """The same request, reading at most `limit` body bytes; past that, a `413` problem."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    receive = request.receive
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
        return message

    return Request(request.scope, counted)


def _too_large(limit: int) -> Problem:
    return Problem(413, "too-large", f"the request body is larger than {limit} bytes")

"""Request limits: bodies over a size (declared or streamed) and JSON nested too deeply."""

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


# Deeper JSON is refused at the boundary: the core walks values recursively (validation,
# freezing, storage), and a body nested near the interpreter's recursion limit would crash
# those walks instead of being refused.
MAX_JSON_DEPTH = 64


def too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests objects and arrays deeper than `limit` (iterative)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False

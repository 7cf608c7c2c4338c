"""RFC 9457 problem details: every error the API returns, and the handlers that produce them."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("jobkit.http")

MEDIA_TYPE = "application/problem+json"
TYPES = "https://jobkit.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raised by a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extensions = extensions


def response(problem: Problem, instance: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": TYPES + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(problem.extensions)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def invalid(problems: Any, detail: str = "the request has invalid fields") -> Problem:
    """422 with one entry per invalid field (`errors.Invalid.problems`)."""
    return Problem(
        422,
        "invalid-request",
        detail,
        errors=[{"field": p.field, "message": p.message} for p in problems],
    )


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return response(exc, request.url.path)


_KINDS = {404: "not-found", 405: "method-not-allowed"}


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = f"no route {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(exc.detail)
    problem = Problem(
        exc.status_code,
        _KINDS.get(exc.status_code, "http-error"),
        detail,
        headers=dict(exc.headers or {}),
    )
    return response(problem, request.url.path)


async def on_error(request: Request, exc: Exception) -> Response:
    """A bug: log everything, show nothing of it."""
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path},
    )
    # Starlette re-raises the error after this answer and uvicorn then drops the connection;
    # `Connection: close` tells the client, which would otherwise reuse it and be reset.
    problem = Problem(
        500,
        "internal-error",
        "an internal error occurred; it has been logged",
        headers={"Connection": "close"},
    )
    return response(problem, request.url.path)

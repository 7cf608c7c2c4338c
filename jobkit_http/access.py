"""Each request observed: the context every line it causes carries (request id, trace,
user), its access log line, its metrics; and the authenticator that names the user."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any, Final

from returns.result import Failure, Result, Success
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobkit.worker import journal
from jobkit_http import auth
from jobkit_http.metrics import Metrics
from jobkit_http.service import Authenticator

log = logging.getLogger("jobkit.http")

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE: Final = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
# Probes and scrapes come every few seconds: their lines are DEBUG, not INFO.
QUIET_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def trace_of(headers: dict[str, str]) -> dict[str, Any]:
    """The request's trace: from W3C `traceparent`, else Google's `X-Cloud-Trace-Context`;
    `{}` when neither is there or well formed."""
    if "traceparent" not in headers and "x-cloud-trace-context" not in headers:
        return {}
    parent = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip())
    if parent and parent[1] != "ff" and parent[2] != "0" * 32 and parent[3] != "0" * 16:
        return {
            "trace": parent[2],
            "spanId": parent[3],
            "traceSampled": bool(int(parent[4], 16) & 1),
        }
    cloud = _CLOUD_TRACE.fullmatch(headers.get("x-cloud-trace-context", "").strip())
    if cloud:
        found: dict[str, Any] = {"trace": cloud[1].lower()}
        if cloud[2] is not None and int(cloud[2]) < 1 << 64:
            found["spanId"] = f"{int(cloud[2]):016x}"
        if cloud[3] is not None:
            found["traceSampled"] = cloud[3] == "1"
        return found
    return {}


# The request headers this middleware reads; the others are not decoded.
_WANTED: Final = frozenset(
    {b"x-request-id", b"traceparent", b"x-cloud-trace-context", b"user-agent"}
)
# Request ids made here: this process's random prefix and a count (unique without a
# system call per request).
_PREFIX: Final = os.urandom(5).hex()
_NUMBERS = itertools.count(1)


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _WANTED
    }


def _new_id() -> str:
    return f"{_PREFIX}{next(_NUMBERS):06x}"


class Observed:
    """ASGI middleware: binds the request's context (`requestId`, the trace; the user once
    authenticated) for every line it causes, answers with `X-Request-Id`, logs one access
    line and counts the request by its route template (bounded), method and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._templates: dict[object, str] | None = None  # one middleware per app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        given = headers.get("x-request-id", "")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else _new_id()
        # Set for the rest of this request's task, not reset on the way out: the server's
        # handler of unhandled errors, outside this middleware, logs with it too.
        bound = journal.begin(requestId=request_id, **trace_of(headers))
        started = time.perf_counter()
        status = 500
        size = 0

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = self._route(scope)
            method: str = scope["method"]
            self.metrics.on_request(route, method, status, seconds)
            if self.access_log:
                self._log(scope, headers, route, status, seconds, size, bound)

    def _log(
        self,
        scope: Scope,
        headers: dict[str, str],
        route: str,
        status: int,
        seconds: float,
        size: int,
        bound: dict[str, Any],
    ) -> None:
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if not log.isEnabledFor(level):
            return
        query = _redacted(scope["query_string"].decode("latin-1"))
        path = scope["path"] + (f"?{query}" if query else "")
        client = scope.get("client")
        log.log(
            level,
            "%s %s %d in %.3g ms",
            scope["method"],
            path,
            status,
            seconds * 1000,
            extra={
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "seconds": round(seconds, 6),
                "userId": bound.get("userId"),
                "httpRequest": {
                    "requestMethod": scope["method"],
                    "requestUrl": path,
                    "status": status,
                    "responseSize": str(size),
                    "latency": f"{seconds:.6f}s",
                    "userAgent": headers.get("user-agent"),
                    "remoteIp": client[0] if client else None,
                    "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                },
            },
        )

    def _route(self, scope: Scope) -> str:
        """The matched route's template: the router leaves its endpoint in the scope."""
        if self._templates is None:
            self._templates = {route.endpoint: route.path for route in scope["app"].router.routes}
        return self._templates.get(scope.get("endpoint"), "unmatched")


class Identified:
    """An authenticator whose verdicts are logged: a refusal at WARNING with its reason (an
    `AuthFailure`'s detail, which never holds the token), and the user it names bound to
    the request's context, so every later line of the request says who acted."""

    def __init__(self, inner: Authenticator) -> None:
        self.inner = inner

    async def authenticate(
        self, authorization: str | None
    ) -> Result[auth.Principal, auth.AuthFailure]:
        answer = await self.inner.authenticate(authorization)
        match answer:
            case Success(principal):
                journal.update(userId=principal.user_id)
            case Failure(failure):
                log.warning(
                    "authentication failed: %s",
                    failure.detail,
                    extra={"reason": failure.detail, "status": failure.status},
                )
        return answer


SECRET_PARAMETERS = frozenset({"signature"})  # a signed upload URL's: as good as the URL


def _redacted(query: str) -> str:
    """The query string with the values of `SECRET_PARAMETERS` replaced, for the log."""
    if "signature=" not in query:
        return query
    parts = []
    for part in query.split("&"):
        name = part.split("=", 1)[0]
        parts.append(f"{name}=REDACTED" if name in SECRET_PARAMETERS else part)
    return "&".join(parts)

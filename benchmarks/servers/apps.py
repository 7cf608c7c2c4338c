"""The two apps `benchmarks/http.py` compares, as uvicorn factories (`apps:jobkit`, `apps:bare`)."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobkit_http import settings
from jobkit_http.app import create_app


def jobkit() -> Starlette:
    """The real service on the embedded default, in the folder `JOBKIT_DATA` names."""
    return create_app(settings.from_env(os.environ))


def bare() -> Starlette:
    """A bare Starlette app answering the same status document, read once from a file."""
    body = Path(os.environ["BARE_BODY"]).read_bytes()

    async def status(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def unused(request: Request) -> Response:
        return JSONResponse({})

    return Starlette(routes=[Route("/api/v1/jobs/{job_id}/status", status), Route("/", unused)])

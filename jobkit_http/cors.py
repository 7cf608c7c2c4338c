"""Cross-origin access for browser front ends: an explicit allow-list of origins, or none."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from jobkit_http.settings import Settings

METHODS = ("GET", "POST", "PUT", "DELETE")
# What a front end sends: its bearer token, a JSON or multipart body, a key that makes a
# retried submission safe, and the ETag it polls with.
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-None-Match")
# What it must read: where a new job is, the ETag to poll with, how long to wait.
EXPOSED_HEADERS = ("ETag", "Location", "Retry-After", "Idempotent-Replayed")
PREFLIGHT_SECONDS = 600


def middleware(settings: Settings) -> list[Middleware]:
    """Starlette's CORS middleware for `settings.cors_origins`; none when the list is empty,
    so no cross-origin request is answered with CORS headers and browsers refuse them all.

    Bearer tokens travel in a header the page sets, not in cookies, so credentials mode is
    off: with it, a mistaken wildcard would hand any site the user's session. Origins are
    listed one by one (the settings refuse `*`)."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=list(METHODS),
            allow_headers=list(REQUEST_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False,
            max_age=PREFLIGHT_SECONDS,
        )
    ]

"""The page's static files, held in memory: each served with its content's hash in its URL
(so browsers keep it for a year and never ask again), gzipped when that is smaller."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from pathlib import Path
from typing import Final

import attrs
from starlette.requests import Request
from starlette.responses import Response

from jobkit_http.problems import Problem

FOLDER: Final = Path(__file__).with_name("static")
PREFIX: Final = "/static/"
FOREVER: Final = "public, max-age=31536000, immutable"
TYPES: Final = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@attrs.frozen(kw_only=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    version: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
    squeezed = gzip.compress(body, compresslevel=9, mtime=0)
    return Asset(
        body=body,
        gzipped=squeezed if len(squeezed) < len(body) else None,
        content_type=kind,
        version=hashlib.sha256(body).hexdigest()[:12],
    )


class Assets:
    """Every file under `static/`, by its path there (`vendor/msal-browser.min.js`)."""

    def __init__(self, folder: Path = FOLDER) -> None:
        self.files = {
            path.relative_to(folder).as_posix(): _asset(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix != ".md"
        }

    def url(self, name: str) -> str:
        """The file's URL, versioned by its content (a missing name is a bug: it raises)."""
        return f"{PREFIX}{name}?v={self.files[name].version}"

    def response(self, request: Request) -> Response:
        name = request.path_params["path"]
        asset = self.files.get(name)
        if asset is None:
            raise Problem(404, "not-found", f"no file {name!r} here")
        tag = f'"{asset.version}"'
        current = request.query_params.get("v") == asset.version
        headers = {"ETag": tag, "Cache-Control": FOREVER if current else "no-cache"}
        headers["Vary"] = "Accept-Encoding"
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers=headers, media_type=asset.content_type)

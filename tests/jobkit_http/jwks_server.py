"""A real OpenID metadata + JWKS server on 127.0.0.1, in a thread, for the auth tests."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import Loopback, Quiet

METADATA_PATH = "/tenant/v2.0/.well-known/openid-configuration"
JWKS_PATH = "/tenant/discovery/v2.0/keys"


class JwksServer(Loopback):
    """Serves `metadata` and `jwks` (both replaceable while running) and counts requests by path.

    `status` other than 200 makes every answer that status, to play a failing provider.
    """

    def __init__(self, *, issuer: str) -> None:
        self.issuer = issuer
        self.jwks: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    @property
    def metadata_url(self) -> str:
        return self.base_url + METADATA_PATH

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests[path]

    def answer(self, path: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests[path] += 1
        if self.status != 200:
            return self.status, None
        if path == METADATA_PATH:
            return 200, {"issuer": self.issuer, "jwks_uri": self.base_url + JWKS_PATH}
        if path == JWKS_PATH:
            return 200, self.jwks
        return 404, None


def _handler(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(Quiet):
        def do_GET(self) -> None:
            status, document = server.answer(self.path)
            self.reply(status, json.dumps(document).encode() if document is not None else b"")

    return Handler

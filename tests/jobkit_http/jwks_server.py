"""A real OpenID metadata + JWKS server on 127.0.0.1, in a thread, for the auth tests."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

METADATA_PATH = "/tenant/v2.0/.well-known/openid-configuration"
JWKS_PATH = "/tenant/discovery/v2.0/keys"


class JwksServer:
    """Serves `metadata` and `jwks` (both replaceable while running) and counts requests by path.

    `status` other than 200 makes every answer that status, to play a failing provider.
    """

    def __init__(self, *, issuer: str) -> None:
        self.issuer = issuer
        self.jwks: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def metadata_url(self) -> str:
        return self.base_url + METADATA_PATH

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

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
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, document = server.answer(self.path)
            body = json.dumps(document).encode() if document is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # keep test output clean

    return Handler

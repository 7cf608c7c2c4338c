"""A stub GCE metadata server on 127.0.0.1, in a thread: what Cloud Run's metadata server
tells Application Default Credentials (that it is there, the project, a service account's
access token). The auth library finds it through `GCE_METADATA_HOST` and `GCE_METADATA_IP`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROOT = "/computeMetadata/v1/"
ACCOUNT = ROOT + "instance/service-accounts/default/"


class MetadataServer:
    """Hands out `token` for the default service account of `project`; counts requests."""

    def __init__(self, *, token: str = "metadata-token", project: str = "test-project") -> None:
        self.token = token
        self.project = project
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def host(self) -> str:
        """`host:port`, the form `GCE_METADATA_HOST` and `GCE_METADATA_IP` take."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def environ(self) -> dict[str, str]:
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def start(self) -> MetadataServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests[path]

    def answer(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for a GET of `path`."""
        with self._lock:
            self.requests[path] += 1
        if path == "/":
            return 200, "text/plain", ""
        if path == ROOT + "project/project-id":
            return 200, "text/plain", self.project
        if path == ROOT + "universe/universe-domain":
            return 200, "text/plain", "googleapis.com"
        if path == ACCOUNT:
            account = {
                "email": f"jobkit@{self.project}.iam.gserviceaccount.com",
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                "aliases": ["default"],
            }
            return 200, "application/json", json.dumps(account)
        if path == ACCOUNT + "token":
            token = {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(token)
        return 404, "text/plain", "not found"


def _handler(server: MetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Metadata-Flavor") != "Google":
                status, kind, body = 403, "text/plain", "missing Metadata-Flavor: Google"
            else:
                status, kind, body = server.answer(self.path.split("?", 1)[0])
            data = body.encode()
            self.send_response(status)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return Handler

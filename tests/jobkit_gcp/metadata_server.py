"""A stub GCE metadata server on 127.0.0.1, in a thread: what Cloud Run's metadata server
tells Application Default Credentials (that it is there, the project, a service account's
access token). The auth library finds it through `GCE_METADATA_HOST` and `GCE_METADATA_IP`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler

from tests.loopback import Loopback, Quiet

ROOT = "/computeMetadata/v1/"
ACCOUNT = ROOT + "instance/service-accounts/default/"


class MetadataServer(Loopback):
    """Hands out `token` for the default service account of `project`; counts requests."""

    def __init__(self, *, token: str = "metadata-token", project: str = "test-project") -> None:
        self.token = token
        self.project = project
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    def environ(self) -> dict[str, str]:
        """`host:port` where `GCE_METADATA_HOST` and `GCE_METADATA_IP` want it."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

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
    class Handler(Quiet):
        def do_GET(self) -> None:
            if self.headers.get("Metadata-Flavor") != "Google":
                status, kind, body = 403, "text/plain", "missing Metadata-Flavor: Google"
            else:
                status, kind, body = server.answer(self.path.split("?", 1)[0])
            flavor = [("Metadata-Flavor", "Google")]
            self.reply(status, body.encode(), content_type=kind, headers=flavor)

    return Handler

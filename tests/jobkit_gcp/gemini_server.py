"""A stub Gemini on 127.0.0.1, in a thread: `generateContent` as Vertex AI and the Gemini
Developer API serve it, and the Developer API's Files API (resumable upload, get, delete).

It checks what a real endpoint would refuse (the caller's credentials, the request's
shape), records every request for the tests to inspect, and answers from a script of
`Reply` values, falling back to `default` once the script runs out.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import attrs

from tests.loopback import Loopback, Quiet

VERTEX_PATH = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):generateContent$"
)
DEVELOPER_PATH = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models/(?P<model>[^/:]+):generateContent$")
UPLOAD_START = re.compile(r"^/upload/(?P<version>v1[a-z0-9]*)/files$")
UPLOAD_SESSION = re.compile(r"^/upload-session/(?P<id>[a-z0-9]+)$")
FILE_PATH = re.compile(r"^/(?P<version>v1[a-z0-9]*)/files/(?P<id>[a-z0-9]+)$")


@attrs.frozen(kw_only=True)
class Reply:
    """One answer: `status` with a JSON `body` (or raw `text`), after `delay` seconds."""

    status: int = 200
    body: Any = None
    text: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@attrs.frozen(kw_only=True)
class Call:
    """One `generateContent` request as the stub received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    mode: str  # "vertex" or "developer"
    model: str
    version: str

    def parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = self.body["contents"][0]["parts"]
        return parts

    def document(self) -> dict[str, Any]:
        """The file part: `{"inlineData": ...}` or `{"fileData": ...}`."""
        return self.parts()[0]

    def inline_bytes(self) -> bytes:
        data = self.document()["inlineData"]
        return base64.urlsafe_b64decode(data["data"])  # either alphabet; the SDK's varies

    def mime_type(self) -> str:
        """The document part's MIME type (proto JSON accepts either spelling of the field)."""
        part = self.document().get("inlineData") or self.document()["fileData"]
        mime: str = part.get("mimeType", part.get("mime_type"))
        return mime

    def file_uri(self) -> str:
        part = self.document()["fileData"]
        uri: str = part.get("fileUri", part.get("file_uri"))
        return uri

    def prompt(self) -> str:
        text: str = self.parts()[1]["text"]
        return text

    def generation(self) -> dict[str, Any]:
        config: dict[str, Any] = self.body["generationConfig"]
        return config


# -- answers ----------------------------------------------------------------------------


def answer(
    output: Any,
    *,
    finish: str = "STOP",
    prompt_tokens: int = 1200,
    output_tokens: int = 80,
    thoughts_tokens: int = 0,
    model_version: str = "gemini-3.1-pro-preview-001",
) -> Reply:
    """A successful answer whose text is `output` (JSON-encoded unless it is a str)."""
    text = output if isinstance(output, str) else json.dumps(output)
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens + thoughts_tokens,
    }
    if thoughts_tokens:
        usage["thoughtsTokenCount"] = thoughts_tokens
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}
        ],
        "usageMetadata": usage,
        "modelVersion": model_version,
        "responseId": uuid.uuid4().hex,
    }
    return Reply(body=body)


def error(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """Google's error document: `{"error": {"code", "message", "status", "details"}}`."""
    body = {"error": {"code": status, "message": message, "status": code}}
    if details:
        body["error"]["details"] = details
    return Reply(status=status, body=body, headers=headers)


def rate_limited(retry_delay: str | None = None) -> Reply:
    details: list[dict[str, Any]] | None = None
    if retry_delay is not None:
        details = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ]
    return error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", details=details)


def prompt_blocked() -> Reply:
    return Reply(
        body={
            "promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "unsafe content"},
            "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 900},
            "modelVersion": "gemini-3.1-pro-preview-001",
        }
    )


def empty() -> Reply:
    return Reply(
        body={
            "candidates": [],
            "usageMetadata": {"promptTokenCount": 900, "totalTokenCount": 900},
            "modelVersion": "gemini-3.1-pro-preview-001",
        }
    )


# -- the server ---------------------------------------------------------------------------


class GeminiServer(Loopback):
    """Accepts Vertex calls bearing `token` and developer calls bearing `api_key`."""

    def __init__(self, *, token: str = "vertex-token", api_key: str = "developer-key") -> None:
        self.token = token
        self.api_key = api_key
        self.default: Reply = answer({"ok": True})
        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.refused: list[str] = []  # why requests were refused, for failing tests to show
        self.file_state = "ACTIVE"
        self._script: collections.deque[Reply] = collections.deque()
        self._by_model: dict[str, collections.deque[Reply]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    def script(self, *replies: Reply) -> None:
        """Answer the next calls with `replies`, in order, then with `default`."""
        with self._lock:
            self._script.extend(replies)

    def script_for(self, model: str, *replies: Reply) -> None:
        """Answer the next calls to `model` with `replies`, before the common script."""
        with self._lock:
            self._by_model.setdefault(model, collections.deque()).extend(replies)

    def count(self) -> int:
        with self._lock:
            return len(self.calls)

    # -- request handling (called on the server's threads) ----------------------------

    def generate(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        vertex = VERTEX_PATH.match(path)
        developer = DEVELOPER_PATH.match(path)
        matched = vertex or developer
        if matched is None:
            return self._refuse(404, "NOT_FOUND", f"no such method: {path}")
        if vertex and headers.get("authorization") != f"Bearer {self.token}":
            return self._refuse(401, "UNAUTHENTICATED", "missing or wrong bearer token")
        if developer and headers.get("x-goog-api-key") != self.api_key:
            return self._refuse(400, "INVALID_ARGUMENT", "API key not valid")
        try:
            document = json.loads(body)
            parts = document["contents"][0]["parts"]
            assert {"inlineData", "fileData"} & set(parts[0]), "the document part comes first"
            assert "text" in parts[1], "the instructions follow the document"
        except (ValueError, KeyError, IndexError, AssertionError) as e:
            return self._refuse(400, "INVALID_ARGUMENT", f"malformed request: {e}")
        call = Call(
            path=path,
            headers=headers,
            body=document,
            at=time.monotonic(),
            mode="vertex" if vertex else "developer",
            model=matched["model"],
            version=matched["version"],
        )
        with self._lock:
            self.calls.append(call)
            own = self._by_model.get(call.model)
            if own:
                return own.popleft()
            return self._script.popleft() if self._script else self.default

    def start_upload(self, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("x-goog-api-key") != self.api_key:
            return self._refuse(400, "INVALID_ARGUMENT", "API key not valid")
        if headers.get("x-goog-upload-protocol") != "resumable":
            return self._refuse(400, "INVALID_ARGUMENT", "resumable uploads only")
        session = uuid.uuid4().hex
        with self._lock:
            self._sessions[session] = {
                "size": int(headers.get("x-goog-upload-header-content-length", "-1")),
                "mimeType": headers.get("x-goog-upload-header-content-type"),
                "data": b"",
            }
        url = f"{self.base_url}/upload-session/{session}"
        return Reply(body={}, headers=(("X-Goog-Upload-URL", url),))

    def upload(self, session: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                return self._refuse(404, "NOT_FOUND", "no such upload session")
            if int(headers.get("x-goog-upload-offset", "-1")) != len(state["data"]):
                return self._refuse(400, "INVALID_ARGUMENT", "wrong upload offset")
            state["data"] += body
            if "finalize" not in headers.get("x-goog-upload-command", ""):
                return Reply(body={}, headers=(("X-Goog-Upload-Status", "active"),))
            if len(state["data"]) != state["size"]:
                return self._refuse(400, "INVALID_ARGUMENT", "size differs from the one announced")
            name = uuid.uuid4().hex[:12]
            self.uploads[name] = state["data"]
            file = self._file(name, state["mimeType"], len(state["data"]))
        return Reply(body={"file": file}, headers=(("X-Goog-Upload-Status", "final"),))

    def get_file(self, name: str) -> Reply:
        with self._lock:
            if name not in self.uploads or name in self.deleted:
                return self._refuse(404, "NOT_FOUND", f"no file {name}")
            self.file_state = "ACTIVE"  # processing takes one look
            return Reply(body=self._file(name, "application/pdf", len(self.uploads[name])))

    def delete_file(self, name: str) -> Reply:
        with self._lock:
            self.deleted.append(name)
        return Reply(body={})

    def _file(self, name: str, mime_type: str | None, size: int) -> dict[str, Any]:
        return {
            "name": f"files/{name}",
            "uri": f"{self.base_url}/v1beta/files/{name}",
            "mimeType": mime_type,
            "sizeBytes": str(size),
            "state": self.file_state,
        }

    def _refuse(self, status: int, code: str, message: str) -> Reply:
        with self._lock:
            self.refused.append(message)
        return error(status, code, message)


def _handler(server: GeminiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(Quiet):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            path = self.path.split("?", 1)[0]
            if UPLOAD_START.match(path):
                reply = server.start_upload(headers, body)
            elif matched := UPLOAD_SESSION.match(path):
                reply = server.upload(matched["id"], headers, body)
            else:
                reply = server.generate(path, headers, body)
            self._send(reply)

        def do_GET(self) -> None:
            matched = FILE_PATH.match(self.path.split("?", 1)[0])
            self._send(server.get_file(matched["id"]) if matched else error(404, "NOT_FOUND", ""))

        def do_DELETE(self) -> None:
            matched = FILE_PATH.match(self.path.split("?", 1)[0])
            self._send(
                server.delete_file(matched["id"]) if matched else error(404, "NOT_FOUND", "")
            )

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            data = (
                reply.text.encode() if reply.text is not None else json.dumps(reply.body).encode()
            )
            self.reply(reply.status, data, headers=reply.headers)

    return Handler

"""What the push dispatch tests share: a local stand-in for Google's token issuer (OpenID
metadata and keys on loopback, ID tokens as Cloud Tasks mints them), a Cloud Tasks queue on
the emulator, the environment of a push-mode instance, and a front that routes requests to
whichever instance still listens, as Cloud Run's does during a revision change."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import firestore, tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport
from jwt.algorithms import RSAAlgorithm

import jobkit_gcp
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.gemini_server import GeminiServer
from tests.jobkit_http.jwks_server import JwksServer
from tests.loopback import Loopback, Quiet

SUMMARY = {
    "title": "A sample",
    "authors": ["jobkit"],
    "date": "2026-01-01",
    "summary": "Three pages.",
    "keyPoints": ["one"],
}  # an answer the default schema accepts
ACCOUNT = "jobkit-dispatch@test-project.iam.gserviceaccount.com"
SECRET = "emulator-dispatch-secret-0123456789"
GOOGLE = "https://accounts.google.com"


class Issuer:
    """Google's OpenID metadata and signing keys, served on loopback; `token(...)` signs an
    ID token as Google does for Cloud Tasks."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "google-test-key"
        self.server = JwksServer(issuer=GOOGLE)
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.server.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    @property
    def metadata_url(self) -> str:
        return self.server.metadata_url

    def token(
        self,
        audience: str,
        *,
        email: str = ACCOUNT,
        verified: bool = True,
        key: rsa.RSAPrivateKey | None = None,
        issuer: str = GOOGLE,
        lifetime: int = 3600,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "azp": "1234567890",
            "sub": "1234567890",
            "email": email,
            "email_verified": verified,
            "iat": now,
            "exp": now + lifetime,
        }
        signer = key or self.key
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": self.kid})


@contextlib.contextmanager
def issuer() -> Iterator[Issuer]:
    made = Issuer()
    made.server.start()
    try:
        yield made
    finally:
        made.server.stop()


def tasks_client(emulator: str) -> tasks_v2.CloudTasksAsyncClient:
    channel = grpc.aio.insecure_channel(emulator)
    return tasks_v2.CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))


def make_queue(emulator: str, project: str) -> str:
    """A new queue on the emulator; its full name."""
    name = f"projects/{project}/locations/here/queues/{unique('doorbells')}"

    async def create() -> None:
        client = tasks_client(emulator)
        await client.create_queue(
            parent=name.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(name=name)
        )
        await client.transport.close()  # type: ignore[no-untyped-call]

    asyncio.run(create())
    return name


def purge(emulator: str, queue: str) -> int:
    """Every waiting task of `queue` deleted (lost doorbells); how many there were."""

    async def main() -> int:
        client = tasks_client(emulator)
        try:
            waiting = [task async for task in await client.list_tasks(parent=queue)]
            await client.purge_queue(name=queue)
            return len(waiting)
        finally:
            await client.transport.close()  # type: ignore[no-untyped-call]

    return asyncio.run(main())


def push_environ(
    emulators: Emulators,
    tasks_emulator: str,
    *,
    project: str,
    bucket: str,
    queue: str,
    url: str,
    gemini: GeminiServer,
    issuer: Issuer,
) -> dict[str, str]:
    """A push-mode instance on the emulators and the stub Gemini, as service.yaml sets it."""
    return {
        **emulators.environ(),
        "CLOUD_TASKS_EMULATOR_HOST": tasks_emulator,
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": project,
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_ANALYZER": "gemini",
        "JOBKIT_GEMINI_API_KEY": gemini.api_key,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "JOBKIT_GEMINI_TIMEOUT_SECONDS": "600",
        "JOBKIT_DISPATCH": "push",
        "JOBKIT_TASKS_QUEUE": queue,
        "JOBKIT_DISPATCH_URL": url,
        "JOBKIT_DISPATCH_SERVICE_ACCOUNT": ACCOUNT,
        "JOBKIT_DISPATCH_SECRET": SECRET,
        "JOBKIT_DISPATCH_METADATA_URL": issuer.metadata_url,
        "JOBKIT_LEASE_SECONDS": "3",
        "JOBKIT_LOG_FORMAT": "json",
    }


class Front(Loopback):
    """An HTTP front on loopback that sends each request to the next instance that accepts a
    connection (round robin), as Cloud Run routes a service's traffic to its instances; an
    instance that stopped listening gets no more."""

    def __init__(self) -> None:
        self.backends: list[str] = []
        self.routed: list[tuple[str, str, int]] = []  # (backend, path, status)
        self._turn = itertools.count()
        self._http = httpx.Client(timeout=httpx.Timeout(600.0, connect=2.0))
        super().__init__(self._handler())

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        kept = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length"}}
        for _ in range(len(self.backends) * 2):
            backend = self.backends[next(self._turn) % len(self.backends)]
            try:
                answer = self._http.request(method, backend + path, headers=kept, content=body)
            except httpx.ConnectError:
                continue  # that instance is gone: the next
            self.routed.append((backend, path, answer.status_code))
            return answer
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(Quiet):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size)
                answer = front.forward("POST", self.path, dict(self.headers), body)
                if answer is None:
                    self.reply(503)
                    return
                kind = answer.headers.get("content-type", "")
                self.reply(answer.status_code, answer.content, content_type=kind)

        return Handler


def stored(project: str, job_id: str) -> dict[str, Any]:
    """The job's document as Firestore holds it, operators' fields (workers) included."""

    async def main() -> dict[str, Any]:
        client = firestore.AsyncClient(project=project)
        try:
            snapshot = await client.collection("jobs").document(job_id).get()
            return snapshot.to_dict() or {}
        finally:
            await jobkit_gcp.FirestoreJobStore(client).close()

    return asyncio.run(main())


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def now() -> datetime:
    return datetime.now(UTC)

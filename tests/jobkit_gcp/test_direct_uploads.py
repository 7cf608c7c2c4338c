"""Direct uploads on the GCP backend: V4 signed URLs to the bucket (fake-gcs-server), signed
with a service-account key (made here) or through IAM's signBlob (a stub, as on Cloud Run).

fake-gcs-server stores what a signed URL sends but checks neither the signature nor the
expiry nor the signed headers, and its XML resumable start loses the object's name; so the
URLs are also checked here as Cloud Storage would: the V4 canonical request rebuilt from the
URL and the headers a client sends, its signature verified with the key's public half.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth
import google.auth.credentials
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import storage

from jobkit import events, jobs, machine, submission
from jobkit.testing import MemoryJobStore
from jobkit.worker import orphans
from jobkit_gcp.gcs import GcsBlobStore
from jobkit_gcp.signed_urls import GcsUploadSigner
from jobkit_http import direct
from tests.jobkit.conformance import TYPES
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_gcp.metadata_server import MetadataServer
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import SAMPLE_PDF, RunningServer, problem, serve, wait_for
from tests.loopback import Loopback, Quiet

P = "/api/v1"
ACCOUNT = "jobkit-test@test-project.iam.gserviceaccount.com"
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file(folder: Path, private: rsa.RSAPrivateKey) -> Path:
    """A service-account key file, as `gcloud iam service-accounts keys create` writes one."""
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": ACCOUNT,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # nothing there: signing needs no token
    }
    path = folder / "key.json"
    path.write_text(json.dumps(info))
    return path


@pytest.fixture
def server(
    emulators: Emulators,
    key: rsa.RSAPrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RunningServer, str]]:
    bucket = unique("uploads")
    storage.Client().create_bucket(bucket)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(tmp_path, key)))
    environ = {
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": unique("uploads"),
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_GCS_PREFIX": "team",
        "JOBKIT_MAX_UPLOAD_BYTES": str(LIMIT),
    }
    with serve(tmp_path / "data", environ) as running:
        yield running, bucket


# -- what Cloud Storage checks, which fake-gcs-server does not ---------------------------


def verify(url: str, method: str, headers: dict[str, str], public: rsa.RSAPublicKey) -> datetime:
    """Check `url`'s V4 signature over the request a client makes with it (`method`,
    `headers`, and the Host of the URL); raise `InvalidSignature` if it does not hold. The
    instant the URL expires."""
    parts = urlsplit(url)
    pairs = [pair.split("=", 1) for pair in parts.query.split("&")]
    signature = bytes.fromhex(next(v for k, v in pairs if k == "X-Goog-Signature"))
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs) if k != "X-Goog-Signature")
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    sent = {name.lower(): value.strip() for name, value in headers.items()}
    sent["host"] = parts.netloc
    signed = params["X-Goog-SignedHeaders"].split(";")
    assert sorted(sent) == signed, "the client must send exactly the signed headers"
    canonical = "\n".join(
        [
            method,
            parts.path,
            query,
            "".join(f"{name}:{sent[name]}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    public.verify(signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    issued = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return issued + timedelta(seconds=int(params["X-Goog-Expires"]))


def ask(client: httpx.Client, size: int = len(SAMPLE_PDF), **more: Any) -> dict[str, Any]:
    response = client.post(f"{P}/uploads", json={"size": size, **more})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def put(answer: dict[str, Any], data: bytes) -> httpx.Response:
    return httpx.request(answer["method"], answer["url"], headers=answer["headers"], content=data)


def submit(client: httpx.Client, upload: str) -> httpx.Response:
    body = {"type": "pdf-analysis", "input": {"upload": upload, "filename": "report.pdf"}}
    return client.post(f"{P}/jobs", json=body)


def test_a_signed_put_to_the_bucket_becomes_a_job_that_completes(
    server: tuple[RunningServer, str], key: rsa.RSAPrivateKey
) -> None:
    running, bucket = server
    user = new_user()
    with running.client(user) as client:
        answer = ask(client)
        assert answer["method"] == "PUT"
        assert answer["headers"] == {
            "Content-Type": "application/pdf",
            "x-goog-if-generation-match": "0",
            "x-goog-content-length-range": f"0,{LIMIT}",
        }
        path = urlsplit(answer["url"]).path
        expires = verify(answer["url"], "PUT", answer["headers"], key.public_key())
        stated = datetime.fromisoformat(answer["expiresAt"].replace("Z", "+00:00"))
        assert abs((expires - stated).total_seconds()) <= 2
        assert put(answer, SAMPLE_PDF).status_code == 200  # no bearer token: the URL is enough

        response = submit(client, answer["upload"])
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert job_id == answer["upload"]
        assert wait_for(client, job_id)["status"] == "completed"
        document = client.get(f"{P}/jobs/{job_id}").json()
        assert document["result"]["pages"] == 3
        owner = direct.owner_of(document["userId"])  # the caller's folder
        assert path == f"/{bucket}/team/uploads/{owner}/{job_id}/document.pdf"
        assert problem(submit(client, answer["upload"]), 409)["type"].endswith("upload-consumed")
    with running.client(new_user()) as other:
        problem(submit(other, answer["upload"]), 404)  # another user's upload, or job


def test_a_tampered_or_expired_url_does_not_verify(
    server: tuple[RunningServer, str], key: rsa.RSAPrivateKey
) -> None:
    running, _ = server
    with running.client(new_user()) as client:
        answer = ask(client)
    url, headers, public = answer["url"], answer["headers"], key.public_key()
    verify(url, "PUT", headers, public)
    other = url.replace(answer["upload"], "6a1c2f4e-0000-4000-8000-000000000000")
    for bad_url, bad_method, bad_headers in [
        (other, "PUT", headers),  # another object
        (re.sub(r"X-Goog-Expires=\d+", "X-Goog-Expires=86400", url), "PUT", headers),  # longer
        (url, "POST", headers),  # another method
        (url, "PUT", {**headers, "x-goog-content-length-range": "0,999999999"}),  # a larger cap
        (url, "PUT", {**headers, "Content-Type": "text/html"}),
    ]:
        assert (bad_url, bad_method, bad_headers) != (url, "PUT", headers)
        with pytest.raises(InvalidSignature):
            verify(bad_url, bad_method, bad_headers, public)
    with pytest.raises(AssertionError):  # leaving out a signed header
        verify(url, "PUT", {"Content-Type": "application/pdf"}, public)
    # Expiry: the URL says when it was signed and for how long, under the signature.
    expires = verify(url, "PUT", headers, public)
    assert timedelta(seconds=850) < expires - datetime.now(UTC) <= timedelta(seconds=900)


def test_what_is_not_a_pdf_or_too_large_is_refused_and_deleted(
    server: tuple[RunningServer, str],
) -> None:
    running, bucket = server
    with running.client(new_user()) as client:
        problem(client.post(f"{P}/uploads", json={"size": LIMIT + 1}), 413)
        html = ask(client)
        assert put(html, b"<html>not a pdf</html>").status_code == 200
        assert problem(submit(client, html["upload"]), 415)["type"].endswith("not-a-pdf")
        # fake-gcs-server ignores x-goog-content-length-range: the submission's check holds.
        big = ask(client)
        assert put(big, SAMPLE_PDF + b"%" * LIMIT).status_code == 200
        assert problem(submit(client, big["upload"]), 413)["type"].endswith("too-large")
        assert client.get(f"{P}/jobs").json()["jobs"] == []
    names = [blob.name for blob in storage.Client().list_blobs(bucket, prefix="team/uploads/")]
    assert names == []


def test_a_resumable_upload_url_starts_a_session(
    server: tuple[RunningServer, str], key: rsa.RSAPrivateKey
) -> None:
    running, _ = server
    with running.client(new_user()) as client:
        answer = ask(client, resumable=True)
    assert answer["method"] == "POST"
    assert answer["resumable"] is True
    assert answer["headers"]["x-goog-resumable"] == "start"
    verify(answer["url"], "POST", answer["headers"], key.public_key())
    started = httpx.post(answer["url"], headers=answer["headers"])
    assert started.status_code in {200, 201}
    assert "upload_id=" in started.headers["Location"]  # the session URI to PUT to


def test_an_unsubmitted_upload_is_swept_and_a_submitted_one_kept(emulators: Emulators) -> None:
    bucket = unique("sweep")
    storage.Client().create_bucket(bucket)
    owner = direct.owner_of("someone")
    used_id = "6a1c2f4e-0000-4000-8000-000000000001"
    used = direct.object_key(owner, used_id)
    orphan = direct.object_key(owner, "6a1c2f4e-0000-4000-8000-000000000002")
    now = datetime.now(UTC)
    store = MemoryJobStore()
    source = jobs.Input(blob=used, content_type="application/pdf")
    draft = submission.new_job(
        {"type": "echo"}, types=TYPES, job_id=used_id, user_id="someone", now=now, input=source
    ).unwrap()
    job, _ = machine.step(draft, events.Submitted(), now).unwrap()
    assert store.insert_now(job)

    async def main() -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
        async with GcsBlobStore(storage.Client(), bucket, prefix="team") as blobs:
            await blobs.put_bytes(used, b"%PDF-", "application/pdf")
            await blobs.put_bytes(orphan, b"%PDF-", "application/pdf")
            young = await orphans.sweep(store, blobs, now=now, older_than_seconds=3600)
            later = now + timedelta(hours=2)
            old = await orphans.sweep(store, blobs, now=later, older_than_seconds=3600)
            return young.deleted, old.deleted, sorted([e.key async for e in blobs.scan("")])

    young, old, left = asyncio.run(main())
    assert young == ()  # an upload under way, or not yet submitted: spared for a while
    assert old == (orphan,)
    assert left == [used]


# -- Cloud Run: no key, IAM signs ---------------------------------------------------------


class IamStub(Loopback):
    """IAM Credentials' signBlob on loopback: signs with `key` for `account`, for callers
    that bring the metadata server's token."""

    def __init__(self, key: rsa.RSAPrivateKey, account: str, token: str) -> None:
        self.calls: list[str] = []
        stub = self

        class Handler(Quiet):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                path = f"/v1/projects/-/serviceAccounts/{account}:signBlob"
                if self.headers.get("Authorization") != f"Bearer {token}":
                    status, answer = 401, {"error": "unauthenticated"}
                elif self.path != path:
                    status, answer = 404, {"error": self.path}
                else:
                    payload = base64.b64decode(body["payload"])
                    signed = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
                    status = 200
                    answer = {"keyId": "k", "signedBlob": base64.b64encode(signed).decode()}
                stub.calls.append(self.path)
                self.reply(status, json.dumps(answer).encode())

        super().__init__(Handler)


def test_on_cloud_run_the_service_account_signs_through_iam(
    emulators: Emulators,
    metadata: MetadataServer,
    key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in metadata.environ().items():
        monkeypatch.setenv(name, value)
    account = f"jobkit@{metadata.project}.iam.gserviceaccount.com"  # what the metadata says
    iam = IamStub(key, account, metadata.token).start()
    bucket = unique("iam")
    storage.Client().create_bucket(bucket)
    expires_at = datetime.now(UTC) + timedelta(minutes=15)

    async def main() -> Any:
        credentials, _ = google.auth.default()  # the metadata server's: no key of their own
        assert not isinstance(credentials, google.auth.credentials.Signing)
        async with GcsBlobStore(storage.Client(), bucket) as blobs:
            signer = GcsUploadSigner(blobs, credentials=credentials, iam_endpoint=iam.base_url)
            return await signer.sign(
                "uploads/o/u/document.pdf",
                content_type="application/pdf",
                max_bytes=LIMIT,
                expires_at=expires_at,
                resumable=False,
            )

    try:
        signed = asyncio.run(main())
    finally:
        iam.stop()
    assert iam.calls == [f"/v1/projects/-/serviceAccounts/{account}:signBlob"]
    assert parse_qs(urlsplit(signed.url).query)["X-Goog-Credential"][0].startswith(account)
    verify(signed.url, "PUT", signed.headers, key.public_key())
    answer = {"method": signed.method, "url": signed.url, "headers": signed.headers}
    assert put(answer, SAMPLE_PDF).status_code == 200


def test_without_credentials_to_sign_with_the_answer_is_503(
    emulators: Emulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key file and no metadata server (nobody on its port): the service still serves,
    and says plainly that it cannot hand out upload URLs."""
    nobody = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("GCE_METADATA_HOST", nobody)
    monkeypatch.setenv("GCE_METADATA_IP", nobody)
    bucket = unique("unsigned")
    storage.Client().create_bucket(bucket)
    environ = {
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": unique("unsigned"),
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_WORKER": "false",
    }
    with serve(tmp_path, environ) as running, running.client(new_user()) as client:
        refused = problem(client.post(f"{P}/uploads", json={"size": 10}), 503)
        assert refused["type"].endswith("signing-failed")
        assert client.get("/readyz").status_code == 200

"""Direct uploads on the embedded default, through a real server: a signed URL, a plain PUT
to it, a job that names the upload; and every way that must be refused."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from jobkit import errors
from jobkit_http import direct, signing
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    SAMPLE_PDF,
    RunningServer,
    problem,
    serve,
    stored,
    wait_for,
)

P = "/api/v1"


def ask(client: httpx.Client, size: int = len(SAMPLE_PDF), **more: Any) -> dict[str, Any]:
    response = client.post(f"{P}/uploads", json={"size": size, **more})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


def put(answer: dict[str, Any], data: bytes, url: str | None = None) -> httpx.Response:
    """What any client does with the answer: no bearer token, the headers it was given."""
    return httpx.request(
        answer["method"], url or answer["url"], headers=answer["headers"], content=data
    )


def submit(
    client: httpx.Client, upload: str, *, key: str | None = None, **more: Any
) -> httpx.Response:
    body = {
        "type": "pdf-analysis",
        "input": {"upload": upload, "filename": "big report.pdf"},
        "params": {"instructions": "Summarise it."},
        **more,
    }
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(f"{P}/jobs", json=body, headers=headers)


def uploaded(client: httpx.Client, data: bytes = SAMPLE_PDF) -> str:
    answer = ask(client, len(data))
    response = put(answer, data)
    assert response.status_code == 201, response.text
    assert response.json() == {"upload": answer["upload"], "size": len(data)}
    upload: str = answer["upload"]
    return upload


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def test_an_upload_becomes_a_job_that_completes(
    server: RunningServer, client: httpx.Client
) -> None:
    answer = ask(client)
    assert answer["method"] == "PUT"
    assert answer["resumable"] is False
    assert answer["headers"] == {"Content-Type": "application/pdf"}
    assert answer["maxBytes"] == server.settings.max_upload_bytes
    expires = datetime.fromisoformat(answer["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(seconds=850) < expires - datetime.now(UTC) <= timedelta(seconds=900)
    assert answer["url"].startswith(f"{server.base_url}{P}/uploads/")
    assert put(answer, SAMPLE_PDF).status_code == 201

    response = submit(client, answer["upload"])
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert job_id == answer["upload"]  # the upload's id is the job's
    assert wait_for(client, job_id)["status"] == "completed"
    job = client.get(f"{P}/jobs/{job_id}").json()
    assert job["input"] == {
        "filename": "big report.pdf",
        "size": len(SAMPLE_PDF),
        "contentType": "application/pdf",
    }
    assert job["result"]["pages"] == 3
    source = stored(server, job_id)["input"]
    assert source is not None
    owner = direct.owner_of(job["userId"])
    assert source.blob == f"uploads/{owner}/{job_id}/document.pdf"
    assert (server.data / "blobs" / source.blob).read_bytes() == SAMPLE_PDF
    assert client.get(f"{P}/jobs/{job_id}/result").status_code == 200


def test_an_upload_makes_one_job_and_a_keyed_retry_replays_it(client: httpx.Client) -> None:
    answer = ask(client)
    assert put(answer, SAMPLE_PDF).status_code == 201
    upload = answer["upload"]
    first = submit(client, upload, key="k-1", delaySeconds=3600)
    assert first.status_code == 202
    again = submit(client, upload, key="k-1", delaySeconds=3600)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    for refused in (
        submit(client, upload, delaySeconds=3600),  # no key
        submit(client, upload, key="k-2", delaySeconds=3600),  # another key
    ):
        assert problem(refused, 409)["type"].endswith("upload-consumed")
    reused = submit(client, upload, key="k-1", priority=99)  # the key, another body
    assert problem(reused, 422)["type"].endswith("idempotency-key-reused")
    assert [job["id"] for job in client.get(f"{P}/jobs").json()["jobs"]] == [upload]
    # and its URL cannot replace the document the job was accepted with
    assert problem(put(answer, b"%PDF-other"), 409)["type"].endswith("upload-exists")


def test_another_users_upload_cannot_be_named(
    client: httpx.Client, other_client: httpx.Client
) -> None:
    upload = uploaded(client)
    refused = problem(submit(other_client, upload), 404)
    assert upload in refused["detail"]
    assert other_client.get(f"{P}/jobs").json()["jobs"] == []
    # nor once it is a job of its owner's
    assert submit(client, upload, delaySeconds=3600).status_code == 202
    problem(submit(other_client, upload), 404)


def test_a_missing_or_malformed_upload_is_refused(client: httpx.Client) -> None:
    problem(submit(client, "6a1c2f4e-0000-4000-8000-000000000000"), 404)
    document = problem(submit(client, "not-an-id"), 422)
    assert [e["field"] for e in document["errors"]] == ["input/upload"]
    body = {"type": "pdf-analysis", "input": {"upload": uploaded(client), "color": "red"}}
    assert [e["field"] for e in problem(client.post(f"{P}/jobs", json=body), 422)["errors"]] == [
        "input/color"
    ]
    body = {"type": "echo", "input": {"upload": uploaded(client)}}
    problem(client.post(f"{P}/jobs", json=body), 422)


def test_a_file_that_is_not_a_pdf_is_refused_at_submission(
    server: RunningServer, client: httpx.Client
) -> None:
    upload = uploaded(client, b"<html>not a pdf</html>")
    assert problem(submit(client, upload), 415)["type"].endswith("not-a-pdf")
    assert client.get(f"{P}/jobs").json()["jobs"] == []
    assert not list((server.data / "blobs" / "uploads").rglob(f"{upload}/*"))  # deleted


def test_requests_for_an_upload_are_checked(client: httpx.Client, anonymous: httpx.Client) -> None:
    problem(anonymous.post(f"{P}/uploads", json={"size": 10}), 401)
    limit = 50 * 1024 * 1024
    assert problem(client.post(f"{P}/uploads", json={"size": limit + 1}), 413)
    problem(client.post(f"{P}/uploads", json={"size": 10, "contentType": "text/html"}), 415)
    document = problem(client.post(f"{P}/uploads", json={"size": "big", "color": 1}), 422)
    assert sorted(e["field"] for e in document["errors"]) == ["color", "size"]
    problem(client.post(f"{P}/uploads", content=b"size=10"), 415)
    problem(client.post(f"{P}/uploads", json={"size": 10, "resumable": "yes"}), 422)
    # A resumable upload is Cloud Storage's; here the answer is the one PUT.
    local = ask(client, resumable=True)
    assert (local["method"], local["resumable"]) == ("PUT", False)


def test_a_tampered_or_foreign_url_is_refused(server: RunningServer, client: httpx.Client) -> None:
    answer = ask(client)
    url = answer["url"]
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (
        with_query(url, signature=flipped),
        with_query(url, max=str(10 * answer["maxBytes"])),  # a larger cap than was signed
        with_query(url, expires=str(int(time.time()) + 86400)),  # a later expiry
        url.replace(answer["upload"], "6a1c2f4e-0000-4000-8000-000000000000"),  # another object
        url.split("?")[0],
    ):
        assert problem(put(answer, SAMPLE_PDF, bad), 403)["type"].endswith("bad-signature")
    assert put(answer, SAMPLE_PDF, url.replace("/uploads/", "/uploads/zz")).status_code == 404
    wrong_type = httpx.put(url, content=SAMPLE_PDF, headers={"Content-Type": "text/plain"})
    problem(wrong_type, 415)
    assert put(answer, SAMPLE_PDF).status_code == 201
    assert problem(put(answer, SAMPLE_PDF), 409)["type"].endswith("upload-exists")


def test_an_expired_url_is_refused(server: RunningServer, client: httpx.Client) -> None:
    answer = ask(client)
    route = answer["url"].split("?")[0]
    key = direct.object_key(route.split("/")[-2], answer["upload"])
    # Signed with the server's own key, but expired a second ago.
    local = signing.LocalSigner(signing.load_key(server.data))
    expires = int(time.time()) - 1
    maximum = answer["maxBytes"]
    query = urlencode(
        {
            "expires": expires,
            "max": maximum,
            "signature": local.signature(key, "application/pdf", maximum, expires),
        }
    )
    refused = problem(put(answer, SAMPLE_PDF, f"{route}?{query}"), 403)
    assert refused["type"].endswith("url-expired")
    problem(submit(client, answer["upload"]), 404)  # nothing was stored


def test_uploads_are_capped_at_the_limit(tmp_path: Path) -> None:
    limit = 64 * 1024
    environ = {"JOBKIT_MAX_UPLOAD_BYTES": str(limit)}
    with serve(tmp_path, environ, worker=False) as server, server.client(new_user()) as client:
        problem(client.post(f"{P}/uploads", json={"size": limit + 1}), 413)
        answer = ask(client, limit)
        over = SAMPLE_PDF + b"%" * (limit + 1 - len(SAMPLE_PDF))

        def chunks() -> Any:  # no Content-Length: refused while streaming
            yield over[:1000]
            yield over[1000:]

        response = httpx.put(answer["url"], headers=answer["headers"], content=chunks())
        problem(response, 413)
        problem(put(answer, over), 413)  # refused on its Content-Length
        problem(submit(client, answer["upload"]), 404)  # nothing stored
    # A file stored under a larger limit (the service restarted with a smaller one since) is
    # refused when the job is submitted, and deleted.
    user = new_user()
    with serve(tmp_path, worker=False) as server, server.client(user) as client:
        upload = uploaded(client, over)
    with serve(tmp_path, environ, worker=False) as server, server.client(user) as client:
        assert problem(submit(client, upload), 413)["type"].endswith("too-large")
        assert client.get(f"{P}/jobs").json()["jobs"] == []
    assert not list((tmp_path / "blobs" / "uploads").rglob(f"{upload}/*"))


def test_an_upload_nobody_submits_is_swept(tmp_path: Path) -> None:
    environ = {"JOBKIT_ORPHAN_AGE_SECONDS": "1", "JOBKIT_ORPHAN_SWEEP_SECONDS": "0.5"}
    with serve(tmp_path, environ, worker=False) as server, server.client(new_user()) as client:
        kept = uploaded(client)
        assert submit(client, kept, delaySeconds=3600).status_code == 202
        orphan = uploaded(client)
        folder = tmp_path / "blobs" / "uploads"
        deadline = time.monotonic() + 20
        while list(folder.rglob(f"{orphan}/document.pdf")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not list(folder.rglob(f"{orphan}/document.pdf"))
        assert list(folder.rglob(f"{kept}/document.pdf"))  # its job's input: kept
        problem(submit(client, orphan), 404)
        assert wait_for(client, kept, frozenset({"pending"}))["status"] == "pending"


def test_the_access_log_leaves_the_signature_out(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    answer = ask(client)
    signature = parse_qs(urlsplit(answer["url"]).query)["signature"][0]
    with caplog.at_level(logging.INFO, logger="jobkit.http"):
        assert put(answer, SAMPLE_PDF).status_code == 201
        deadline = time.monotonic() + 10  # the line is written once the answer is sent
        while not (lines := [r for r in caplog.records if "PUT" in r.getMessage()]):
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.05)
    for record in lines:
        assert signature not in record.getMessage()
        assert "signature=REDACTED" in record.getMessage()
        assert signature not in str(record.__dict__)


def test_the_signing_key_is_made_once_in_the_data_folder(tmp_path: Path) -> None:
    first = signing.local_signer(tmp_path)
    path = tmp_path / signing.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == signing.KEY_BYTES
    again = signing.local_signer(tmp_path)  # another process, or a restart: the same key
    args = ("uploads/o/u/document.pdf", "application/pdf", 100, 2_000_000_000)
    assert first.signature(*args) == again.signature(*args)
    assert first.verify(*args, first.signature(*args))
    assert not first.verify(*args[:3], 2_000_000_001, first.signature(*args))
    path.write_bytes(b"short")
    with pytest.raises(errors.ConfigurationError, match="not 32"):
        signing.local_signer(tmp_path)

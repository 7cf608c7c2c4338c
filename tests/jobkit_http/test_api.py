"""The `/api/v1` endpoints over real HTTP: a uvicorn server, SQLite, the in-process worker."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobkit_http import api, keys, openapi
from jobkit_http import submit as submitting
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    CORRUPT_PDF,
    FINISHED,
    SAMPLE_PDF,
    RunningServer,
    fields_of,
    problem,
    serve,
    submit,
    upload,
    wait_for,
)

P = api.PREFIX
LATER = {"delaySeconds": 3600}  # keeps a job pending for the whole test
PAGE_TEXTS = (
    "Chapter 1: The Lighthouse",
    "Chapter 2: The Orchard",
    "Chapter 3: The Glacier",
)


def finished(client: httpx.Client, document: bytes = SAMPLE_PDF) -> dict[str, Any]:
    """A job run to its end; its full document."""
    job_id = submit(client, document)
    wait_for(client, job_id)
    response = client.get(f"{P}/jobs/{job_id}")
    assert response.status_code == 200
    job: dict[str, Any] = response.json()
    return job


def blob(server: RunningServer, key: str) -> Path:
    return server.data / "blobs" / key


# -- happy paths ---------------------------------------------------------------------


def test_an_uploaded_pdf_is_analysed_and_its_result_served(client: httpx.Client) -> None:
    response = upload(client, SAMPLE_PDF, {"priority": 70, "metadata": '{"case": 1}'})

    assert response.status_code == 202
    accepted = response.json()
    job_id = accepted["id"]
    assert str(uuid.UUID(job_id)) == job_id
    assert response.headers["Location"] == f"{P}/jobs/{job_id}"
    assert accepted == {
        "id": job_id,
        "status": "pending",
        "jobUrl": f"{P}/jobs/{job_id}",
        "statusUrl": f"{P}/jobs/{job_id}/status",
        "resultUrl": f"{P}/jobs/{job_id}/result",
    }

    status = wait_for(client, job_id)
    assert status["status"] == "completed"
    assert status["attempts"] == 1
    assert status["error"] is None
    assert status["resultUrl"] == f"{P}/jobs/{job_id}/result"

    job = client.get(accepted["jobUrl"]).json()
    assert job["id"] == job_id
    assert job["status"] == "completed"
    assert job["type"] == "pdf-analysis"
    assert job["priority"] == 70
    assert job["metadata"] == {"case": 1}
    assert job["input"]["filename"] == "sample.pdf"
    assert job["input"]["size"] == len(SAMPLE_PDF)
    assert job["result"]["pages"] == 3
    assert job["links"]["resultUrl"] == accepted["resultUrl"]

    result = client.get(accepted["resultUrl"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    document = result.json()
    assert document["jobId"] == job_id
    assert document["document"]["pages"] == 3
    pages = document["output"]["pages"]
    assert [page["page"] for page in pages] == [1, 2, 3]
    for page, title in zip(pages, PAGE_TEXTS, strict=True):
        assert page["text"].startswith(title)


def test_the_generic_endpoint_refuses_a_pdf_job_without_a_document(client: httpx.Client) -> None:
    response = client.post(f"{P}/jobs", json={"type": "pdf-analysis"})

    body = problem(response, 422)
    assert body["errors"] == [
        {"field": "input", "message": "job type 'pdf-analysis' needs a document"}
    ]


def test_the_list_holds_the_callers_jobs(client: httpx.Client) -> None:
    first = submit(client, form=LATER)
    second = submit(client, form=LATER)

    response = client.get(f"{P}/jobs")

    assert response.status_code == 200
    page = response.json()
    assert [job["id"] for job in page["jobs"]] == [second, first]
    assert page["nextCursor"] is None


def test_a_pending_job_is_cancelled(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)

    response = client.delete(f"{P}/jobs/{job_id}")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    status = client.get(f"{P}/jobs/{job_id}/status")
    assert status.json()["status"] == "cancelled"
    assert "Retry-After" not in status.headers
    again = problem(client.delete(f"{P}/jobs/{job_id}"), 409)
    assert again["jobStatus"] == "cancelled"


def test_a_failed_job_is_retried_with_its_attempts_reset(client: httpx.Client) -> None:
    job_id = submit(client, CORRUPT_PDF)
    failed = wait_for(client, job_id)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert failed["error"]["code"] == "corrupt_document"
    assert failed["error"]["retryable"] is False

    response = client.put(f"{P}/jobs/{job_id}/retry")

    assert response.status_code == 200
    retried = response.json()
    assert retried["status"] == "pending"
    assert retried["attempts"] == 0
    assert retried["error"] is None
    again = wait_for(client, job_id)
    assert again["status"] == "failed"
    assert again["error"]["code"] == "corrupt_document"
    history = client.get(f"{P}/jobs/{job_id}").json()["history"]
    assert [entry["outcome"] for entry in history] == ["failed", "failed"]


def test_only_a_failed_job_can_be_retried(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)

    body = problem(client.put(f"{P}/jobs/{job_id}/retry"), 409)

    assert body["jobStatus"] == "pending"


def test_a_finished_jobs_record_and_files_are_deleted(
    server: RunningServer, client: httpx.Client
) -> None:
    job = finished(client)
    files = [blob(server, job["input"]["blob"]), blob(server, job["result"]["resultKey"])]
    assert all(path.is_file() for path in files)

    response = client.delete(f"{P}/jobs/{job['id']}/record")

    assert response.status_code == 204
    assert response.content == b""
    problem(client.get(f"{P}/jobs/{job['id']}"), 404)
    problem(client.delete(f"{P}/jobs/{job['id']}/record"), 404)
    assert not any(path.exists() for path in files)


def test_a_pending_jobs_record_is_kept(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)

    body = problem(client.delete(f"{P}/jobs/{job_id}/record"), 409)

    assert body["jobStatus"] == "pending"
    assert client.get(f"{P}/jobs/{job_id}").status_code == 200


def test_a_completed_job_cannot_be_cancelled(client: httpx.Client) -> None:
    job = finished(client)

    body = problem(client.delete(f"{P}/jobs/{job['id']}"), 409)

    assert body["jobStatus"] == "completed"


def test_an_unfinished_job_has_no_result_yet(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)

    body = problem(client.get(f"{P}/jobs/{job_id}/result"), 409)

    assert body["jobStatus"] == "pending"


def test_a_failed_job_has_no_result(client: httpx.Client) -> None:
    job_id = submit(client, CORRUPT_PDF)
    wait_for(client, job_id)

    body = problem(client.get(f"{P}/jobs/{job_id}/result"), 409)

    assert body["jobStatus"] == "failed"


# -- malformed requests ---------------------------------------------------------------


def test_malformed_json_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        f"{P}/jobs", content=b'{"type": ', headers={"Content-Type": "application/json"}
    )

    problem(response, 400)


def test_json_nested_too_deeply_to_parse_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        f"{P}/jobs", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )

    problem(response, 400)


def test_json_nested_deeper_than_the_limit_is_a_422(client: httpx.Client) -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]

    response = client.post(f"{P}/jobs", json={"type": "pdf-analysis", "metadata": {"a": deep}})

    problem(response, 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_job_must_be_sent_as_json(client: httpx.Client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = client.post(f"{P}/jobs", content=b'{"type": "pdf-analysis"}', headers=headers)

    problem(response, 415)


def test_a_pdf_must_be_sent_as_a_multipart_form(client: httpx.Client) -> None:
    response = client.post(f"{P}/pdf-processing", content=SAMPLE_PDF)

    problem(response, 415)
    problem(client.post(f"{P}/pdf-processing", json={"file": "x"}), 415)


def test_a_json_body_over_one_mebibyte_is_a_413(client: httpx.Client) -> None:
    padding = b" " * submitting.JSON_LIMIT
    body = b'{"type": "pdf-analysis"}' + padding

    declared = client.post(f"{P}/jobs", content=body, headers={"Content-Type": "application/json"})

    problem(declared, 413)

    def streamed() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        yield b'{"type": "pdf-analysis"}'
        for _ in range(4):
            yield padding[: len(padding) // 2]

    chunked = client.post(
        f"{P}/jobs", content=streamed(), headers={"Content-Type": "application/json"}
    )
    problem(chunked, 413)


def test_unknown_fields_are_named_one_entry_each(client: httpx.Client) -> None:
    response = client.post(
        f"{P}/jobs", json={"type": "pdf-analysis", "colour": "red", "size": 3, "params": {}}
    )

    body = problem(response, 422)
    unknown = [entry for entry in body["errors"] if entry["message"] == "unknown field"]
    assert unknown == [
        {"field": "colour", "message": "unknown field"},
        {"field": "size", "message": "unknown field"},
    ]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"priority": 101}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"maxAttempts": 0}, "maxAttempts"),
        ({"queue": "Not A Queue"}, "queue"),
        ({"delaySeconds": -1}, "delaySeconds"),
        ({"delaySeconds": "soon"}, "delaySeconds"),
        ({"runAt": "2030-01-01T09:00:00"}, "runAt"),  # no offset: ambiguous
        ({"runAt": "0001-01-01T00:00:00+01:00"}, "runAt"),  # before the first representable
        ({"runAt": "2030-01-01T09:00:00Z", "delaySeconds": 5}, "runAt"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"params": {"instructions": 5}}, "params/instructions"),
        ({"params": "all"}, "params"),
    ],
)
def test_invalid_values_are_named(client: httpx.Client, fields: dict[str, Any], named: str) -> None:
    response = client.post(f"{P}/jobs", json={"type": "pdf-analysis", **fields})

    assert named in fields_of(problem(response, 422))


@pytest.mark.parametrize("body", [b"[]", b'"job"', b"5", b"null"])
def test_the_body_must_be_an_object(client: httpx.Client, body: bytes) -> None:
    response = client.post(f"{P}/jobs", content=body, headers={"Content-Type": "application/json"})

    problem(response, 422)


def test_an_unknown_job_type_is_a_422(client: httpx.Client) -> None:
    response = client.post(f"{P}/jobs", json={"type": "bake-a-cake"})

    assert fields_of(problem(response, 422)) == ["type"]


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"priority": "high"}, "priority"),
        ({"priority": "500"}, "priority"),
        ({"delaySeconds": "never"}, "delaySeconds"),
        ({"metadata": "{not json"}, "metadata"),
        ({"schema": "[" * 5000}, "schema"),
        ({"colour": "red"}, "colour"),
        ({"runAt": "0001-01-01T00:00:00+01:00"}, "runAt"),
    ],
)
def test_invalid_form_fields_are_named(
    server: RunningServer, client: httpx.Client, form: dict[str, str], named: str
) -> None:
    inputs = server.data / "blobs" / "inputs"
    before = {path for path in inputs.rglob("*") if path.is_file()}

    response = upload(client, SAMPLE_PDF, form)

    assert named in fields_of(problem(response, 422))
    after = {path for path in inputs.rglob("*") if path.is_file()}
    assert after <= before  # the refused upload was not kept


def test_a_file_that_is_not_a_pdf_is_a_415(client: httpx.Client) -> None:
    response = upload(client, b"GIF89a not a pdf at all", filename="cat.gif")

    problem(response, 415)


def test_an_upload_needs_a_file_part(client: httpx.Client) -> None:
    # A part without a filename is a text field: a multipart form with no file in it.
    only_text = client.post(f"{P}/pdf-processing", files={"instructions": (None, "Summarise")})
    wrong_name = client.post(f"{P}/pdf-processing", files={"document": ("a.pdf", SAMPLE_PDF)})
    text_file = client.post(f"{P}/pdf-processing", files={"file": (None, "%PDF-1.7")})

    assert fields_of(problem(only_text, 422)) == ["file"]
    assert fields_of(problem(wrong_name, 422)) == ["document", "file"]
    assert fields_of(problem(text_file, 422)) == ["file"]


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server configured, as an operator would, to take uploads of at most 2 KiB."""
    environ = {"JOBKIT_MAX_UPLOAD_BYTES": "2048"}
    with serve(tmp_path_factory.mktemp("small-uploads"), environ) as running:
        yield running


def test_an_upload_over_the_configured_limit_is_a_413(small_server: RunningServer) -> None:
    assert len(SAMPLE_PDF) > 2048
    with small_server.client(new_user()) as client:
        too_large = problem(upload(client, SAMPLE_PDF), 413)
        assert "2048" in too_large["detail"]
        problem(upload(client, b"%PDF-" + b" " * 1024 * 1024), 413)
        assert upload(client, CORRUPT_PDF).status_code == 202
    leftovers = [path for path in (small_server.data / "blobs").rglob("*") if path.is_file()]
    assert len([path for path in leftovers if path.name == "document.pdf"]) == 1


# -- not found, not allowed, not yours --------------------------------------------------


JOB_ROUTES = [
    ("GET", ""),
    ("GET", "/status"),
    ("GET", "/result"),
    ("DELETE", ""),
    ("PUT", "/retry"),
    ("DELETE", "/record"),
]


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
def test_an_unknown_job_is_a_404(client: httpx.Client, method: str, suffix: str) -> None:
    problem(client.request(method, f"{P}/jobs/{uuid.uuid4()}{suffix}"), 404)


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
@pytest.mark.parametrize("raw", ["not-a-uuid", "12345", "0" * 40])
def test_a_malformed_job_id_is_a_404(
    client: httpx.Client, method: str, suffix: str, raw: str
) -> None:
    problem(client.request(method, f"{P}/jobs/{raw}{suffix}"), 404)


@pytest.mark.parametrize(("method", "suffix"), JOB_ROUTES)
def test_another_users_job_is_reported_as_missing(
    client: httpx.Client, other_client: httpx.Client, method: str, suffix: str
) -> None:
    job_id = submit(client, form=LATER)
    unknown = str(uuid.uuid4())

    theirs = other_client.request(method, f"{P}/jobs/{job_id}{suffix}")
    missing = other_client.request(method, f"{P}/jobs/{unknown}{suffix}")

    body = problem(theirs, 404)
    assert body == {
        key: value.replace(unknown, job_id) if isinstance(value, str) else value
        for key, value in problem(missing, 404).items()
    }
    assert dict(theirs.headers).keys() == dict(missing.headers).keys()
    owner_view = client.get(f"{P}/jobs/{job_id}").json()
    assert owner_view["status"] == "pending"
    assert owner_view["version"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", f"{P}/jobs/{uuid.uuid4()}"),
        ("PUT", f"{P}/jobs"),
        ("GET", f"{P}/pdf-processing"),
        ("POST", f"{P}/jobs/{uuid.uuid4()}/retry"),
        ("POST", "/healthz"),
        ("DELETE", "/openapi.json"),
    ],
)
def test_a_wrong_method_is_a_405(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)

    problem(response, 405)
    assert response.headers["Allow"]


@pytest.mark.parametrize("path", ["/", "/api/v2/jobs", f"{P}/jobs/{uuid.uuid4()}/nothing"])
def test_an_unknown_route_is_a_404(client: httpx.Client, path: str) -> None:
    problem(client.get(path), 404)


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"{P}/jobs"), ("POST", f"{P}/jobs"), ("GET", f"{P}/jobs/{uuid.uuid4()}/status")],
)
def test_a_request_without_a_token_is_a_401(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, path)

    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_a_401(
    server: RunningServer, anonymous: httpx.Client, tmp_path: Path
) -> None:
    foreign = keys.issue_token(tmp_path, "mallory", now=datetime.now(UTC))  # another key pair
    expired = keys.issue_token(
        server.data, "mallory", ttl_seconds=60, now=datetime.now(UTC) - timedelta(hours=2)
    )
    for authorization in (
        "Bearer not-a-token",
        f"Bearer {foreign}",
        f"Bearer {expired}",
        f"Basic {server.token('mallory')}",
    ):
        response = anonymous.get(f"{P}/jobs", headers={"Authorization": authorization})
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- internal errors ----------------------------------------------------------------------


def test_an_internal_error_is_a_500_that_reveals_nothing(tmp_path: Path) -> None:
    # A real fault under a running server: another process drops the `jobs` table (think of
    # a botched manual migration). The store's next read raises `sqlite3.OperationalError`,
    # which no handler expects. No worker runs, so only the request meets the fault.
    with serve(tmp_path, worker=False) as running, running.client(new_user()) as client:
        job_id = submit(client)
        assert client.get("/readyz").status_code == 200
        with contextlib.closing(sqlite3.connect(tmp_path / "jobs.db")) as database:
            database.execute("DROP TABLE jobs")
            database.commit()

        response = client.get(f"{P}/jobs/{job_id}")

        body = problem(response, 500)
        assert body["type"].endswith("/internal-error")
        assert set(body) == {"type", "title", "status", "detail", "instance"}
        text = response.text.lower()
        for internal in ("traceback", "sqlite", "operationalerror", "no such table", ".py"):
            assert internal not in text
        # The server drops the connection after an unhandled error; it says so, so a client
        # does not reuse it and get reset.
        assert response.headers["Connection"] == "close"
        problem(client.get("/readyz"), 503)


# -- idempotency ----------------------------------------------------------------------------


def test_the_same_key_and_body_return_the_first_job(client: httpx.Client) -> None:
    first = upload(client, SAMPLE_PDF, LATER, key="order-1")
    second = upload(client, SAMPLE_PDF, LATER, key="order-1")

    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    assert second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert len(client.get(f"{P}/jobs").json()["jobs"]) == 1


def test_the_same_key_with_another_body_is_a_422_and_changes_nothing(
    server: RunningServer, client: httpx.Client
) -> None:
    job_id = upload(client, SAMPLE_PDF, LATER, key="order-2").json()["id"]
    stored = blob(server, client.get(f"{P}/jobs/{job_id}").json()["input"]["blob"])

    other_fields = upload(client, SAMPLE_PDF, {"delaySeconds": 7200}, key="order-2")
    other_file = upload(client, CORRUPT_PDF, LATER, key="order-2")

    for response in (other_fields, other_file):
        assert problem(response, 422)["type"].endswith("/idempotency-key-reused")
    assert stored.read_bytes() == SAMPLE_PDF  # the first job's document is untouched
    inputs = [path for path in stored.parents[1].rglob("*") if path.is_file()]
    assert [path for path in inputs if not path.name.startswith(".")] == [stored]
    job = client.get(f"{P}/jobs/{job_id}").json()
    assert job["version"] == 1
    assert len(client.get(f"{P}/jobs").json()["jobs"]) == 1


def test_keys_belong_to_their_user(client: httpx.Client, other_client: httpx.Client) -> None:
    mine = upload(client, SAMPLE_PDF, LATER, key="shared-key")
    theirs = upload(other_client, SAMPLE_PDF, LATER, key="shared-key")

    assert mine.status_code == theirs.status_code == 202
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_idempotency_key_is_a_422(client: httpx.Client, key: str) -> None:
    problem(upload(client, SAMPLE_PDF, LATER, key=key), 422)


def test_concurrent_duplicates_create_exactly_one_job(
    server: RunningServer, user: str, client: httpx.Client
) -> None:
    # Large enough that uploads overlap: a twin arriving while the first is in flight is a
    # 409; one arriving after it is a replay.
    document = SAMPLE_PDF + b"%" + b"x" * (4 * 1024 * 1024)
    twins = 6
    barrier = threading.Barrier(twins)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        with server.client(user) as own:
            barrier.wait()
            response = upload(own, document, LATER, key="burst")
            with lock:
                answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(twins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(answers) == twins
    accepted = [response for response in answers if response.status_code == 202]
    assert accepted
    assert {response.json()["id"] for response in accepted} == {accepted[0].json()["id"]}
    for response in answers:
        if response.status_code != 202:
            problem(response, 409)
    jobs = client.get(f"{P}/jobs").json()["jobs"]
    assert [job["id"] for job in jobs] == [accepted[0].json()["id"]]
    stored = blob(server, jobs[0]["input"]["blob"])
    assert stored.read_bytes() == document
    files = [path for path in stored.parents[1].rglob("*") if path.is_file()]
    assert [path for path in files if not path.name.startswith(".")] == [stored]


# -- status polling -------------------------------------------------------------------------


def test_an_unchanged_status_is_a_304(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)
    first = client.get(f"{P}/jobs/{job_id}/status")
    etag = first.headers["ETag"]

    again = client.get(f"{P}/jobs/{job_id}/status", headers={"If-None-Match": etag})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    listed = client.get(f"{P}/jobs/{job_id}/status", headers={"If-None-Match": f'"x", {etag}'})
    assert listed.status_code == 304
    stale = client.get(f"{P}/jobs/{job_id}/status", headers={"If-None-Match": '"v999"'})
    assert stale.status_code == 200


def test_retry_after_is_sent_only_while_a_job_is_unfinished(client: httpx.Client) -> None:
    pending = submit(client, form={"delaySeconds": 30})
    done = finished(client)

    waiting = client.get(f"{P}/jobs/{pending}/status")
    over = client.get(f"{P}/jobs/{done['id']}/status")

    assert waiting.json()["status"] == "pending"
    assert 1 <= int(waiting.headers["Retry-After"]) <= 30
    assert waiting.headers["Cache-Control"] == "no-cache"
    assert over.json()["status"] in FINISHED
    assert "Retry-After" not in over.headers


def test_a_long_poll_returns_as_soon_as_the_status_changes(client: httpx.Client) -> None:
    job_id = submit(client, form={"delaySeconds": 1.5})
    first = client.get(f"{P}/jobs/{job_id}/status")
    assert first.json()["status"] == "pending"

    started = time.monotonic()
    changed = client.get(
        f"{P}/jobs/{job_id}/status",
        params={"wait": 10},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    elapsed = time.monotonic() - started

    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert changed.json()["status"] != "pending" or changed.json()["version"] > 1
    assert elapsed < 8.0


def test_a_long_poll_without_a_change_ends_with_a_304(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)
    etag = client.get(f"{P}/jobs/{job_id}/status").headers["ETag"]

    response = client.get(
        f"{P}/jobs/{job_id}/status", params={"wait": 0.5}, headers={"If-None-Match": etag}
    )

    assert response.status_code == 304
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize(
    "params", [{"wait": "31"}, {"wait": "-1"}, {"wait": "soon"}, {"wait": "nan"}, {"since": "1"}]
)
def test_bad_status_query_parameters_are_a_422(
    client: httpx.Client, params: dict[str, str]
) -> None:
    job_id = submit(client, form=LATER)

    problem(client.get(f"{P}/jobs/{job_id}/status", params=params), 422)


# -- listing ----------------------------------------------------------------------------------

PRIORITIES = [10, 50, 50, 90, 0, 100, 50, 30, 30, 70]


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> tuple[str, list[dict[str, Any]]]:
    """A user with 12 jobs: 10 pending (various priorities), one completed, one failed."""
    owner = new_user()
    with server.client(owner) as client:
        for priority in PRIORITIES:
            submit(client, form={**LATER, "priority": priority})
        for document in (SAMPLE_PDF, CORRUPT_PDF):
            wait_for(client, submit(client, document))
        jobs = client.get(f"{P}/jobs", params={"limit": 100}).json()["jobs"]
    assert len(jobs) == 12
    return owner, jobs


def listed(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get(f"{P}/jobs", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def pages(client: httpx.Client, **params: Any) -> Iterator[list[str]]:
    cursor: str | None = None
    while True:
        query = {**params} if cursor is None else {**params, "cursor": cursor}
        response = client.get(f"{P}/jobs", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        yield [job["id"] for job in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return


@pytest.fixture
def catalog_client(
    server: RunningServer, catalog: tuple[str, list[dict[str, Any]]]
) -> Iterator[httpx.Client]:
    with server.client(catalog[0]) as client:
        yield client


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["id"] for job in jobs]


def test_the_list_filters_by_status(
    catalog_client: httpx.Client, catalog: tuple[str, list[dict[str, Any]]]
) -> None:
    jobs = catalog[1]
    by_status = {
        status: {job["id"] for job in jobs if job["status"] == status}
        for status in ("pending", "completed", "failed")
    }

    assert set(listed(catalog_client, status="pending")) == by_status["pending"]
    assert set(listed(catalog_client, status="completed,failed")) == (
        by_status["completed"] | by_status["failed"]
    )
    assert len(by_status["completed"]) == len(by_status["failed"]) == 1
    assert listed(catalog_client, status="cancelled") == []


def test_the_list_filters_by_type(
    catalog_client: httpx.Client, catalog: tuple[str, list[dict[str, Any]]]
) -> None:
    assert listed(catalog_client, type="pdf-analysis") == ids(catalog[1])
    assert listed(catalog_client, type="bake-a-cake") == []


def test_the_list_filters_by_creation_time(
    catalog_client: httpx.Client, catalog: tuple[str, list[dict[str, Any]]]
) -> None:
    oldest_first = sorted(catalog[1], key=lambda job: (job["createdAt"], job["id"]))
    pivot = oldest_first[5]["createdAt"]
    last = oldest_first[-1]["createdAt"]

    newer = listed(catalog_client, createdFrom=pivot, sort="createdAt")
    older = listed(catalog_client, createdTo=pivot, sort="createdAt")
    window = listed(catalog_client, createdFrom=pivot, createdTo=last, sort="createdAt")

    assert newer == ids(oldest_first[5:])  # from: inclusive
    assert older == ids(oldest_first[:5])  # to: exclusive
    assert window == ids(oldest_first[5:-1])


@pytest.mark.parametrize("sort", ["createdAt", "-createdAt", "priority", "-priority"])
def test_the_list_sorts(
    catalog_client: httpx.Client, catalog: tuple[str, list[dict[str, Any]]], sort: str
) -> None:
    field = sort.lstrip("-")

    def order(job: dict[str, Any]) -> tuple[Any, ...]:
        if field == "priority":
            return (job["priority"], job["createdAt"], job["id"])
        return (job["createdAt"], job["id"])

    expected = sorted(catalog[1], key=order, reverse=sort.startswith("-"))

    assert listed(catalog_client, sort=sort) == ids(expected)


@pytest.mark.parametrize("sort", ["createdAt", "-createdAt", "priority", "-priority"])
def test_pages_of_three_hold_each_job_exactly_once(
    catalog_client: httpx.Client, catalog: tuple[str, list[dict[str, Any]]], sort: str
) -> None:
    seen = list(pages(catalog_client, sort=sort, limit=3))

    assert [len(page) for page in seen] == [3, 3, 3, 3]
    assert [job_id for page in seen for job_id in page] == listed(catalog_client, sort=sort)


@pytest.mark.parametrize("sort", ["createdAt", "-createdAt", "priority", "-priority"])
def test_paging_while_jobs_are_inserted_never_repeats_or_skips(
    server: RunningServer, user: str, client: httpx.Client, sort: str
) -> None:
    existing = {submit(client, form={**LATER, "priority": p}) for p in PRIORITIES[:8]}
    stop = threading.Event()
    inserted: list[str] = []

    def insert() -> None:
        with server.client(user) as writer:
            for priority in [50, 0, 100, 20, 80, 50, 10, 90] * 4:
                if stop.is_set():
                    return
                inserted.append(submit(writer, form={**LATER, "priority": priority}))

    thread = threading.Thread(target=insert)
    thread.start()
    try:
        seen: list[str] = []
        for page in pages(client, sort=sort, limit=3):
            seen.extend(page)
            time.sleep(0.02)  # let the writer get in between pages
    finally:
        stop.set()
        thread.join(30)

    assert len(seen) == len(set(seen))  # nothing repeated
    assert existing <= set(seen)  # nothing that existed before was skipped
    assert set(seen) <= existing | set(inserted)


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "W1tbW1tb" * 200},
        {"colour": "red"},
        {"status": "sleeping"},
        {"sort": "name"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"limit": "²"},
        {"createdFrom": "yesterday"},
        {"createdTo": "2030-01-01T00:00:00"},
        {"createdFrom": "0001-01-01T00:00:00+01:00"},
    ],
)
def test_bad_list_parameters_are_a_422(client: httpx.Client, params: dict[str, str]) -> None:
    body = problem(client.get(f"{P}/jobs", params=params), 422)

    assert set(fields_of(body)) == set(params)


def test_a_cursor_only_continues_its_own_sort_order(
    catalog_client: httpx.Client,
) -> None:
    first = catalog_client.get(f"{P}/jobs", params={"limit": 3, "sort": "priority"}).json()

    response = catalog_client.get(
        f"{P}/jobs", params={"limit": 3, "sort": "createdAt", "cursor": first["nextCursor"]}
    )

    assert fields_of(problem(response, 422)) == ["cursor"]


def test_users_see_only_their_own_jobs(
    catalog: tuple[str, list[dict[str, Any]]], other_client: httpx.Client
) -> None:
    assert listed(other_client) == []
    for status in ("pending", "completed", "failed"):
        assert listed(other_client, status=status) == []


# -- operations ----------------------------------------------------------------------------


def test_health_and_readiness(anonymous: httpx.Client) -> None:
    health = anonymous.get("/healthz")
    ready = anonymous.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def event_counts(client: httpx.Client) -> dict[str, float]:
    """`jobkit_job_events_total` of pdf-analysis jobs in the default queue, by event."""
    counts: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("jobkit_job_events_total{") and 'type="pdf-analysis"' in line:
            labels, value = line.rsplit(" ", 1)
            name = labels.split('event="', 1)[1].split('"', 1)[0]
            counts[name] = counts.get(name, 0.0) + float(value)
    return counts


def test_metrics_count_job_events(client: httpx.Client, anonymous: httpx.Client) -> None:
    before = event_counts(anonymous)
    done = finished(client)
    cancelled = submit(client, form=LATER)
    client.delete(f"{P}/jobs/{cancelled}").raise_for_status()
    client.delete(f"{P}/jobs/{done['id']}/record").raise_for_status()

    response = anonymous.get("/metrics")
    after = event_counts(anonymous)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "jobkit_http_request_seconds" in response.text
    # requests are labelled by route template (bounded), never by the raw path
    assert 'method="DELETE",route="/api/v1/jobs/{job_id}",status="200"' in response.text
    assert cancelled not in response.text
    gained = {name: after[name] - before.get(name, 0.0) for name in after}
    for name, least in {
        "created": 2,
        "started": 1,
        "completed": 1,
        "cancelled": 1,
        "purged": 1,
    }.items():
        assert gained.get(name, 0.0) >= least, (name, gained)


def test_the_openapi_document_is_served(anonymous: httpx.Client) -> None:
    response = anonymous.get("/openapi.json")

    assert response.status_code == 200
    assert response.json() == openapi.DOCUMENT

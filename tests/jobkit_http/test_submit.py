"""Submitting over real HTTP: POST /jobs and /pdf-processing, what they refuse and why, and
the Idempotency-Key that makes a retried upload safe."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobkit_http import api
from jobkit_http import submit as submitting
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    CORRUPT_PDF,
    LATER,
    SAMPLE_PDF,
    RunningServer,
    fields_of,
    input_blob,
    problem,
    serve,
    upload,
    wait_for,
)

P = api.PREFIX
PAGE_TEXTS = (
    "Chapter 1: The Lighthouse",
    "Chapter 2: The Orchard",
    "Chapter 3: The Glacier",
)


# -- accepted ---------------------------------------------------------------------------


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
    stored = input_blob(server, job_id)

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
    stored = input_blob(server, jobs[0]["id"])
    assert stored.read_bytes() == document
    files = [path for path in stored.parents[1].rglob("*") if path.is_file()]
    assert [path for path in files if not path.name.startswith(".")] == [stored]

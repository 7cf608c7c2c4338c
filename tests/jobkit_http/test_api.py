"""The `/api/v1` endpoints over real HTTP: cancel, retry and delete a record; unknown ids,
wrong methods, missing tokens and other users' jobs on every route; internal errors; health,
metrics and the OpenAPI document."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jobkit_http import api, keys, openapi
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    CORRUPT_PDF,
    LATER,
    RunningServer,
    blob,
    finished,
    problem,
    serve,
    submit,
    wait_for,
)

P = api.PREFIX


# -- cancel, retry, delete -------------------------------------------------------------


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
    stored = [f"inputs/{job['id']}/document.pdf", f"results/{job['id']}/attempt-1.json"]
    files = [blob(server, key) for key in stored]
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


@pytest.mark.parametrize("path", ["/nothing", "/api/v2/jobs", f"{P}/jobs/{uuid.uuid4()}/nothing"])
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

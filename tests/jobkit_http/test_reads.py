"""Reading jobs over real HTTP: the list (filters, sorts, cursors), a job's status (ETag,
Retry-After, long polls) and its result."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobkit import _cache
from jobkit_http import api, reads, views
from tests.jobkit.conformance import T0, claimed, new
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    CORRUPT_PDF,
    FINISHED,
    LATER,
    SAMPLE_PDF,
    RunningServer,
    fields_of,
    finished,
    problem,
    submit,
    wait_for,
)

P = api.PREFIX


# -- the list and the result -----------------------------------------------------------


def test_the_list_holds_the_callers_jobs(client: httpx.Client) -> None:
    first = submit(client, form=LATER)
    second = submit(client, form=LATER)

    response = client.get(f"{P}/jobs")

    assert response.status_code == 200
    page = response.json()
    assert [job["id"] for job in page["jobs"]] == [second, first]
    assert page["nextCursor"] is None


def test_an_unfinished_job_has_no_result_yet(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)

    body = problem(client.get(f"{P}/jobs/{job_id}/result"), 409)

    assert body["jobStatus"] == "pending"


def test_a_failed_job_has_no_result(client: httpx.Client) -> None:
    job_id = submit(client, CORRUPT_PDF)
    wait_for(client, job_id)

    body = problem(client.get(f"{P}/jobs/{job_id}/result"), 409)

    assert body["jobStatus"] == "failed"


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


def test_a_polled_status_follows_its_job(client: httpx.Client, anonymous: httpx.Client) -> None:
    job_id = submit(client, form=LATER)
    polls = [client.get(f"{P}/jobs/{job_id}/status") for _ in range(3)]
    client.delete(f"{P}/jobs/{job_id}").raise_for_status()

    after = client.get(f"{P}/jobs/{job_id}/status")
    shouted = client.get(f"{P}/jobs/{job_id.upper()}/status")  # ids are UUIDs in any case

    assert {poll.content for poll in polls} == {polls[0].content}
    assert polls[0].json()["status"] == "pending"
    assert polls[0].headers["content-type"] == "application/json"
    assert after.json()["status"] == "cancelled"
    assert after.headers["ETag"] != polls[0].headers["ETag"]
    assert (shouted.status_code, shouted.content) == (200, after.content)
    route = f'method="GET",route="{P}/jobs/{{job_id}}/status",status="200"'
    assert route in anonymous.get("/metrics").text


def test_status_bodies_are_remembered_per_job_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "_BODIES", _cache.IdentityCache[bytes](max_entries=3))
    for job in [new(n) for n in range(10)]:
        body = reads.status_body(job)
        assert json.loads(body) == views.status_view(job)
        assert reads.status_body(job) is body
        assert 1 <= len(reads._BODIES) <= 3
        running = claimed(job, T0)
        assert json.loads(reads.status_body(running))["status"] == "processing"


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

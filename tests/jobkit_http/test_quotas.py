"""Per-user quotas over real HTTP: 429 problem+json with Retry-After, and admitted again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from jobkit_http import api
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import LATER, problem, serve, upload

P = api.PREFIX


def job_request(client: httpx.Client) -> httpx.Response:
    # A job type that needs a document, sent without one: refused (422) after the quota.
    return client.post(f"{P}/jobs", json={"type": "pdf-analysis"})


def test_submissions_past_the_per_minute_quota_are_429_then_admitted_again(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, {"JOBKIT_USER_SUBMITS_PER_MINUTE": "30"}) as server:
        ann, bob = new_user(), new_user()
        with server.client(ann) as client, server.client(bob) as other:
            # Every submission counts, valid or not: a burst of 30 is let through.
            for _ in range(29):
                assert job_request(client).status_code == 422
            assert upload(client, form=LATER).status_code == 202
            refused = problem(upload(client, form=LATER), 429)
            assert refused["limit"] == "per_minute"
            wait = int(client.post(f"{P}/jobs", json={}).headers["Retry-After"])
            assert 1 <= wait <= 2  # one token a 2 s
            assert refused["retryAfter"] in (wait, wait + 1)
            problem(job_request(client), 429)
            # Someone else is not held back.
            assert upload(other, form=LATER).status_code == 202
            time.sleep(wait)
            assert upload(client, form=LATER).status_code == 202
            # The refused uploads left nothing behind.
            listed = client.get(f"{P}/jobs").json()
            assert len(listed["jobs"]) == 2


def test_pending_jobs_past_the_quota_are_429_across_processes_until_one_finishes(
    tmp_path: Path,
) -> None:
    environ = {"JOBKIT_USER_MAX_PENDING": "2"}
    with serve(tmp_path, environ) as first, serve(tmp_path, environ) as second:
        ann = new_user()
        with first.client(ann) as one, second.client(ann) as two:
            kept = [upload(one, form=LATER).json()["id"], upload(two, form=LATER).json()["id"]]
            for client in (one, two):  # the count is the store's, not a process's
                refused = client.post(f"{P}/jobs", json={"type": "pdf-analysis"})
                body = problem(refused, 429)
                assert body["limit"] == "max_active"
                assert int(refused.headers["Retry-After"]) >= 1
                problem(upload(client, form=LATER), 429)
            with first.client(new_user()) as other:
                assert upload(other, form=LATER).status_code == 202
            assert one.delete(f"{P}/jobs/{kept[0]}").status_code == 200  # cancelled: finished
            assert upload(two, form=LATER).status_code == 202
            problem(upload(one, form=LATER), 429)

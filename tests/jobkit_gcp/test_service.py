"""The whole service on the GCP backend: two `jobkit serve` processes on the same emulators,
as two Cloud Run instances share Firestore and a bucket.

PDFs go to one instance and are polled and fetched from the other; a submission retried on
the other instance with the same Idempotency-Key finds the first job; one instance is killed
with SIGKILL while it holds jobs and the other finishes them; users see only their own jobs;
purging a job deletes its document and its objects. With local auth both instances verify
tokens with the key in the one `--data` folder they share; the bucket exists beforehand,
as it would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from google.cloud import firestore, storage

import jobkit_gcp
from jobkit_http import keys
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_http import exposition
from tests.jobkit_http.server import SAMPLE_PDF

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0


@attrs.frozen
class Instance:
    process: subprocess.Popen[bytes]
    base_url: str
    data: Path

    def client(self, user: str) -> httpx.Client:
        token = keys.issue_token(self.data, user, now=datetime.now(UTC))
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@contextlib.contextmanager
def instance(
    data: Path, environ: Mapping[str, str], log: Path, *, port: int | None = None
) -> Iterator[Instance]:
    """`jobkit serve` in a process of its own (on `port`, or a free one), until the block
    ends (SIGTERM, then kill)."""
    port = port or free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", "serve", "--port", str(port), "--data", data],
            env={**os.environ, **environ},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    running = Instance(process=process, base_url=f"http://127.0.0.1:{port}", data=data)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _ready(running.base_url):
            assert process.poll() is None, f"the instance exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the instance did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def upload(client: httpx.Client, instructions: str, key: str | None = None) -> str:
    response = client.post(
        "/api/v1/pdf-processing",
        files={"file": ("sample.pdf", SAMPLE_PDF, "application/pdf")},
        data={"instructions": instructions},
        headers={} if key is None else {"Idempotency-Key": key},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def objects(bucket: str, job_id: str) -> list[str]:
    client = storage.Client()
    return [
        blob.name
        for folder in ("inputs", "results")
        for blob in client.list_blobs(bucket, prefix=f"{folder}/{job_id}/")
    ]


def lease_owner(project: str, job_id: str) -> str | None:
    """Which worker holds the job, as Firestore has it (the API leaves that to operators)."""

    async def main() -> str | None:
        client = firestore.AsyncClient(project=project)
        try:
            snapshot = await client.collection("jobs").document(job_id).get()
            owner = (snapshot.to_dict() or {}).get("leaseOwner")
            return owner if isinstance(owner, str) else None
        finally:
            await jobkit_gcp.FirestoreJobStore(client).close()

    return asyncio.run(main())


def document_exists(project: str, job_id: str) -> bool:
    async def main() -> bool:
        client = firestore.AsyncClient(project=project)
        try:
            snapshot = await client.collection("jobs").document(job_id).get()
            return bool(snapshot.exists)
        finally:
            await jobkit_gcp.FirestoreJobStore(client).close()

    return asyncio.run(main())


@pytest.mark.slow
def test_two_instances_share_the_jobs_survive_a_kill_and_keep_users_apart(
    emulators: Emulators, gemini: GeminiServer, tmp_path: Path
) -> None:
    project, bucket = unique("service"), unique("service")
    storage.Client().create_bucket(bucket)
    data = tmp_path / "data"
    common = {
        **emulators.environ(),
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": project,
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_LEASE_SECONDS": "2",
        "JOBKIT_GRACE_SECONDS": "1",
        "JOBKIT_CONCURRENCY": "4",
        "JOBKIT_LOG_LEVEL": "WARNING",
    }
    # The first instance analyses with a model that never answers (a stub Gemini that holds
    # every call): the jobs it claims stay held, heartbeats and all, until it is killed.
    gemini.default = attrs.evolve(answer({"title": "never"}), delay=600.0)
    slow = {
        **common,
        "JOBKIT_ANALYZER": "gemini",
        "JOBKIT_GEMINI_API_KEY": gemini.api_key,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "JOBKIT_GEMINI_TIMEOUT_SECONDS": "600",
    }
    with (
        instance(data, slow, tmp_path / "first.log") as first,
        instance(data, common, tmp_path / "second.log") as second,
        first.client("alice") as alice_first,
        second.client("alice") as alice,
        second.client("bob") as bob,
    ):
        submitted = [upload(alice_first, f"Summarise, take {n}.") for n in range(11)]
        # A retried submission reaching the other instance finds the job the first stored.
        keyed = upload(alice_first, "Summarise, once.", key="retry-me")
        again = alice.post(
            "/api/v1/pdf-processing",
            files={"file": ("sample.pdf", SAMPLE_PDF, "application/pdf")},
            data={"instructions": "Summarise, once."},
            headers={"Idempotency-Key": "retry-me"},
        )
        assert again.status_code == 202, again.text
        assert again.json()["id"] == keyed
        assert again.headers["Idempotent-Replayed"] == "true"
        submitted.append(keyed)

        def held_by_first() -> list[str]:
            return [
                job_id
                for job_id in submitted
                if (owner := lease_owner(project, job_id)) is not None
                and int(owner.split(":")[1]) == first.process.pid
            ]

        wait_until(lambda: len(held_by_first()) >= 2, 60, "the first instance to hold jobs")
        held = held_by_first()
        first.process.kill()  # SIGKILL: no grace, no release; its leases run out
        first.process.wait()

        def all_completed() -> bool:
            return all(job(alice, job_id)["status"] == "completed" for job_id in submitted)

        wait_until(all_completed, 90, "the second instance to finish every job")
        for job_id in submitted:
            result = alice.get(f"/api/v1/jobs/{job_id}/result")
            assert result.status_code == 200, result.text
            assert result.json()["jobId"] == job_id
        for job_id in held:  # each stalled once, with the killed instance's lease
            outcomes = [entry["outcome"] for entry in job(alice, job_id)["history"]]
            assert "stalled" in outcomes, outcomes
            assert outcomes[-1] == "succeeded"

        listed = alice.get("/api/v1/jobs", params={"limit": 100}).json()["jobs"]
        assert sorted(entry["id"] for entry in listed) == sorted(submitted)
        assert bob.get("/api/v1/jobs").json() == {"jobs": [], "nextCursor": None}
        assert bob.get(f"/api/v1/jobs/{submitted[0]}").status_code == 404
        assert bob.get(f"/api/v1/jobs/{submitted[0]}/result").status_code == 404
        assert bob.delete(f"/api/v1/jobs/{submitted[0]}/record").status_code == 404

        purged = submitted[0]
        assert objects(bucket, purged)  # its input and its result
        assert alice.delete(f"/api/v1/jobs/{purged}/record").status_code == 204
        assert alice.get(f"/api/v1/jobs/{purged}").status_code == 404
        assert not document_exists(project, purged)
        wait_until(lambda: objects(bucket, purged) == [], 10, "the purged job's objects to go")
        assert objects(bucket, submitted[1])  # the others keep theirs


def store_gets(base_url: str) -> float:
    """How many `get` calls the instance's job store has answered (its /metrics)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    assert "jobkit_external_call_seconds_count{" in text  # the series exist: calls were made
    found = exposition.value(
        text, "jobkit_external_call_seconds_count", target="store", operation="get", outcome="ok"
    )
    return found or 0.0


def test_status_polls_are_answered_by_the_listeners_not_the_store(
    emulators: Emulators, tmp_path: Path
) -> None:
    """On Firestore a polled job is kept current by a listener: polls after the first read
    nothing from the store, whatever their number (the README's polling costs no reads)."""
    project, bucket = unique("polls"), unique("polls")
    storage.Client().create_bucket(bucket)
    environ = {
        **emulators.environ(),
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": project,
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_LOG_LEVEL": "WARNING",
    }
    with (
        instance(tmp_path / "data", environ, tmp_path / "serve.log") as served,
        served.client("alice") as alice,
        served.client("bob") as bob,
    ):
        job_id = upload(alice, "Summarise.")
        status = f"/api/v1/jobs/{job_id}/status"
        wait_until(lambda: alice.get(status).json()["status"] == "completed", 60, "completion")
        before = store_gets(served.base_url)
        for _ in range(20):
            answer = alice.get(status)
            assert answer.status_code == 200
            assert answer.json()["status"] == "completed"
        tag = answer.headers["ETag"]
        assert alice.get(status, headers={"If-None-Match": tag}).status_code == 304
        assert store_gets(served.base_url) == before
        assert bob.get(status).status_code == 404  # kept or not, never another user's

"""Push dispatch end to end on loopback: `jobkit serve` with `JOBKIT_DISPATCH=push` on the
Firestore emulator, fake-gcs-server, the stub Gemini and the Cloud Tasks emulator, which
delivers each doorbell to `POST /internal/dispatch` at its schedule time. No pull loop runs:
every job completes through doorbells alone, a scheduled one not before its time, one that
fails transiently twice after each backoff; the internal endpoints refuse anyone but the
dispatch service account (or the secret); a lost doorbell is made up by the sweep."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import storage

from jobkit import instants
from tests.jobkit_gcp import push
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_gcp.gemini_server import GeminiServer, answer, error
from tests.jobkit_gcp.test_service import Instance, instance, job
from tests.jobkit_http.server import SAMPLE_PDF, wait_for

FLAKY = "gemini-flaky"  # the model the stub fails for, twice


@attrs.frozen
class Pushed:
    served: Instance
    queue: str
    issuer: push.Issuer
    log: Path

    @property
    def url(self) -> str:
        return self.served.base_url


@pytest.fixture
def pushed(
    emulators: Emulators, tasks_emulator: str, gemini: GeminiServer, tmp_path: Path
) -> Iterator[Pushed]:
    gemini.default = answer(push.SUMMARY)
    project, bucket = unique("push"), unique("push")
    storage.Client().create_bucket(bucket)
    queue = push.make_queue(tasks_emulator, project)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with push.issuer() as google:
        environ = push.push_environ(
            emulators,
            tasks_emulator,
            project=project,
            bucket=bucket,
            queue=queue,
            url=url,
            gemini=gemini,
            issuer=google,
        )
        environ |= {"JOBKIT_GEMINI_MODELS": FLAKY, "JOBKIT_PORT": str(port)}
        with instance(tmp_path / "data", environ, log, port=port) as served:
            yield Pushed(served=served, queue=queue, issuer=google, log=log)


def upload(client: httpx.Client, **form: str) -> str:
    response = client.post(
        "/api/v1/pdf-processing",
        files={"file": ("sample.pdf", SAMPLE_PDF, "application/pdf")},
        data={"instructions": "Summarise.", **form},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def history(document: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = document["history"]
    return entries


def at(text: str) -> datetime:
    return instants.parse(text)


def dispatched(log: Path) -> list[dict[str, Any]]:
    """The access log's lines for the doorbells the service answered."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("path") == "/internal/dispatch"]


@pytest.mark.slow
def test_every_job_completes_through_doorbells_alone(pushed: Pushed, gemini: GeminiServer) -> None:
    gemini.script_for(FLAKY, *[error(503, "UNAVAILABLE", "The model is overloaded.")] * 2)
    with pushed.served.client("alice") as alice:
        flaky = upload(alice, model=FLAKY)
        plain = upload(alice)
        later = upload(alice, delaySeconds="4")
        submitted = alice.get(f"/api/v1/jobs/{later}").json()
        for job_id in (plain, later, flaky):
            assert wait_for(alice, job_id, timeout=60)["status"] == "completed"
        documents = {job_id: job(alice, job_id) for job_id in (plain, later, flaky)}

    # The scheduled one ran once, not before its time.
    [ran] = history(documents[later])
    assert at(ran["startedAt"]) >= at(submitted["runAt"])
    assert at(submitted["runAt"]) >= at(submitted["createdAt"])
    # The flaky one failed twice, and each retry started after its backoff.
    entries = history(documents[flaky])
    assert [e["outcome"] for e in entries] == ["failed", "failed", "succeeded"]
    for failed, retried in itertools.pairwise(entries):
        assert failed["error"]["code"] == "unavailable"
        assert at(retried["startedAt"]) >= at(failed["nextRunAt"])
    assert [e["outcome"] for e in history(documents[plain])] == ["succeeded"]
    # Each attempt ran inside a doorbell's request: five attempts, five or more doorbells
    # (a spare one, rung twice for one due moment, finds nothing and answers at once).
    answered = [line for line in dispatched(pushed.log) if line.get("status") == 200]
    assert len(answered) >= 5, answered
    assert "worker started" not in pushed.log.read_text()  # no pull loop in this process


@pytest.mark.slow
def test_the_internal_endpoints_take_only_the_dispatch_account_or_the_secret(
    pushed: Pushed,
) -> None:
    google = pushed.issuer
    audience = pushed.url  # the default audience: the dispatch URL
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    user = pushed.served.client("alice").headers["Authorization"]
    refused = {
        "nothing": {},
        "a user's token": {"Authorization": user},
        "a forged token": {"Authorization": f"Bearer {google.token(audience, key=stranger)}"},
        "another account": {
            "Authorization": f"Bearer {google.token(audience, email='someone@else.example')}"
        },
        "an unverified email": {
            "Authorization": f"Bearer {google.token(audience, verified=False)}"
        },
        "another audience": {"Authorization": f"Bearer {google.token('https://elsewhere')}"},
        "another issuer": {
            "Authorization": f"Bearer {google.token(audience, issuer='https://evil.example')}"
        },
        "an expired token": {"Authorization": f"Bearer {google.token(audience, lifetime=-600)}"},
        "a wrong secret": {"X-Jobkit-Dispatch-Secret": "not-the-secret-at-all"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }
    for path in ("/internal/dispatch", "/internal/sweep"):
        for what, headers in refused.items():
            response = httpx.post(pushed.url + path, headers=headers, timeout=10)
            assert response.status_code == 401, (path, what, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        good = {"Authorization": f"Bearer {google.token(audience)}"}
        assert httpx.post(pushed.url + path, headers=good, timeout=10).status_code == 200
        secret = {"X-Jobkit-Dispatch-Secret": push.SECRET}
        answer = httpx.post(pushed.url + path, headers=secret, timeout=10)
        assert answer.status_code == 200, answer.text
    # Nothing was due: a doorbell answers at once.
    assert answer.json() == {"reaped": 0, "due": 0, "waiting": 0, "rung": 0}
    idle = httpx.post(pushed.url + "/internal/dispatch", headers=secret, timeout=10)
    assert idle.json() == {"result": "idle", "jobId": None, "attempt": None}
    # Not part of the API: the OpenAPI document leaves them out.
    paths = httpx.get(pushed.url + "/openapi.json", timeout=10).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal")]


@pytest.mark.slow
def test_a_lost_doorbell_is_made_up_by_the_sweep(pushed: Pushed, tasks_emulator: str) -> None:
    with pushed.served.client("alice") as alice:
        job_id = upload(alice, delaySeconds="2")
        assert push.purge(tasks_emulator, pushed.queue) == 1  # its doorbell is lost
        due = at(alice.get(f"/api/v1/jobs/{job_id}").json()["runAt"])
        push.wait_until(lambda: push.now() > instants.plus(due, 3), 10, "the job to be due")
        assert job(alice, job_id)["status"] == "pending"  # nothing rang for it
        swept = httpx.post(
            pushed.url + "/internal/sweep",
            headers={"Authorization": f"Bearer {pushed.issuer.token(pushed.url)}"},
            timeout=10,
        )
        assert swept.status_code == 200, swept.text
        assert swept.json() == {"reaped": 0, "due": 1, "waiting": 0, "rung": 1}
        assert wait_for(alice, job_id, timeout=30)["status"] == "completed"

"""The service's logs as an operator reads them: a real server, its log lines captured as the
JSON it writes, checked for their levels and fields in a success, a retried failure, a
permanent failure, a crash, a slow call, a cancel by a user and a refused token."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from returns.result import Failure, Success

from jobkit import errors, pipeline, plugins, registry, retry
from jobkit_http import logs
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    CORRUPT_PDF,
    LATER,
    RunningServer,
    serve,
    submit,
    wait_for,
)

P = "/api/v1"
SECRET = "sk-live-do-not-log-me"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
QUICK = retry.RetryPolicy(max_attempts=3, backoff=retry.Backoff(base=0.05, cap=0.1))


def _flaky(job: Any, claim: int) -> pipeline.Pipeline:
    """Fails with a transient error on its first attempt, succeeds on the next."""
    yield from ()
    if claim == 1:
        return Failure(errors.transient("unavailable", "the service is warming up"))
    return Success(pipeline.Completion(result={"claim": claim}))


def _broken(job: Any, claim: int) -> pipeline.Pipeline:
    """A bug: raises."""
    yield from ()
    raise ZeroDivisionError("a bug in the pipeline")


TYPES = registry.of(
    [
        *plugins.discover().types.values(),
        registry.JobType(name="flaky", pipeline=_flaky, retry=QUICK),
        registry.JobType(name="broken", pipeline=_broken, retry=retry.RetryPolicy(max_attempts=1)),
    ]
)


class Lines:
    """The JSON lines the server wrote, parsed."""

    def __init__(self, buffer: io.StringIO) -> None:
        self._buffer = buffer

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._buffer.getvalue().splitlines()]

    def text(self) -> str:
        return self._buffer.getvalue()

    def about(self, job_id: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if line.get("jobId") == job_id]

    def event(self, job_id: str, event: str, attempt: int | None = None) -> dict[str, Any]:
        found = [
            line
            for line in self.about(job_id)
            if line.get("event") == event
            and (attempt is None or line.get("attempt") == attempt)
            and line["logger"] == "jobkit.jobs"
        ]
        assert len(found) == 1, (event, self.about(job_id))
        return found[0]

    def until(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The lines once one of them meets `predicate` (lines come from other threads)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.all()
            if any(predicate(line) for line in lines):
                return lines
            time.sleep(0.02)
        raise AssertionError(f"no such line in {timeout} s: {self.all()[-20:]}")


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Lines]]:
    """A server logging at DEBUG as JSON (`logs.configure`, as `jobkit serve` does) into a
    buffer; the loggers' settings are put back afterwards."""
    root = logging.getLogger()
    touched = [logging.getLogger(name) for name in (*logs.QUIET, "uvicorn.access")]
    saved = (root.handlers[:], root.level, [(lg.level, lg.disabled) for lg in touched])
    buffer = io.StringIO()
    logs.configure("DEBUG", "json", stream=buffer, project="demo-project")
    environ = {"JOBKIT_SLOW_ANALYZE_SECONDS": "0.000001", "JOBKIT_GCP_PROJECT": "demo-project"}
    try:
        with serve(tmp_path_factory.mktemp("logs"), environ, types=TYPES) as server:
            yield server, Lines(buffer)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for logger, (level, disabled) in zip(touched, saved[2], strict=True):
            logger.setLevel(level)
            logger.disabled = disabled


@pytest.fixture
def client(captured: tuple[RunningServer, Lines]) -> Iterator[httpx.Client]:
    with captured[0].client(new_user()) as authenticated:
        yield authenticated


def lines_of(captured: tuple[RunningServer, Lines]) -> Lines:
    return captured[1]


def test_every_line_is_one_json_object_in_cloud_logging_s_shape(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    submit(client)
    for line in lines_of(captured).all():
        assert line["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR"}
        assert line["message"]
        assert line["time"].endswith("+00:00")
        if line["severity"] in {"WARNING", "ERROR"}:
            assert line[logs.SOURCE]["file"].endswith(".py")
        assert "color_message" not in line


def test_a_success_logs_each_transition_at_info_and_each_step_at_debug(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    bearer = client.headers["authorization"].split()[1]  # the user's token: never in a line
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = client.post(
        f"{P}/pdf-processing",
        files={"file": ("sample.pdf", Path(SAMPLE).read_bytes(), "application/pdf")},
        headers={"traceparent": traceparent, "X-Request-Id": "req-success-1"},
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"] == "req-success-1"
    job_id = response.json()["id"]
    wait_for(client, job_id)
    lines.until(lambda line: line.get("jobId") == job_id and line.get("event") == "completed")

    created = lines.event(job_id, "created")
    assert created["severity"] == "INFO"
    assert created["requestId"] == "req-success-1"
    assert created[logs.TRACE] == f"projects/demo-project/traces/{TRACE_ID}"
    assert created[logs.SPAN] == "00f067aa0ba902b7"
    assert created[logs.SAMPLED] is True
    user_id = created["userId"]
    assert user_id.startswith("local:user-")
    assert (created["jobType"], created["queue"], created["status"]) == (
        "pdf-analysis",
        "default",
        "pending",
    )
    started = lines.event(job_id, "started", 1)
    assert started["workerId"]
    assert (started["severity"], started["userId"]) == ("INFO", user_id)
    completed = lines.event(job_id, "completed", 1)
    assert completed["severity"] == "INFO"
    assert completed["seconds"] >= 0
    assert completed["workerId"] == started["workerId"]

    about = lines.about(job_id)
    claimed = [line for line in about if line["message"] == "claimed"]
    assert [line["severity"] for line in claimed] == ["DEBUG"]
    steps = [line for line in about if line.get("effect") and line["severity"] == "DEBUG"]
    assert {line["effect"] for line in steps} >= {"StatBlob", "Analyze", "WriteBlob"}
    assert all(line["attempt"] == 1 and line["userId"] == user_id for line in steps)

    lines.until(lambda line: line.get("requestId") == "req-success-1" and "route" in line)
    access = [
        line
        for line in lines.all()
        if line.get("requestId") == "req-success-1" and line["logger"] == "jobkit.http"
    ]
    assert len(access) == 1
    assert access[0]["severity"] == "INFO"
    assert (access[0]["route"], access[0]["status"], access[0]["userId"]) == (
        f"{P}/pdf-processing",
        202,
        user_id,
    )
    assert access[0]["httpRequest"]["requestMethod"] == "POST"
    assert access[0]["httpRequest"]["latency"].endswith("s")
    assert bearer not in lines.text()


SAMPLE = Path(__file__).resolve().parents[2] / "jobkit_http" / "samples" / "sample.pdf"


def test_a_slow_analyzer_call_is_a_warning_about_its_job(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    job_id = submit(client)
    wait_for(client, job_id)
    lines.until(lambda line: line.get("jobId") == job_id and line.get("event") == "completed")
    slow = [line for line in lines.about(job_id) if line["message"].startswith("slow analyzer")]
    assert len(slow) == 1
    assert slow[0]["severity"] == "WARNING"
    assert (slow[0]["target"], slow[0]["operation"], slow[0]["attempt"]) == (
        "analyzer",
        "Analyze",
        1,
    )
    assert slow[0]["seconds"] > 0


def test_a_retried_failure_is_an_error_with_its_context_then_a_retry(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    params = {"apiKey": SECRET, "note": "x" * 500, "size": 3}
    response = client.post(f"{P}/jobs", json={"type": "flaky", "params": params})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert wait_for(client, job_id)["status"] == "completed"
    lines.until(lambda line: line.get("jobId") == job_id and line.get("event") == "completed")

    failed = lines.event(job_id, "attempt_failed", 1)
    assert failed["severity"] == "ERROR"
    assert failed["message"] == (
        "attempt 1 of 3 failed in the pipeline: unavailable: the service is warming up"
    )
    assert failed["params"] == {"apiKey": "[redacted]", "note": "[500 characters]", "size": 3}
    assert (failed["effect"], failed["code"], failed["retryable"]) == (
        "pipeline",
        "unavailable",
        True,
    )
    assert failed["error"]["code"] == "unavailable"
    assert failed["jobType"] == "flaky"
    assert failed["userId"].startswith("local:user-")
    assert lines.event(job_id, "retried", 1)["severity"] == "INFO"
    assert lines.event(job_id, "started", 2)["severity"] == "INFO"
    assert lines.event(job_id, "completed", 2)["severity"] == "INFO"
    assert SECRET not in lines.text()


def test_a_permanent_failure_names_the_failing_effect_and_the_input(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    job_id = submit(client, CORRUPT_PDF, {"instructions": "Summarise"})
    assert wait_for(client, job_id)["status"] == "failed"
    lines.until(lambda line: line.get("jobId") == job_id and line.get("event") == "failed")

    failed = lines.event(job_id, "attempt_failed", 1)
    assert failed["severity"] == "ERROR"
    assert (failed["effect"], failed["code"], failed["retryable"]) == (
        "Analyze",
        "corrupt_document",
        False,
    )
    assert failed["input"]["filename"] == "sample.pdf"
    assert failed["input"]["contentType"] == "application/pdf"
    assert failed["params"]["instructions"] == "Summarise"
    assert failed["step"]  # the progress the analyzer had reported
    given_up = lines.event(job_id, "failed", 1)
    assert given_up["severity"] == "ERROR"
    assert given_up["code"] == "corrupt_document"


def test_a_crash_is_an_error_with_its_stack(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    response = client.post(f"{P}/jobs", json={"type": "broken"})
    job_id = response.json()["id"]
    assert wait_for(client, job_id)["status"] == "failed"
    lines.until(lambda line: line.get("jobId") == job_id and line.get("event") == "failed")

    failed = lines.event(job_id, "attempt_failed", 1)
    assert failed["severity"] == "ERROR"
    assert failed["code"] == "internal"
    assert "ZeroDivisionError: a bug in the pipeline" in failed["stack_trace"]
    assert "_broken" in failed["stack_trace"]


def test_a_cancel_is_an_info_line_naming_the_user_and_the_request(
    captured: tuple[RunningServer, Lines], client: httpx.Client
) -> None:
    lines = lines_of(captured)
    job_id = submit(client, form=LATER)
    response = client.delete(f"{P}/jobs/{job_id}", headers={"X-Request-Id": "cancel-42"})
    assert response.status_code == 200

    cancelled = lines.event(job_id, "cancelled")
    assert cancelled["severity"] == "INFO"
    assert cancelled["requestId"] == "cancel-42"
    assert cancelled["userId"] == lines.event(job_id, "created")["userId"]
    assert cancelled["status"] == "cancelled"


def test_a_refused_token_is_a_warning_with_the_reason_and_never_the_token(
    captured: tuple[RunningServer, Lines],
) -> None:
    lines = lines_of(captured)
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vIn0.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl"
    with httpx.Client(base_url=captured[0].base_url) as anonymous:
        response = anonymous.get(
            f"{P}/jobs",
            headers={"Authorization": f"Bearer {token}", "X-Request-Id": "refused-1"},
        )
    assert response.status_code == 401

    # The access line is written once the answer is sent: the client may have it first.
    lines.until(lambda line: line.get("requestId") == "refused-1" and "route" in line)
    mine = [line for line in lines.all() if line.get("requestId") == "refused-1"]
    refused = [line for line in mine if line["message"].startswith("authentication failed")]
    assert len(refused) == 1
    assert refused[0]["severity"] == "WARNING"
    assert refused[0]["reason"] == response.json()["detail"]
    assert refused[0]["status"] == 401
    access = [line for line in mine if line["logger"] == "jobkit.http" and "route" in line]
    assert [line["status"] for line in access] == [401]
    assert "userId" not in access[0]
    assert token not in lines.text()
    assert token.split(".")[1] not in lines.text()

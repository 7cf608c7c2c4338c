"""`jobkit worker` as an operator runs it: real processes on one data folder, their JSON log
lines (the format `auto` picks off a terminal) and the `/metrics` each serves on its port.
A worker killed while it holds a lease leaves a stall that the next worker logs and counts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from jobkit.local import Runtime
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_http.exposition import value
from tests.jobkit_http.test_cli import SAMPLE, free_port

Worker = tuple[subprocess.Popen[str], Path, int]


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def wait_until(
    path: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_lines(path):
            if predicate(line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no such line in {path.name}: {path.read_text()[-3000:]}")


def submit_pdfs(data: Path, count: int) -> list[str]:
    async def main() -> list[str]:
        async with Runtime(data) as runtime:
            made = [
                await runtime.submit({"type": "pdf-analysis"}, document=SAMPLE)
                for _ in range(count)
            ]
        return [job.unwrap()["id"] for job in made]

    return asyncio.run(main())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Starts `jobkit worker` processes on one data folder; kills what is left at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str, **environ: str) -> Worker:
        port = free_port()
        env = {
            **os.environ,
            "JOBKIT_DATA": str(tmp_path / "data"),
            "JOBKIT_METRICS_PORT": str(port),
            "JOBKIT_LEASE_SECONDS": "1",
            "JOBKIT_GAUGE_SECONDS": "0.2",
            "JOBKIT_CONCURRENCY": "2",
            **environ,
        }
        env.pop("JOBKIT_LOG_FORMAT", None)  # `auto`: JSON, since stdout is no terminal
        log = tmp_path / f"{name}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "jobkit_http.cli", "worker"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
            )
        started.append(process)
        return process, log, port

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def settled(port: int, text: str) -> str:
    """The worker's metrics once its gauges (read every 0.2 s) show no live job."""
    deadline = time.monotonic() + 10

    def live() -> tuple[float | None, float | None]:
        return (
            value(text, "jobkit_jobs", queue="default", status="pending"),
            value(text, "jobkit_jobs", queue="default", status="processing"),
        )

    while live() != (0, 0):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return text


def test_a_killed_worker_s_job_is_logged_as_stalled_and_counted_by_the_next_worker(
    tmp_path: Path, workers: Callable[..., Worker], gemini: GeminiServer
) -> None:
    submitted = submit_pdfs(tmp_path / "data", 2)
    # The first worker analyses with a model that never answers (a stub Gemini holding every
    # call), one job at a time: it holds the job it claims until it is killed.
    gemini.default = attrs.evolve(answer({"title": "never"}), delay=600.0)
    first, first_log, _ = workers(
        "first",
        JOBKIT_CONCURRENCY="1",
        JOBKIT_ANALYZER="gemini",
        JOBKIT_GEMINI_API_KEY=gemini.api_key,
        GOOGLE_GEMINI_BASE_URL=gemini.base_url,
    )
    started = wait_until(first_log, lambda line: line["message"] == "worker started")
    assert started["severity"] == "INFO"
    dead_worker = started["workerId"]
    claimed = wait_until(first_log, lambda line: line.get("event") == "started")
    stuck = claimed["jobId"]
    assert (claimed["attempt"], claimed["workerId"]) == (1, dead_worker)
    deadline = time.monotonic() + 30
    while gemini.count() < 1:  # the held call reached the model
        assert time.monotonic() < deadline, first_log.read_text()[-3000:]
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # dies holding the job's lease
    first.wait(10)

    second, second_log, port = workers("second")
    stalled = wait_until(second_log, lambda line: line.get("event") == "stalled")
    assert stalled["severity"] == "WARNING"
    assert (stalled["jobId"], stalled["leaseOwner"], stalled["code"]) == (
        stuck,
        dead_worker,
        "lease_expired",
    )
    assert stalled["workerId"] != dead_worker
    assert stalled["userId"] == "local"
    wait_until(second_log, lambda line: line.get("event") == "completed" and line["jobId"] == stuck)
    (other,) = set(submitted) - {stuck}
    wait_until(second_log, lambda line: line.get("event") == "completed" and line["jobId"] == other)
    done = [line for line in log_lines(second_log) if line.get("jobId") == stuck]
    assert [(line["event"], line.get("attempt")) for line in done if "event" in line] == [
        ("stalled", 1),
        ("retried", 1),
        ("started", 2),
        ("completed", 2),
    ]

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    job = {"type": "pdf-analysis", "queue": "default"}
    assert value(text, "jobkit_job_events_total", event="stalled", **job) == 1
    assert value(text, "jobkit_job_events_total", event="completed", **job) == 2
    failures = value(
        text,
        "jobkit_attempt_failures_total",
        code="lease_expired",
        retryable="true",
        outcome="retried",
        **job,
    )
    assert failures == 1
    assert value(text, "jobkit_attempt_seconds_count", outcome="succeeded", **job) == 2
    assert value(text, "jobkit_job_wait_seconds_count", **job) == 2
    assert value(text, "jobkit_build_info", role="worker") == 1
    assert value(text, "jobkit_worker_slots", state="free") == 2
    text = settled(port, text)
    assert value(text, "jobkit_oldest_due_job_age_seconds", queue="default") == 0
    refreshed = value(text, "jobkit_gauges_refreshed_timestamp_seconds")
    assert refreshed is not None
    assert refreshed > time.time() - 10
    assert value(text, "jobkit_external_call_seconds_count", target="analyzer") == 2

    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    stopped = log_lines(second_log)[-1]
    assert (stopped["message"], stopped["severity"], stopped["finished"]) == (
        "worker stopped",
        "INFO",
        2,
    )


def test_a_busy_metrics_port_stops_the_worker_with_one_line(
    tmp_path: Path, workers: Callable[..., Worker]
) -> None:
    first, first_log, port = workers("first")
    wait_until(first_log, lambda line: line["message"] == "worker started")
    second, second_log, _ = workers("second", JOBKIT_METRICS_PORT=str(port))
    assert second.wait(20) == 1
    said = second_log.read_text().strip().splitlines()
    assert said[-1].startswith(f"jobkit: error: cannot serve metrics on 127.0.0.1:{port}")
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0

"""Crafted PDFs against a real `jobkit serve`: their jobs fail as `document_too_complex` in
bounded time, status polls stay fast meanwhile, and the server's memory stays where it was.

A behaviour test with generous bounds, not a benchmark: the parsing happens in the bounded
pool's child processes (niced), so the server only waits for them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from jobkit_http import api
from tests.jobkit.local import crafted
from tests.jobkit_http.process import Served, spawned
from tests.jobkit_http.server import SAMPLE_PDF, wait_for

P = api.PREFIX
MiB = 1024 * 1024
FAIL_WITHIN_SECONDS = 180.0  # generous: a loaded 2-core machine
P99_SECONDS = 0.050
RSS_SLACK = 50 * MiB


def upload(client: httpx.Client, document: bytes, name: str) -> str:
    response = client.post(
        f"{P}/pdf-processing", files={"file": (name, document, "application/pdf")}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextlib.contextmanager
def polled(server: Served) -> Iterator[list[float]]:
    """A second user polls a status all along the block; every answer's latency, in s."""
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with server.client("alice") as alice:
            mine = upload(alice, SAMPLE_PDF, "mine.pdf")
            while not stop.is_set():
                began = time.perf_counter()
                answer = alice.get(f"{P}/jobs/{mine}/status")
                latencies.append(time.perf_counter() - began)
                assert answer.status_code == 200
                time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        yield latencies
    finally:
        stop.set()
        poller.join(30)


def finish(client: httpx.Client, job_ids: list[str], within: float) -> dict[str, dict[str, Any]]:
    """Each job's status once it has finished; fails if one has not within `within` s."""
    deadline = time.monotonic() + within
    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < len(job_ids):
        assert time.monotonic() < deadline, finished
        for job_id in job_ids:
            if job_id not in finished:
                status = client.get(f"{P}/jobs/{job_id}/status").json()
                if status["status"] in {"completed", "failed"}:
                    finished[job_id] = status
        time.sleep(0.2)
    return finished


def test_costly_pdfs_fail_bounded_while_the_api_stays_fast_and_small(tmp_path: Path) -> None:
    environ = {
        # Low enough that the many-pages document meets the CPU limit before pypdf's own
        # parsing cap: both of the pool's ways of stopping a document are exercised.
        "JOBKIT_DOCUMENT_CPU_SECONDS": "2",
        "JOBKIT_DOCUMENT_WORKERS": "2",
        "JOBKIT_CONCURRENCY": "4",
        "JOBKIT_LOG_LEVEL": "WARNING",
    }
    with spawned(tmp_path / "data", environ) as server, server.client("mallory") as client:
        # Warm up: one ordinary document end to end, then the baseline.
        warm = upload(client, SAMPLE_PDF, "sample.pdf")
        assert wait_for(client, warm, timeout=120)["status"] == "completed"
        for _ in range(50):
            client.get(f"{P}/jobs/{warm}/status")
        baseline = server.rss_bytes()

        many_pages = crafted.many_pages_one_stream()
        huge_stream = crafted.one_huge_stream()
        assert len(many_pages) < 16 * 1024
        assert len(huge_stream) < 80 * 1024
        with polled(server) as latencies:
            costly = [upload(client, many_pages, f"pages-{n}.pdf") for n in range(3)]
            costly += [upload(client, huge_stream, f"stream-{n}.pdf") for n in range(3)]
            finished = finish(client, costly, FAIL_WITHIN_SECONDS)

        for job_id, status in finished.items():
            assert status["status"] == "failed", status
            error = status["error"]
            assert (error["code"], error["retryable"]) == ("document_too_complex", False)
            history = client.get(f"{P}/jobs/{job_id}").json()["history"]
            assert status["attempts"] == 1, history  # permanent: no retry
        limits = {status["error"]["context"]["limit"] for status in finished.values()}
        assert limits == {"cpu", "pypdf"}, limits

        assert len(latencies) > 50
        assert p99(latencies) <= P99_SECONDS, f"p99 {p99(latencies) * 1000:.1f} ms"
        # The parsing happened elsewhere: the server's memory is where it was.
        for _ in range(20):
            client.get(f"{P}/jobs/{costly[0]}/status")
        assert server.rss_bytes() <= baseline + RSS_SLACK, (baseline, server.rss_bytes())

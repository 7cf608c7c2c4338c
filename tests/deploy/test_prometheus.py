"""A real Prometheus (the Debian package's binary) on loopback, with the shipped configuration
and rules (targets pointed at this test's ports, a one-second interval), scraping a running
`jobkit serve` and a `jobkit worker` while jobs flow; the recorded series read back through
its HTTP API."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobkit_http import keys
from tests.deploy import monitoring
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_http.server import CORRUPT_PDF, SAMPLE_PDF

TIMEOUT = 60.0


def configuration(folder: Path, api: int, worker: int) -> Path:
    """The shipped configuration and rules in `folder`, scraping `api` and `worker` every
    second and evaluating the rules as often."""
    text = monitoring.CONFIG.read_text()
    for shipped, ours in (
        ("127.0.0.1:8000", f"127.0.0.1:{api}"),
        ("127.0.0.1:9464", f"127.0.0.1:{worker}"),
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
    ):
        assert shipped in text, shipped
        text = text.replace(shipped, ours)
    config = folder / "prometheus.yml"
    config.write_text(text)
    for rules in monitoring.RULE_FILES:
        (folder / rules.name).write_text(rules.read_text())
    return config


@contextlib.contextmanager
def prometheus(folder: Path, config: Path) -> Iterator[str]:
    """Prometheus on a free loopback port until the block ends, stopped by its PID."""
    binary = monitoring.tool("prometheus")
    port = monitoring.free_port()
    log = folder / "prometheus.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    found: list[dict[str, Any]] = body["data"]["result"]
    return found


def eventually(
    base: str, promql: str, accept: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = query(base, promql)
        if accept(found):
            return found
        assert time.monotonic() < deadline, (promql, found)
        time.sleep(0.25)


def upload(client: httpx.Client, *documents: bytes) -> None:
    for document in documents:
        response = client.post(
            "/api/v1/pdf-processing", files={"file": ("a.pdf", document, "application/pdf")}
        )
        assert response.status_code == 202, response.text


def labelled(found: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in found}


# What a stub Gemini answers for a document analysed with the default structure.
SUMMARY = {
    "title": "Sample",
    "authors": ["A. Writer"],
    "date": "2026-01-01",
    "summary": "A short sample.",
    "keyPoints": ["one"],
}


@pytest.mark.slow
def test_prometheus_scrapes_serve_and_worker_and_records_the_dashboard_s_series(
    tmp_path: Path, gemini: GeminiServer
) -> None:
    data = tmp_path / "data"
    api, worker = monitoring.free_port(), monitoring.free_port()
    # The analyzer is Gemini (a stub on loopback, answering at once), as in production: its
    # limiter, breaker, tokens and cost have series too.
    gemini.default = answer(SUMMARY, prompt_tokens=1000, output_tokens=50)
    environ = {
        "JOBKIT_DATA": str(data),
        "JOBKIT_PORT": str(api),
        "JOBKIT_METRICS_PORT": str(worker),
        "JOBKIT_GAUGE_SECONDS": "0.5",
        "JOBKIT_ANALYZER": "gemini",
        "JOBKIT_GEMINI_API_KEY": gemini.api_key,
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
    }
    config = configuration(tmp_path, api, worker)
    with (
        monitoring.jobkit_process(["serve"], tmp_path / "serve.log", environ, "service ready"),
        monitoring.jobkit_process(["worker"], tmp_path / "worker.log", environ, "worker started"),
        prometheus(tmp_path, config) as base,
    ):
        up = eventually(base, 'up{job=~"jobkit-.*"}', lambda f: len(f) == 2)
        eventually(base, 'up{job=~"jobkit-.*"} == 1', lambda f: len(f) == 2)
        assert labelled(up, "role") == {"serve": 1.0, "worker": 1.0}
        roles = query(base, "jobkit_build_info")
        assert sorted(s["metric"]["role"] for s in roles) == ["serve", "worker"]

        # Jobs flow once both are scraped. A failure code's series is born with its first
        # failure in each process (Prometheus sees no increase in a series born at 1): more
        # failures, once the first are scraped, make its rate, whichever process runs them.
        token = keys.issue_token(data, "prometheus-test", now=datetime.now(UTC))
        headers = {"Authorization": f"Bearer {token}"}
        rate = 'jobkit:attempt_failures:rate5m{code="corrupt_document"} > 0'
        with httpx.Client(base_url=f"http://127.0.0.1:{api}", headers=headers) as client:
            upload(client, SAMPLE_PDF, SAMPLE_PDF, CORRUPT_PDF, CORRUPT_PDF)
            eventually(base, 'jobkit_attempt_failures_total{code="corrupt_document"}', bool)
            deadline = time.monotonic() + TIMEOUT
            while not query(base, rate):
                assert time.monotonic() < deadline, query(base, rate)
                upload(client, SAMPLE_PDF, CORRUPT_PDF)
                time.sleep(2)

        completed = eventually(
            base,
            'jobkit:job_events:rate5m{event="completed",type="pdf-analysis"}',
            lambda f: bool(f) and float(f[0]["value"][1]) > 0,
        )
        assert completed[0]["metric"]["queue"] == "default"
        failures = eventually(
            base,
            'jobkit:attempt_failures:rate5m{code="corrupt_document"}',
            lambda f: bool(f) and float(f[0]["value"][1]) > 0,
        )
        assert failures[0]["metric"]["outcome"] == "failed"
        ratio = eventually(base, "jobkit:job_failure_ratio:rate5m", bool)
        assert 0 < float(ratio[0]["value"][1]) < 1
        depth = eventually(base, "jobkit:jobs:max", lambda f: len(f) >= 2)
        assert {s["metric"]["status"] for s in depth} == {"pending", "processing"}
        slots = eventually(base, "jobkit:worker_slots:sum", lambda f: len(f) == 2)
        assert sum(labelled(slots, "state").values()) == 8  # two processes, 4 slots each
        for series in (
            "jobkit:job_wait_seconds:p95_5m",
            "jobkit:attempt_seconds:p95_5m",
            "jobkit:job_duration_seconds:p95_5m",
            "jobkit:external_call_seconds:p95_5m",
            "jobkit:http_request_seconds:p95_5m",
            "jobkit:http_requests:rate5m",
            "jobkit:oldest_due_job_age_seconds:max",
            "jobkit:breaker_open:max",
            "jobkit:model_tokens:rate5m",
            "jobkit:model_cost_usd:increase1h",
        ):
            assert eventually(base, series, bool), series
        calls = labelled(eventually(base, "jobkit:external_calls:rate5m", bool), "target")
        assert {"store", "blobs", "analyzer"} <= calls.keys()

"""PDF-analysis jobs run by a real worker on the embedded runtime with the Gemini analyzer
against the stub: each answer ends in the right job state, error code and retry behaviour,
and a success stores the structured result with its usage and cost."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobkit import documents, jobs
from jobkit.local import Runtime
from jobkit.status import Status
from jobkit_gcp.gemini import GeminiConfig
from tests.jobkit_gcp import support
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_gcp.test_gemini_errors import CASES

RISKS = {"risks": ["flooding"]}


def run_one(
    tmp_path: Path, gemini: GeminiServer, config: GeminiConfig, params: dict[str, Any]
) -> tuple[dict[str, Any], Runtime]:
    """Submit the sample with `params`, run one attempt; the job's document afterwards."""

    async def main() -> tuple[dict[str, Any], Runtime]:
        async with Runtime(tmp_path / "data") as runtime:
            runtime.analyzer = support.analyzer(runtime.blobs, config, gemini)
            try:
                job = (
                    await runtime.submit(
                        {"type": "pdf-analysis", "params": params},
                        document=support.SAMPLE,
                        filename="report.pdf",
                        content_type="application/pdf",
                    )
                ).unwrap()
                assert await runtime.drain() == 1
                done = await runtime.get(jobs.id(job))
                assert done is not None
                return documents.to_document(done), runtime
            finally:
                await runtime.analyzer.aclose()

    return asyncio.run(main())


PARAMS = {"instructions": support.INSTRUCTIONS, "schema": support.SCHEMA}


def test_a_job_completes_with_the_structured_answer_its_usage_and_cost(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(RISKS, prompt_tokens=1800, output_tokens=20, thoughts_tokens=100))
    job, _ = run_one(tmp_path, gemini, support.vertex(gemini), PARAMS)
    assert job["status"] == "completed"
    expected_cost = round((1800 * 2 + 120 * 12) / 1e6, 6)
    result = job["result"]
    assert result["usage"] == {
        "promptTokens": 1800,
        "outputTokens": 20,
        "thoughtsTokens": 100,
        "totalTokens": 1920,
    }
    assert result["cost"]["amount"] == expected_cost
    stored = json.loads(
        (tmp_path / "data" / "blobs" / job["history"][-1]["resultKey"]).read_bytes()
    )
    assert stored["output"] == RISKS
    assert stored["model"] == "gemini-3.1-pro-preview"
    assert stored["modelVersion"] == "gemini-3.1-pro-preview-001"
    assert stored["finishReason"] == "STOP"
    assert stored["usage"] == result["usage"]
    assert stored["cost"]["amount"] == expected_cost
    assert stored["document"]["pages"] == 3
    assert gemini.calls[0].prompt() == support.INSTRUCTIONS


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_ends_in_the_right_state(
    case: str, gemini: GeminiServer, tmp_path: Path
) -> None:
    reply, code, retryable = CASES[case]
    gemini.script(reply)
    started = datetime.now(UTC)
    job, _ = run_one(tmp_path, gemini, support.vertex(gemini, timeout_seconds=1.0), PARAMS)
    assert job["error"]["code"] == code
    assert job["attempts"] == 1
    [entry] = job["history"]
    assert entry["outcome"] == "failed"
    assert entry["error"]["code"] == code
    if retryable:
        assert job["status"] == Status.PENDING.value  # waiting for its retry
        assert entry["nextRunAt"] is not None
        assert datetime.fromisoformat(job["runAt"]) > started
    else:
        assert job["status"] == Status.FAILED.value
        assert entry["nextRunAt"] is None
    assert job["result"] is None


def test_a_rate_limited_job_waits_at_least_the_delay_gemini_asked_for(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    reply, _, _ = CASES["429 with a retry delay"]
    gemini.script(reply)
    job, _ = run_one(tmp_path, gemini, support.vertex(gemini), PARAMS)
    [entry] = job["history"]
    assert entry["delaySeconds"] >= 37.0
    failed_at = datetime.fromisoformat(entry["endedAt"])
    assert (datetime.fromisoformat(job["runAt"]) - failed_at).total_seconds() >= 37.0

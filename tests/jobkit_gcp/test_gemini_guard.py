"""The limiters and the breaker around Gemini, end to end: a worker runs real jobs through
the analyzer the composition root builds, against the stub.

With the stub failing, the breaker opens and jobs wait (no call reaches the failing
service during the cool-down) instead of failing, and they complete once it recovers. A
low requests-per-minute limit spreads a burst out; the tokens-per-minute limit charges
what Gemini reports a call used, so a call that used more than estimated delays the next.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import attrs
import pytest

from jobkit import documents, jobs, ratelimit, registry, retry
from jobkit.jobtypes import pdf
from jobkit.local import Runtime
from jobkit.worker.worker import WorkerConfig
from jobkit.worker.wrappers import GuardedAnalyzer, RateLimiter
from jobkit_gcp.gemini import GeminiAnalyzer
from jobkit_http import analyzers, settings
from jobkit_http.metrics import Metrics
from tests.jobkit_gcp import support
from tests.jobkit_gcp.gemini_server import GeminiServer, answer, error

RISKS = {"risks": ["flooding"]}
PARAMS = {"instructions": support.INSTRUCTIONS, "schema": support.SCHEMA}
# The PDF type with retries a test can wait for: every 50 ms, up to ten attempts.
QUICK = registry.of(
    [
        attrs.evolve(
            pdf.JOB_TYPE,
            retry=retry.RetryPolicy(
                max_attempts=10, backoff=retry.Backoff(base=0.05, factor=1.0, cap=0.05)
            ),
        )
    ]
)


def gemini_settings(gemini: GeminiServer, **overrides: Any) -> settings.Settings:
    return settings.Settings(
        analyzer="gemini", gemini_api_key=gemini.api_key, gemini_timeout_seconds=5.0, **overrides
    )


def run_jobs(
    tmp_path: Path, count: int, make_analyzer: Any, *, concurrency: int | None = None
) -> list[dict[str, Any]]:
    """Submit `count` jobs, run a worker until all have finished; their documents."""

    async def main() -> list[dict[str, Any]]:
        async with Runtime(tmp_path / "data", types=QUICK) as runtime:
            runtime.analyzer = make_analyzer(runtime)
            ids = []
            for _ in range(count):
                submitted = await runtime.submit(
                    {"type": "pdf-analysis", "params": PARAMS},
                    document=support.SAMPLE,
                    content_type="application/pdf",
                )
                ids.append(jobs.id(submitted.unwrap()))
            worker = runtime.worker(
                WorkerConfig(concurrency=concurrency or count, idle_seconds=0.02)
            )
            task = asyncio.create_task(worker.run())
            try:
                async with asyncio.timeout(60):
                    while True:
                        found = [await runtime.get(job_id) for job_id in ids]
                        if all(j is not None and jobs.status(j).value in FINISHED for j in found):
                            return [documents.to_document(j) for j in found if j is not None]
                        await asyncio.sleep(0.05)
            finally:
                worker.stop()
                await task
                await analyzers.close(runtime.analyzer)

    return asyncio.run(main())


FINISHED = {"completed", "failed", "cancelled"}


def test_with_gemini_failing_the_breaker_opens_jobs_are_deferred_and_then_complete(
    gemini: GeminiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.base_url)
    overloaded = error(503, "UNAVAILABLE", "The model is overloaded.")
    gemini.script(overloaded, overloaded)  # then it recovers
    gemini.default = answer(RISKS)
    config = gemini_settings(gemini, gemini_breaker_failures=2, gemini_breaker_cooldown_seconds=1.0)
    done = run_jobs(
        tmp_path,
        3,
        lambda rt: analyzers.build(config, rt.blobs, Metrics(), rt.clock),
        concurrency=1,  # one attempt at a time: the order of events is fixed
    )

    assert [job["status"] for job in done] == ["completed"] * 3
    # The first two attempts failed and opened the breaker; every attempt claimed while it
    # was open was deferred (handed back, uncounted, due again when a trial may be made)
    # instead of failing: the attempts counted are those two failures and three successes.
    # (Which job the second failure fell to depends on whether the first job's retry was
    # due when the worker claimed again — 50 ms later, on a loaded machine — so only the
    # sum is fixed.)
    assert sum(job["attempts"] for job in done) == 2 + 3
    failed = [e for job in done for e in job["history"] if e["outcome"] == "failed"]
    assert [e["error"]["code"] for e in failed] == ["unavailable", "unavailable"]
    deferred = [e for job in done for e in job["history"] if e["outcome"] == "deferred"]
    assert deferred
    assert all(e["error"]["code"] == "circuit_open" and e["nextRunAt"] for e in deferred)
    # No call reached Gemini while the breaker was open; the trial call after the
    # cool-down succeeded and closed it, and the rest followed.
    assert gemini.count() == 2 + 3
    calls = [call.at for call in gemini.calls]
    assert calls[2] - calls[1] >= 1.0 - 0.05


def test_a_low_requests_per_minute_limit_spreads_a_burst_out(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.default = answer(RISKS)
    per_second = 2.0  # 120 a minute with a burst of 2: the composition root's classes

    def guarded(runtime: Runtime) -> GuardedAnalyzer:
        requests = ratelimit.TokenBucket.per_window(max_requests=2, window_seconds=1)
        return GuardedAnalyzer(
            support.analyzer(runtime.blobs, support.developer(gemini), gemini),
            limiter=RateLimiter(requests, runtime.clock),
        )

    done = run_jobs(tmp_path, 6, guarded)
    assert [job["status"] for job in done] == ["completed"] * 6
    calls = sorted(call.at for call in gemini.calls)
    # Two at once, then one every half second: four intervals after the burst. (Lower
    # bounds only, with room for loopback jitter; unlimited, all six land within ~0.1 s.)
    assert calls[2] - calls[0] >= 1 / per_second - 0.2
    assert calls[5] - calls[0] >= 4 / per_second - 0.2


def test_the_tokens_limit_charges_what_gemini_reported_not_only_the_estimate(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.default = answer(RISKS, prompt_tokens=4000)  # about twice the estimate

    def metered(runtime: Runtime) -> GeminiAnalyzer:
        tokens = ratelimit.TokenBucket.per_window(max_requests=2000, window_seconds=1)
        return support.analyzer(
            runtime.blobs,
            support.developer(gemini),
            gemini,
            tokens=RateLimiter(tokens, runtime.clock),
        )

    done = run_jobs(tmp_path, 2, metered)
    assert [job["status"] for job in done] == ["completed"] * 2
    first, second = sorted(call.at for call in gemini.calls)
    # The estimate (3 pages x 560 + the text) fits the burst of 2,000; the first call's
    # 4,000 leave a debt of about 2,000, paid at 2,000 a second before the second call's
    # estimate is: about 2 s. Charging the estimate alone would allow it after 1 s.
    assert second - first >= 1.5


def test_the_composition_root_configures_gemini_s_limits_and_breaker(
    gemini: GeminiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.base_url)
    config = gemini_settings(
        gemini,
        gemini_requests_per_minute=30,
        gemini_tokens_per_minute=250_000,
        gemini_breaker_failures=7,
        gemini_breaker_cooldown_seconds=45,
    )
    blobs = support.store(tmp_path)
    built = analyzers.build(config, blobs, Metrics(), support.clock)
    assert built.limiter is not None
    assert built.breaker is not None
    assert built.limiter.bucket == ratelimit.TokenBucket.per_window(
        max_requests=30, window_seconds=60
    )
    assert (built.breaker.state.failure_threshold, built.breaker.state.cooldown_seconds) == (
        7,
        45,
    )
    inner = built.analyzer
    assert isinstance(inner, GeminiAnalyzer)
    assert inner.tokens is not None
    assert inner.tokens.bucket == ratelimit.TokenBucket.per_window(
        max_requests=250_000, window_seconds=60
    )
    asyncio.run(analyzers.close(built))


def test_the_offline_analyzer_is_neither_rate_limited_nor_broken(tmp_path: Path) -> None:
    built = analyzers.build(settings.Settings(), support.store(tmp_path), Metrics(), support.clock)
    assert (built.limiter, built.breaker) == (None, None)

"""What the shell logs and tells its observers: lifecycle lines by level with their fields,
a failed attempt's context (redacted), the log context, timed store and blob calls, and the
rate limiter's and breaker's observers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from jobkit import (
    breaker,
    effects,
    errors,
    events,
    instants,
    jobs,
    machine,
    pipeline,
    ratelimit,
    registry,
    retry,
)
from jobkit.testing import MemoryJobStore
from jobkit.testing import loop as virtual
from jobkit.worker import journal, observed, wrappers
from tests.jobkit.conformance import T0, at, claimed, new
from tests.jobkit.worker.support import Watched, make_worker, submit
from tests.jobkit.worker.test_wrappers import FakeTime, call_many, scripted

POLICY = retry.RetryPolicy(max_attempts=2)


class Captured(logging.Handler):
    """Every record logged under `jobkit`, with the context's fields as the formatters see
    them (`jobkit_http.logs.ContextFilter` does the same)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        for key, value in journal.context().items():
            record.__dict__.setdefault(key, value)
        self.records.append(record)

    def by(self, message_part: str) -> dict[str, Any]:
        """The one record whose message has `message_part`: its attributes and message."""
        found = [r for r in self.records if message_part in r.getMessage()]
        assert len(found) == 1, [r.getMessage() for r in self.records]
        return {**vars(found[0]), "message": found[0].getMessage()}


@pytest.fixture
def logged() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("jobkit")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def step(job: jobs.Job, event: events.Event, seconds: float) -> tuple[jobs.Job, machine.Effects]:
    moved, done = machine.step(job, event, at(seconds)).unwrap()
    return moved, done


def failed_attempt(params: dict[str, Any]) -> tuple[jobs.Job, machine.Effects]:
    job = claimed(new(1, params=params, max_attempts=2), T0, worker="w1")
    boom = errors.transient("unavailable", "the model is overloaded", model="m")
    event = events.AttemptFailed(worker="w1", claim=1, error=boom, policy=POLICY, sample=0.5)
    return step(job, event, 3)


# -- lifecycle lines ---------------------------------------------------------------------------


def test_each_transition_is_one_line_at_its_level_with_the_job_s_fields(logged: Captured) -> None:
    running = claimed(new(1), at(1), worker="w1")
    done_job, done = step(running, events.AttemptSucceeded(worker="w1", claim=1), 4)
    journal.record(done, done_job, worker_id="w1")

    line = logged.by("job completed")
    assert line["levelno"] == logging.INFO
    assert line["message"] == "job completed in 3 s"
    fields = {key: line[key] for key in ("event", "jobId", "userId", "jobType")}
    assert fields == {
        "event": "completed",
        "jobId": "job-0001",
        "userId": "user-1",
        "jobType": "echo",
    }
    where = (line["queue"], line["attempt"], line["workerId"], line["status"])
    assert where == ("default", 1, "w1", "completed")


def test_a_failed_attempt_is_an_error_with_its_redacted_context_and_point_of_failure(
    logged: Captured,
) -> None:
    secret, document = "hunter2-very-secret", "page text " * 100
    job, done = failed_attempt({"apiKey": secret, "text": document, "pages": [1, 2]})
    crash = RuntimeError("a bug")
    point = journal.FailurePoint(effect="Analyze", step="page 2 of 3", exception=crash)
    journal.record(done, job, worker_id="w1", failure=point)

    line = logged.by("attempt 1 of 2 failed")
    assert line["levelno"] == logging.ERROR
    assert line["message"] == (
        "attempt 1 of 2 failed in Analyze: unavailable: the model is overloaded"
    )
    assert line["params"] == {"apiKey": "[redacted]", "text": "[1000 characters]", "pages": [1, 2]}
    assert (line["effect"], line["step"], line["code"], line["retryable"]) == (
        "Analyze",
        "page 2 of 3",
        "unavailable",
        True,
    )
    assert line["error"]["context"] == {"model": "m"}
    assert line["exc_info"] is not None
    assert line["exc_info"][1] is crash
    assert secret not in repr(line)
    retried = logged.by("job retries at")
    assert retried["levelno"] == logging.INFO
    assert retried["nextRunAt"] == instants.format(jobs.run_at(job))


def test_a_final_failure_and_a_stall_have_their_levels(logged: Captured) -> None:
    job = claimed(new(1, max_attempts=1), T0, worker="w1", lease=1.0)
    stalled, done = step(job, events.LeaseExpired(policy=POLICY, sample=0.5), 5)
    journal.record(done, stalled, worker_id="w2")

    stall = logged.by("job stalled")
    assert stall["levelno"] == logging.WARNING
    assert (stall["leaseOwner"], stall["workerId"], stall["code"]) == ("w1", "w2", "lease_expired")
    given_up = logged.by("job failed after 1 attempts")
    assert given_up["levelno"] == logging.ERROR
    assert given_up["code"] == "lease_expired"


def test_redaction_hides_secrets_and_documents_in_nested_values() -> None:
    value = {
        "Authorization": "Bearer x",
        "nested": {"client_secret": "s", "ok": "short"},
        "list": [{"password": "p"}, "x" * 201],
        "raw": b"%PDF",
    }
    assert journal.redact(value) == {
        "Authorization": "[redacted]",
        "nested": {"client_secret": "[redacted]", "ok": "short"},
        "list": [{"password": "[redacted]"}, "[201 characters]"],
        "raw": "[4 bytes]",
    }


def test_the_context_is_bound_for_a_block_and_updated_in_place() -> None:
    assert journal.context() == {}
    with journal.bind(requestId="r1") as bound:
        journal.update(userId="alice")
        with journal.bind(jobId="j"):
            assert journal.context() == {"requestId": "r1", "userId": "alice", "jobId": "j"}
        assert bound == {"requestId": "r1", "userId": "alice"}
    assert journal.context() == {}
    journal.update(userId="nobody")  # nothing bound: nothing to add to
    assert journal.context() == {}


def test_a_task_s_context_is_its_own() -> None:
    async def attempt(name: str) -> dict[str, Any]:
        journal.enter(jobId=name)
        await asyncio.sleep(0)
        return dict(journal.context())

    async def main() -> list[dict[str, Any]]:
        with journal.bind(workerId="w"):
            return list(await asyncio.gather(attempt("a"), attempt("b")))

    assert asyncio.run(main()) == [{"workerId": "w", "jobId": "a"}, {"workerId": "w", "jobId": "b"}]


# -- timed calls -------------------------------------------------------------------------------


def test_every_store_call_is_observed_and_a_write_is_logged_at_debug(logged: Captured) -> None:
    seen: list[tuple[str, str, bool]] = []
    store = observed.ObservedStore(
        MemoryJobStore(), observer=lambda t, op, s, ok: seen.append((t, op, ok))
    )

    async def main() -> None:
        job = new(1)
        assert await store.insert(job)
        assert await store.get("job-0001") == job
        assert await store.counts(T0, ["default"]) == await store.inner.counts(T0, ["default"])
        assert store.all() == [job]  # what the port lacks passes through

    asyncio.run(main())
    assert seen == [("store", "insert", True), ("store", "get", True), ("store", "counts", True)]
    write = logged.by("store insert: 1 written")
    assert write["levelno"] == logging.DEBUG
    assert not [r for r in logged.records if r.levelno >= logging.WARNING]


def test_a_slow_call_is_a_warning_naming_what_was_slow(logged: Captured) -> None:
    class Slow(MemoryJobStore):
        async def get(self, job_id: str) -> jobs.Job | None:
            await asyncio.sleep(0.02)
            return None

    store = observed.ObservedStore(Slow(), slow_seconds=0.01)

    async def main() -> None:
        with journal.bind(jobId="j-1"):
            await store.get("j-1")

    asyncio.run(main())
    slow = logged.by("slow store call: get took")
    assert slow["levelno"] == logging.WARNING
    assert (slow["target"], slow["operation"], slow["jobId"]) == ("store", "get", "j-1")
    assert slow["seconds"] >= 0.02


def test_blob_calls_are_observed_and_a_failed_call_says_so(tmp_path: Any) -> None:
    from jobkit.local.blobs import FileBlobStore

    seen: list[tuple[str, str, bool]] = []
    blobs = observed.ObservedBlobs(
        FileBlobStore(tmp_path), observer=lambda t, op, s, ok: seen.append((t, op, ok))
    )

    async def main() -> None:
        await blobs.put_bytes("a/b.txt", b"hello", "text/plain")
        assert await blobs.read("a/b.txt") == b"hello"
        with pytest.raises(LookupError):
            await blobs.stat("a/missing.txt")

    asyncio.run(main())
    assert seen == [("blobs", "put_bytes", True), ("blobs", "read", True), ("blobs", "stat", False)]


# -- the limiter, the breaker and the analyzer --------------------------------------------------


def test_a_wait_for_the_rate_limiter_is_a_warning_and_every_acquisition_is_observed(
    logged: Captured,
) -> None:
    time = FakeTime()
    waits: list[tuple[str, float]] = []
    bucket = ratelimit.TokenBucket.per_window(max_requests=1, window_seconds=10)
    limiter = wrappers.RateLimiter(
        bucket, time.clock.now, time.sleep, name="gemini", observer=lambda *w: waits.append(w)
    )
    perform, _ = scripted(Success(b"1"), Success(b"2"))
    call_many(wrappers.rate_limited(perform, limiter), 2)
    assert waits == [("gemini", 0.0), ("gemini", 10.0)]
    warning = logged.by("rate limit reached")
    assert (warning["levelno"], warning["limiter"], warning["seconds"]) == (
        logging.WARNING,
        "gemini",
        10.0,
    )


def test_the_breaker_s_opening_is_a_warning_and_each_transition_is_observed(
    logged: Captured,
) -> None:
    time = FakeTime()
    moves: list[tuple[str, str, str]] = []
    state = breaker.CircuitBreaker.closed(failure_threshold=1, cooldown_seconds=5.0)
    cell = wrappers.Breaker(
        state,
        time.clock.now,
        name="gemini",
        observer=lambda n, a, b: moves.append((n, a.value, b.value)),
    )
    perform, _ = scripted(Failure(errors.transient("unavailable", "down")), Success(b"up"))
    wrapped = wrappers.circuit_broken(perform, cell)
    call_many(wrapped, 1)
    time.clock.advance(5.0)  # the cool-down: the next call is the trial
    call_many(wrapped, 1)
    assert moves == [
        ("gemini", "closed", "open"),
        ("gemini", "open", "half_open"),
        ("gemini", "half_open", "closed"),
    ]
    opened = logged.by("circuit breaker opened")
    assert (opened["levelno"], opened["breaker"], opened["failures"]) == (
        logging.WARNING,
        "gemini",
        1,
    )
    assert logged.by("circuit breaker closed")["levelno"] == logging.INFO


def test_the_analyzer_s_usage_and_slow_calls_are_reported(logged: Captured) -> None:
    usage: list[tuple[str, int, int, float]] = []

    class Model:
        async def analyze(self, effect: effects.Analyze, progress: Any) -> Any:
            await asyncio.sleep(0.01)
            return Success(
                effects.Analysis(
                    model="gemini-x",
                    output={},
                    usage={"promptTokens": 120, "outputTokens": 30, "costUsd": 0.002},
                )
            )

    guarded = wrappers.GuardedAnalyzer(
        Model(), slow_seconds=0.001, usage=lambda *args: usage.append(args)
    )
    effect = effects.Analyze(key="k", content_type="application/pdf", instructions="")

    async def nothing(current: int, total: int, message: str) -> None:
        return None

    asyncio.run(guarded.analyze(effect, nothing))
    assert usage == [("gemini-x", 120, 30, 0.002)]
    slow = logged.by("slow analyzer call: Analyze took")
    assert slow["levelno"] == logging.WARNING


# -- the worker, on the virtual-time loop ------------------------------------------------------


def _reads(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield effects.ReadBlob(key="doc")
    return Success(pipeline.Completion())


class SlowRenewals(Watched):
    """A store whose one-at-a-time writes (heartbeats) take 0.2 s of the lease's 0.4 s."""

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        await asyncio.sleep(0.2)
        return self.compare_and_set_now(expected_version, job)


def test_a_late_renewal_is_a_warning_and_the_attempt_s_lines_say_which_job(
    logged: Captured,
) -> None:
    store = SlowRenewals()
    types = registry.of([registry.JobType(name="reads", pipeline=_reads)])
    submit(store, types, "reads", "job-1")

    async def read(effect: effects.ReadBlob) -> Any:
        await asyncio.sleep(0.35)  # long enough for one heartbeat, not two
        return Success(b"text")

    worker = make_worker(store, types, {effects.ReadBlob: read}, worker_id="w1")
    assert virtual.run(worker.drain()) == 1

    late = logged.by("lease renewed late")
    assert late["levelno"] == logging.WARNING
    assert (late["jobId"], late["attempt"], late["workerId"]) == ("job-1", 1, "w1")
    assert 0 < late["secondsLeft"] < 0.4 / 3
    step = logged.by("effect ReadBlob done")
    assert step["levelno"] == logging.DEBUG
    assert (step["jobId"], step["userId"], step["attempt"]) == ("job-1", "user-1", 1)
    assert step["seconds"] == pytest.approx(0.35)
    assert logged.by("job completed")["workerId"] == "w1"

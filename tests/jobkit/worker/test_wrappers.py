from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from returns.result import Failure, Result, Success

from jobkit import breaker, effects, errors, ratelimit
from jobkit.testing import VirtualClock
from jobkit.worker import Performer, wrappers

READ = effects.ReadBlob(key="doc")
UNAVAILABLE = errors.transient("unavailable", "the model is overloaded")
CORRUPT = errors.permanent("corrupt_document", "not a PDF")

Answer = Result[bytes, errors.Error]


class FakeTime:
    """A virtual clock whose `sleep` moves it on instead of waiting, noting each wait."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


def scripted(
    *answers: Answer | Exception,
) -> tuple[Callable[[effects.ReadBlob], Awaitable[Answer]], list[effects.ReadBlob]]:
    """A performer giving `answers` in turn (raising the exceptions), and the calls it saw."""
    calls: list[effects.ReadBlob] = []
    queue = list(answers)

    async def perform(effect: effects.ReadBlob) -> Answer:
        calls.append(effect)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return perform, calls


def call_many(perform: Performer, times: int) -> list[object]:
    async def main() -> list[object]:
        return [await perform(READ) for _ in range(times)]

    return asyncio.run(main())


# -- rate limiter -------------------------------------------------------------------


def test_calls_over_capacity_wait_exactly_for_the_refill() -> None:
    time = FakeTime()
    bucket = ratelimit.TokenBucket.per_window(max_requests=2, window_seconds=4)  # 0.5 token/s
    limiter = wrappers.RateLimiter(bucket, time.clock.now, time.sleep)
    perform, calls = scripted(*[Success(b"ok")] * 5)
    answers = call_many(wrappers.rate_limited(perform, limiter), 5)
    assert answers == [Success(b"ok")] * 5
    assert len(calls) == 5
    assert time.sleeps == [2.0, 2.0, 2.0]  # the burst of two is free, then one per 2 s


def test_acquire_reports_the_seconds_waited() -> None:
    time = FakeTime()
    bucket = ratelimit.TokenBucket.per_window(max_requests=4, window_seconds=2)  # 2 tokens/s
    limiter = wrappers.RateLimiter(bucket, time.clock.now, time.sleep)

    async def main() -> list[float]:
        return [await limiter.acquire(cost=2.0) for _ in range(4)]

    assert asyncio.run(main()) == [0.0, 0.0, 1.0, 1.0]
    assert time.sleeps == [1.0, 1.0]


def test_time_that_passed_between_calls_refills_the_bucket() -> None:
    time = FakeTime()
    bucket = ratelimit.TokenBucket.per_window(max_requests=1, window_seconds=10)
    limiter = wrappers.RateLimiter(bucket, time.clock.now, time.sleep)

    async def main() -> list[float]:
        first = await limiter.acquire()
        time.clock.advance(4)
        return [first, await limiter.acquire()]

    assert asyncio.run(main()) == [0.0, 6.0]
    assert time.sleeps == [6.0]


# -- circuit breaker ------------------------------------------------------------------


def breaker_cell(time: FakeTime, threshold: int = 2, cooldown: float = 30.0) -> wrappers.Breaker:
    state = breaker.CircuitBreaker.closed(failure_threshold=threshold, cooldown_seconds=cooldown)
    return wrappers.Breaker(state, time.clock.now)


def circuit_open(seconds: float) -> Failure[errors.Error]:
    return Failure(
        errors.error(
            "circuit_open",
            "ReadBlob: the service failed repeatedly and its circuit breaker is open; the job"
            f" waits {seconds:.0f} s for it to be tried again",
            retryable=True,
            context={errors.RETRY_AFTER: seconds},
        )
    )


def test_an_open_breaker_refuses_calls_at_once_saying_when_then_a_trial_closes_it() -> None:
    time = FakeTime()
    cell = breaker_cell(time, threshold=2, cooldown=30.0)
    perform, calls = scripted(Failure(UNAVAILABLE), Failure(UNAVAILABLE), Success(b"back"))
    wrapped = wrappers.circuit_broken(perform, cell)
    assert call_many(wrapped, 2) == [Failure(UNAVAILABLE), Failure(UNAVAILABLE)]
    time.clock.advance(10.0)
    assert call_many(wrapped, 1) == [circuit_open(20.0)]  # not called: the job is deferred
    assert len(calls) == 2
    time.clock.advance(20.0)
    assert call_many(wrapped, 1) == [Success(b"back")]  # the trial call
    assert time.sleeps == []  # nothing waits inside an attempt
    assert cell.state == breaker.CircuitBreaker.closed(failure_threshold=2, cooldown_seconds=30.0)


def test_a_circuit_open_failure_is_deferred_by_the_default_policy() -> None:
    err = circuit_open(20.0).failure()
    assert errors.deferred(err)
    assert errors.classify(err)


def test_a_failed_trial_opens_the_breaker_again_for_a_whole_cooldown() -> None:
    time = FakeTime()
    cell = breaker_cell(time, threshold=1, cooldown=5.0)
    perform, _ = scripted(Failure(UNAVAILABLE), Failure(UNAVAILABLE), Success(b"back"))
    wrapped = wrappers.circuit_broken(perform, cell)
    assert call_many(wrapped, 2) == [Failure(UNAVAILABLE), circuit_open(5.0)]
    time.clock.advance(5.0)
    assert call_many(wrapped, 2) == [Failure(UNAVAILABLE), circuit_open(5.0)]  # trial failed
    time.clock.advance(5.0)
    assert call_many(wrapped, 1) == [Success(b"back")]
    assert cell.state.state is breaker.BreakerState.CLOSED


def test_a_permanent_failure_does_not_count_against_the_breaker() -> None:
    time = FakeTime()
    cell = breaker_cell(time, threshold=1)
    perform, calls = scripted(Failure(CORRUPT), Failure(CORRUPT), Success(b"fine"))
    answers = call_many(wrappers.circuit_broken(perform, cell), 3)
    assert answers == [Failure(CORRUPT), Failure(CORRUPT), Success(b"fine")]
    assert len(calls) == 3
    assert time.sleeps == []
    assert cell.state.state is breaker.BreakerState.CLOSED


def test_an_exception_counts_as_a_failure_and_propagates() -> None:
    time = FakeTime()
    cell = breaker_cell(time, threshold=1, cooldown=7.0)
    perform, _ = scripted(ConnectionError("reset"), Success(b"back"))
    wrapped = wrappers.circuit_broken(perform, cell)
    with pytest.raises(ConnectionError):
        call_many(wrapped, 1)
    assert cell.state.state is breaker.BreakerState.OPEN
    assert call_many(wrapped, 1) == [circuit_open(7.0)]
    time.clock.advance(7.0)
    assert call_many(wrapped, 1) == [Success(b"back")]


# -- timeout --------------------------------------------------------------------------


def test_a_slow_performer_becomes_a_timeout_failure() -> None:
    async def slow(effect: effects.ReadBlob) -> Answer:
        await asyncio.sleep(60)
        return Success(b"too late")

    [answer] = call_many(wrappers.timed_out(slow, 0.01), 1)
    match answer:
        case Failure(errors.Error(code="timeout", retryable=True, message=message)):
            assert message == "ReadBlob took longer than 0.01 s"
        case _:
            pytest.fail(f"expected a timeout failure, got {answer!r}")


def test_a_fast_performer_is_answered_unchanged() -> None:
    perform, _ = scripted(Success(b"quick"), Failure(CORRUPT))
    assert call_many(wrappers.timed_out(perform, 5.0), 2) == [Success(b"quick"), Failure(CORRUPT)]


# -- observed --------------------------------------------------------------------------


def test_the_observer_sees_every_call_with_its_name_duration_and_outcome() -> None:
    seen: list[tuple[str, float, bool]] = []
    perform, _ = scripted(Success(b"ok"), Failure(UNAVAILABLE), KeyError("boom"))
    wrapped = wrappers.observed(perform, lambda name, seconds, ok: seen.append((name, seconds, ok)))
    assert call_many(wrapped, 2) == [Success(b"ok"), Failure(UNAVAILABLE)]
    with pytest.raises(KeyError):
        call_many(wrapped, 1)
    assert [(name, ok) for name, _, ok in seen] == [
        ("ReadBlob", True),
        ("ReadBlob", False),
        ("ReadBlob", False),
    ]
    assert all(seconds >= 0.0 for _, seconds, _ in seen)

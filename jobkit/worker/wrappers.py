"""Cross-cutting wrappers applied once around any performer: rate limit, breaker, timeout, timing.

Each holds its pure state value (`ratelimit.TokenBucket`, `breaker.CircuitBreaker`)
in a small mutable cell shared by every job of the process, and asks the pure
functions what to do; waiting happens here, in the shell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from returns.result import Failure, Result, Success

from jobkit import breaker, effects, errors, ports, ratelimit
from jobkit.worker.interpreter import Performer

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """A token bucket shared by every call through it; callers wait their turn."""

    def __init__(self, bucket: ratelimit.TokenBucket, clock: Clock, sleep: Sleep = asyncio.sleep):
        self.bucket = bucket
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, cost: float = 1.0) -> float:
        """Wait until `cost` tokens are taken; returns the seconds waited."""
        waited = 0.0
        while True:
            decision, self.bucket = ratelimit.acquire(self.bucket, self._clock(), cost)
            match decision:
                case ratelimit.Allowed():
                    return waited
                case ratelimit.Wait(seconds=seconds):
                    waited += seconds
                    await self._sleep(seconds)

    async def reserve(self, cost: float) -> float:
        """Wait for `cost` tokens, however many: at most the bucket's capacity is waited
        for, the rest is taken as a debt that later callers wait out. Returns the tokens
        reserved, for `adjust` once the real cost is known."""
        waited_for = min(cost, self.bucket.capacity)
        await self.acquire(waited_for)
        self.adjust(cost - waited_for)
        return cost

    def adjust(self, tokens: float) -> None:
        """Take `tokens` more (or give `-tokens` back) now that a call's real cost is known."""
        self.bucket = ratelimit.adjust(self.bucket, self._clock(), tokens)


class Breaker:
    """A circuit breaker shared by every call through it."""

    def __init__(self, state: breaker.CircuitBreaker, clock: Clock, sleep: Sleep = asyncio.sleep):
        self.state = state
        self._clock = clock
        self._sleep = sleep

    def admit(self) -> float | None:
        """None when a call may go ahead; else the seconds until one may be tried."""
        admission, self.state = breaker.admit(self.state, self._clock())
        match admission:
            case breaker.Admitted():
                return None
            case breaker.Rejected(retry_after=seconds):
                return max(seconds, 0.0)
        raise AssertionError("unreachable")

    def record(self, ok: bool) -> None:
        record = breaker.record_success if ok else breaker.record_failure
        self.state = record(self.state, self._clock())


def rate_limited(perform: Performer, limiter: RateLimiter) -> Performer:
    async def wrapped(effect: Any) -> Any:
        await limiter.acquire()
        return await perform(effect)

    return wrapped


def circuit_broken(perform: Performer, cell: Breaker) -> Performer:
    """While the breaker is open, the call is not made: it fails at once with `circuit_open`,
    which the retry policy defers (`errors.deferred`): the attempt does not count, the worker
    hands the job back, and it runs again when the breaker lets a trial call through.

    Only transient failures count against the breaker: a corrupt document is not an outage.
    """

    async def wrapped(effect: Any) -> Any:
        wait = cell.admit()
        if wait is not None:
            return Failure(
                errors.error(
                    "circuit_open",
                    f"{type(effect).__name__}: the service failed repeatedly and its circuit"
                    f" breaker is open; the job waits {wait:.0f} s for it to be tried again",
                    retryable=True,
                    context={errors.RETRY_AFTER: wait},
                )
            )
        try:
            answer = await perform(effect)
        except Exception:
            cell.record(ok=False)
            raise
        match answer:
            case Failure(errors.Error(retryable=True)):
                cell.record(ok=False)
            case _:
                cell.record(ok=True)
        return answer

    return wrapped


def timed_out(perform: Performer, seconds: float) -> Performer:
    async def wrapped(effect: Any) -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await perform(effect)
        except TimeoutError:
            name = type(effect).__name__
            return Failure(errors.transient("timeout", f"{name} took longer than {seconds:g} s"))

    return wrapped


Observer = Callable[[str, float, bool], None]


def observed(perform: Performer, observer: Observer) -> Performer:
    """Call `observer(effect name, seconds, succeeded)` after every call, for metrics and logs."""

    async def wrapped(effect: Any) -> Any:
        started = time.perf_counter()
        ok = False
        try:
            answer = await perform(effect)
            ok = isinstance(answer, Success)
            return answer
        finally:
            observer(type(effect).__name__, time.perf_counter() - started, ok)

    return wrapped


class GuardedAnalyzer:
    """Any `ports.Analyzer` behind the process-wide rate limiter, circuit breaker and timing.

    Composed in one place (the service's composition root), so every analyzer —
    offline or Gemini — gets the same protection without knowing about it.
    """

    def __init__(
        self,
        analyzer: ports.Analyzer,
        *,
        limiter: RateLimiter | None = None,
        breaker: Breaker | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.limiter = limiter
        self.breaker = breaker
        self.observer = observer

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        async def call(e: Any) -> Any:
            return await self.analyzer.analyze(e, progress)

        perform: Performer = call
        if self.breaker is not None:
            perform = circuit_broken(perform, self.breaker)
        if self.limiter is not None:
            perform = rate_limited(perform, self.limiter)
        if self.observer is not None:
            perform = observed(perform, self.observer)
        answer: Result[effects.Analysis, errors.Error] = await perform(effect)
        return answer

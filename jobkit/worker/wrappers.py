"""Cross-cutting wrappers applied once around any performer: rate limit, breaker, timeout, timing.

Each holds its pure state value (`ratelimit.TokenBucket`, `breaker.CircuitBreaker`)
in a small mutable cell shared by every job of the process, and asks the pure
functions what to do; waiting happens here, in the shell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from returns.result import Failure, Result, Success

from jobkit import breaker, effects, errors, ports, ratelimit
from jobkit.worker.interpreter import Performer

log = logging.getLogger("jobkit.worker")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
WaitObserver = Callable[[str, float], None]
"""`observer(limiter name, seconds waited)`, after every acquisition (0 when none waited)."""
TransitionObserver = Callable[[str, breaker.BreakerState, breaker.BreakerState], None]
"""`observer(breaker name, state before, state after)`, on every change of state."""
UsageObserver = Callable[[str, int, int, float], None]
"""`observer(model, prompt tokens, output tokens, estimated cost in US dollars)`, after
every analysis whose `usage` counts tokens."""


class RateLimiter:
    """A token bucket shared by every call through it; callers wait their turn.

    A caller made to wait is logged at WARNING (the limiter is saturated), and every
    acquisition is told to `observer` with the seconds it waited."""

    def __init__(
        self,
        bucket: ratelimit.TokenBucket,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        *,
        name: str = "analyzer",
        observer: WaitObserver | None = None,
    ):
        self.bucket = bucket
        self.name = name
        self.observer = observer
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, cost: float = 1.0) -> float:
        """Wait until `cost` tokens are taken; returns the seconds waited."""
        waited = 0.0
        while True:
            decision, self.bucket = ratelimit.acquire(self.bucket, self._clock(), cost)
            match decision:
                case ratelimit.Allowed():
                    if self.observer is not None:
                        self.observer(self.name, waited)
                    return waited
                case ratelimit.Wait(seconds=seconds):
                    if waited == 0.0:
                        log.warning(
                            "rate limit reached: waiting %.3g s for the %s",
                            seconds,
                            self.name,
                            extra={"limiter": self.name, "seconds": round(seconds, 3)},
                        )
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
    """A circuit breaker shared by every call through it. Its opening is logged at WARNING,
    its trial and closing at INFO, and every change is told to `observer`."""

    def __init__(
        self,
        state: breaker.CircuitBreaker,
        clock: Clock,
        *,
        name: str = "analyzer",
        observer: TransitionObserver | None = None,
    ):
        self.state = state
        self.name = name
        self.observer = observer
        self._clock = clock

    def admit(self) -> float | None:
        """None when a call may go ahead; else the seconds until one may be tried."""
        admission, state = breaker.admit(self.state, self._clock())
        self._become(state)
        match admission:
            case breaker.Admitted():
                return None
            case breaker.Rejected(retry_after=seconds):
                return max(seconds, 0.0)
        raise AssertionError("unreachable")

    def record(self, ok: bool) -> None:
        record = breaker.record_success if ok else breaker.record_failure
        self._become(record(self.state, self._clock()))

    def _become(self, state: breaker.CircuitBreaker) -> None:
        before, self.state = self.state.state, state
        if state.state is before:
            return
        fields = {"breaker": self.name, "from": before.value, "to": state.state.value}
        if state.state is breaker.BreakerState.OPEN:
            log.warning(
                "circuit breaker opened after %d failures: %s calls are deferred for %g s",
                state.failures,
                self.name,
                state.cooldown_seconds,
                extra={**fields, "failures": state.failures},
            )
        elif state.state is breaker.BreakerState.HALF_OPEN:
            log.info("circuit breaker half open: a trial %s call", self.name, extra=fields)
        else:
            log.info("circuit breaker closed: %s calls flow again", self.name, extra=fields)
        if self.observer is not None:
            self.observer(self.name, before, state.state)


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


def slow_logged(perform: Performer, target: str, slow_seconds: float) -> Performer:
    """Log at WARNING every call slower than `slow_seconds`."""

    async def wrapped(effect: Any) -> Any:
        started = time.perf_counter()
        try:
            return await perform(effect)
        finally:
            seconds = time.perf_counter() - started
            if seconds >= slow_seconds:
                log.warning(
                    "slow %s call: %s took %.3g s (threshold %g s)",
                    target,
                    type(effect).__name__,
                    seconds,
                    slow_seconds,
                    extra={
                        "target": target,
                        "operation": type(effect).__name__,
                        "seconds": round(seconds, 6),
                    },
                )

    return wrapped


# The keys of `Analysis.usage` an analyzer fills for token and cost metrics.
PROMPT_TOKENS, OUTPUT_TOKENS, THOUGHTS_TOKENS = "promptTokens", "outputTokens", "thoughtsTokens"
COST_USD = "costUsd"


def _report_usage(observer: UsageObserver, answer: Any) -> None:
    match answer:
        case Success(effects.Analysis(model=model, usage=usage, cost=cost)) if (
            PROMPT_TOKENS in usage
        ):
            # A model's thinking is billed as output: it counts as output tokens here too.
            output = int(usage.get(OUTPUT_TOKENS) or 0) + int(usage.get(THOUGHTS_TOKENS) or 0)
            amount = usage.get(COST_USD) if cost is None else cost.get("amount")
            observer(model, int(usage.get(PROMPT_TOKENS) or 0), output, float(amount or 0.0))
        case _:
            pass


class GuardedAnalyzer:
    """Any `ports.Analyzer` behind the process-wide rate limiter, circuit breaker and timing.

    Composed in one place (the service's composition root), so every analyzer —
    offline or Gemini — gets the same protection without knowing about it. Calls slower
    than `slow_seconds` are logged at WARNING; an analysis whose `usage` has
    `promptTokens` (and `outputTokens`, `thoughtsTokens`) is told to `usage`, with its cost
    (`Analysis.cost["amount"]`, or `usage["costUsd"]`).
    """

    def __init__(
        self,
        analyzer: ports.Analyzer,
        *,
        limiter: RateLimiter | None = None,
        breaker: Breaker | None = None,
        observer: Observer | None = None,
        slow_seconds: float | None = None,
        usage: UsageObserver | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.limiter = limiter
        self.breaker = breaker
        self.observer = observer
        self.slow_seconds = slow_seconds
        self.usage = usage

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        async def call(e: Any) -> Any:
            return await self.analyzer.analyze(e, progress)

        # Innermost first: the call's own time is observed and judged slow, without the
        # waits of the breaker and the rate limit around it.
        perform: Performer = call
        if self.observer is not None:
            perform = observed(perform, self.observer)
        if self.slow_seconds is not None:
            perform = slow_logged(perform, "analyzer", self.slow_seconds)
        if self.breaker is not None:
            perform = circuit_broken(perform, self.breaker)
        if self.limiter is not None:
            perform = rate_limited(perform, self.limiter)
        answer: Result[effects.Analysis, errors.Error] = await perform(effect)
        if self.usage is not None:
            _report_usage(self.usage, answer)
        return answer

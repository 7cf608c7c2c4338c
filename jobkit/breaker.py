"""A circuit breaker as an immutable value, so whether to call a failing dependency is pure."""

# Theory of operation
# -------------------
# A breaker stops calling a dependency that keeps failing, lets it rest for
# `cooldown_seconds`, then probes it with a few trial calls. The caller asks
# `admit` before each call and reports the call's outcome with
# `record_success` or `record_failure`; each returns the breaker's next value.
#
#   state      admit                          record_success     record_failure
#   ---------  -----------------------------  -----------------  -----------------------------
#   closed     Admitted                       failures = 0       failures += 1; at threshold
#                                                                -> open, opened_at = now
#   open       Rejected until the cool-down   ignored            ignored
#              is over; then -> half_open
#              and Admitted as a trial
#   half_open  Admitted while trials remain,  -> closed          -> open, opened_at = now
#              Rejected after
#
# `opened_at` is when the current open or half-open phase began. Outcomes
# reported while open come from calls admitted before it opened: they say
# nothing of the dependency now, so they are ignored. A trial whose outcome is
# never reported (its worker died) must not wedge the breaker half-open for
# good: once a whole cool-down passes without one, a new round of trials starts.

from __future__ import annotations

import enum
import math
from datetime import datetime
from typing import assert_never

import attrs

from jobkit import errors, instants


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.frozen(kw_only=True)
class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; probes after `cooldown_seconds`.

    `trials` counts the trial calls admitted in the current half-open round.
    """

    failure_threshold: int
    cooldown_seconds: float
    half_open_max_calls: int = 1
    state: BreakerState
    failures: int
    opened_at: datetime | None
    trials: int

    def __attrs_post_init__(self) -> None:
        trials_allowed = self.half_open_max_calls if self.state is BreakerState.HALF_OPEN else 0
        if not (
            self.failure_threshold >= 1
            and self.half_open_max_calls >= 1
            and math.isfinite(self.cooldown_seconds)
            and self.cooldown_seconds >= 0
            and self.failures >= 0
            and 0 <= self.trials <= trials_allowed
            and (self.opened_at is None) == (self.state is BreakerState.CLOSED)
        ):
            raise errors.ConfigurationError(f"inconsistent circuit breaker: {self!r}")

    @classmethod
    def closed(
        cls,
        failure_threshold: int = 5,
        cooldown_seconds: float = 30.0,
        half_open_max_calls: int = 1,
    ) -> CircuitBreaker:
        """A breaker that has seen no failure yet."""
        return cls(
            failure_threshold=failure_threshold,
            cooldown_seconds=cooldown_seconds,
            half_open_max_calls=half_open_max_calls,
            state=BreakerState.CLOSED,
            failures=0,
            opened_at=None,
            trials=0,
        )


@attrs.frozen(kw_only=True)
class Admitted:
    """Make the call, then report its outcome."""


@attrs.frozen(kw_only=True)
class Rejected:
    """Do not call; ask again in `retry_after` seconds."""

    retry_after: float


Admission = Admitted | Rejected


def _phase_age(breaker: CircuitBreaker, now: datetime) -> float:
    # A clock that went backwards counts as no time passed.
    assert breaker.opened_at is not None, "only closed breakers lack opened_at"
    return max(0.0, instants.seconds_between(breaker.opened_at, now))


def admit(breaker: CircuitBreaker, now: datetime) -> tuple[Admission, CircuitBreaker]:
    """May a call be made at `now`? Admitting a trial call is counted in the new value."""
    match breaker.state:
        case BreakerState.CLOSED:
            return Admitted(), breaker
        case BreakerState.HALF_OPEN if breaker.trials < breaker.half_open_max_calls:
            return Admitted(), attrs.evolve(breaker, trials=breaker.trials + 1)
        case BreakerState.OPEN | BreakerState.HALF_OPEN:
            age = _phase_age(breaker, now)
            if age < breaker.cooldown_seconds:
                return Rejected(retry_after=breaker.cooldown_seconds - age), breaker
            # Rested long enough, or a round of trials whose outcomes never came back.
            trial = attrs.evolve(breaker, state=BreakerState.HALF_OPEN, opened_at=now, trials=1)
            return Admitted(), trial
        case _:
            assert_never(breaker.state)


def record_success(breaker: CircuitBreaker, now: datetime) -> CircuitBreaker:
    """An admitted call succeeded at `now`."""
    match breaker.state:
        case BreakerState.CLOSED:
            return attrs.evolve(breaker, failures=0)
        case BreakerState.OPEN:
            return breaker
        case BreakerState.HALF_OPEN:
            return attrs.evolve(
                breaker, state=BreakerState.CLOSED, failures=0, opened_at=None, trials=0
            )
        case _:
            assert_never(breaker.state)


def record_failure(breaker: CircuitBreaker, now: datetime) -> CircuitBreaker:
    """An admitted call failed at `now`."""
    match breaker.state:
        case BreakerState.CLOSED:
            failures = breaker.failures + 1
            if failures < breaker.failure_threshold:
                return attrs.evolve(breaker, failures=failures)
            return attrs.evolve(breaker, state=BreakerState.OPEN, failures=failures, opened_at=now)
        case BreakerState.OPEN:
            return breaker
        case BreakerState.HALF_OPEN:
            return attrs.evolve(
                breaker,
                state=BreakerState.OPEN,
                failures=breaker.failures + 1,
                opened_at=now,
                trials=0,
            )
        case _:
            assert_never(breaker.state)

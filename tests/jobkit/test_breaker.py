from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jobkit import breaker, errors

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPEN, HALF_OPEN, CLOSED = (
    breaker.BreakerState.OPEN,
    breaker.BreakerState.HALF_OPEN,
    breaker.BreakerState.CLOSED,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fail_times(b: breaker.CircuitBreaker, times: list[datetime]) -> breaker.CircuitBreaker:
    for now in times:
        b = breaker.record_failure(b, now)
    return b


# -- examples ---------------------------------------------------------------------


def test_closed_is_the_starting_point() -> None:
    assert breaker.CircuitBreaker.closed() == breaker.CircuitBreaker(
        failure_threshold=5,
        cooldown_seconds=30.0,
        half_open_max_calls=1,
        state=CLOSED,
        failures=0,
        opened_at=None,
        trials=0,
    )


def test_a_closed_breaker_admits_and_a_success_resets_the_count() -> None:
    b = fail_times(breaker.CircuitBreaker.closed(failure_threshold=3), [at(0), at(1)])
    assert b.failures == 2
    assert breaker.admit(b, at(2)) == (breaker.Admitted(), b)
    assert breaker.record_success(b, at(2)) == breaker.CircuitBreaker.closed(failure_threshold=3)


def test_the_whole_cycle() -> None:
    b = fail_times(
        breaker.CircuitBreaker.closed(failure_threshold=2, cooldown_seconds=10.0), [at(0), at(1)]
    )
    assert (b.state, b.opened_at) == (OPEN, at(1))
    assert breaker.admit(b, at(5)) == (breaker.Rejected(retry_after=6.0), b)

    admission, trial = breaker.admit(b, at(11))
    assert admission == breaker.Admitted()
    assert trial == attrs.evolve(b, state=HALF_OPEN, opened_at=at(11), trials=1)
    assert breaker.admit(trial, at(12)) == (breaker.Rejected(retry_after=9.0), trial)

    reopened = breaker.record_failure(trial, at(12))
    assert reopened == attrs.evolve(b, state=OPEN, failures=3, opened_at=at(12), trials=0)

    _, trial = breaker.admit(reopened, at(22))
    assert breaker.record_success(trial, at(23)) == breaker.CircuitBreaker.closed(
        failure_threshold=2, cooldown_seconds=10.0
    )


def test_half_open_admits_as_many_trials_as_configured() -> None:
    b = fail_times(
        breaker.CircuitBreaker.closed(failure_threshold=1, half_open_max_calls=3), [at(0)]
    )
    admissions = []
    for _ in range(4):
        admission, b = breaker.admit(b, at(30))
        admissions.append(admission)
    assert admissions == [breaker.Admitted()] * 3 + [breaker.Rejected(retry_after=30.0)]
    assert b.trials == 3


def test_trials_whose_outcome_never_comes_start_a_new_round_after_a_cooldown() -> None:
    b = fail_times(breaker.CircuitBreaker.closed(failure_threshold=1), [at(0)])
    _, lost = breaker.admit(b, at(30))
    assert breaker.admit(lost, at(59)) == (breaker.Rejected(retry_after=1.0), lost)
    assert breaker.admit(lost, at(60)) == (breaker.Admitted(), attrs.evolve(lost, opened_at=at(60)))


def test_outcomes_reported_while_open_are_ignored() -> None:
    b = fail_times(breaker.CircuitBreaker.closed(failure_threshold=1), [at(0)])
    assert breaker.record_success(b, at(1)) == b
    assert breaker.record_failure(b, at(1)) == b


def test_a_clock_gone_backwards_does_not_shorten_the_cooldown() -> None:
    b = fail_times(breaker.CircuitBreaker.closed(failure_threshold=1), [at(100)])
    assert breaker.admit(b, at(50)) == (breaker.Rejected(retry_after=30.0), b)


@pytest.mark.parametrize(
    "fields",
    [
        {"failure_threshold": 0},
        {"half_open_max_calls": 0},
        {"cooldown_seconds": -1.0},
        {"cooldown_seconds": math.nan},
        {"failures": -1},
        {"opened_at": T0},
        {"state": OPEN},
        {"trials": 1},
        {"state": HALF_OPEN, "opened_at": T0, "trials": 2},
    ],
)
def test_an_impossible_breaker_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError):
        attrs.evolve(breaker.CircuitBreaker.closed(), **fields)


# -- properties -------------------------------------------------------------------

moments = st.integers(-(10**9), 10**9).map(lambda micros: T0 + timedelta(microseconds=micros))
ANY_STATE = st.sampled_from(breaker.BreakerState)


@st.composite
def breakers(
    draw: st.DrawFn, states: st.SearchStrategy[breaker.BreakerState] = ANY_STATE
) -> breaker.CircuitBreaker:
    """Any consistent breaker in one of `states`."""
    closed = breaker.CircuitBreaker.closed(
        failure_threshold=draw(st.integers(1, 6)),
        cooldown_seconds=draw(st.floats(0.0, 120.0)),
        half_open_max_calls=draw(st.integers(1, 4)),
    )
    state = draw(states)
    if state is CLOSED:
        return attrs.evolve(closed, failures=draw(st.integers(0, closed.failure_threshold - 1)))
    return attrs.evolve(
        closed,
        state=state,
        failures=draw(st.integers(0, 20)),
        opened_at=draw(moments),
        trials=draw(st.integers(0, closed.half_open_max_calls)) if state is HALF_OPEN else 0,
    )


def since(b: breaker.CircuitBreaker, micros: int) -> datetime:
    assert b.opened_at is not None
    return b.opened_at + timedelta(microseconds=micros)


@given(breakers(st.just(OPEN)), st.integers(-(10**9), 120 * 10**6))
def test_never_admits_while_open_before_the_cooldown(
    b: breaker.CircuitBreaker, micros: int
) -> None:
    now = since(b, micros)
    assume(max(0, micros) < b.cooldown_seconds * 1e6)  # a clock gone back counts as no time
    admission, after = breaker.admit(b, now)
    assert after == b
    assert isinstance(admission, breaker.Rejected)
    assert 0 < admission.retry_after <= b.cooldown_seconds


@given(breakers(st.just(OPEN)), st.integers(0, 10**9))
def test_the_first_call_after_the_cooldown_is_a_trial(
    b: breaker.CircuitBreaker, extra: int
) -> None:
    micros = math.ceil(b.cooldown_seconds * 1e6) + extra
    now = since(b, micros)
    assume(micros >= b.cooldown_seconds * 1e6)
    assert breaker.admit(b, now) == (
        breaker.Admitted(),
        attrs.evolve(b, state=HALF_OPEN, opened_at=now, trials=1),
    )


@given(breakers(st.just(HALF_OPEN)), st.integers(0, 10))
def test_half_open_admits_no_more_than_its_trials(b: breaker.CircuitBreaker, calls: int) -> None:
    assume(b.cooldown_seconds > 0)
    now, room = since(b, 0), b.half_open_max_calls - b.trials
    admissions = []
    for _ in range(calls):
        admission, b = breaker.admit(b, now)
        admissions.append(admission)
    assert admissions.count(breaker.Admitted()) == min(calls, room)


@given(breakers(st.just(CLOSED)), st.lists(st.tuples(st.booleans(), moments), max_size=30))
def test_opens_after_exactly_threshold_consecutive_failures(
    b: breaker.CircuitBreaker, outcomes: list[tuple[bool, datetime]]
) -> None:
    streak = b.failures
    for failed, now in outcomes:
        b = breaker.record_failure(b, now) if failed else breaker.record_success(b, now)
        streak = streak + 1 if failed else 0
        assert b.failures == streak
        if streak < b.failure_threshold:
            assert b.state is CLOSED
        else:
            assert (b.state, b.opened_at) == (OPEN, now)
            return


@given(breakers(st.just(HALF_OPEN)), moments)
def test_a_success_in_half_open_closes_it(b: breaker.CircuitBreaker, now: datetime) -> None:
    assert breaker.record_success(b, now) == breaker.CircuitBreaker.closed(
        failure_threshold=b.failure_threshold,
        cooldown_seconds=b.cooldown_seconds,
        half_open_max_calls=b.half_open_max_calls,
    )


@given(breakers(st.just(HALF_OPEN)), moments)
def test_a_failure_in_half_open_reopens_it_at_once(
    b: breaker.CircuitBreaker, now: datetime
) -> None:
    assert breaker.record_failure(b, now) == attrs.evolve(
        b, state=OPEN, failures=b.failures + 1, opened_at=now, trials=0
    )


@given(breakers(), st.lists(st.tuples(st.sampled_from(["admit", "success", "failure"]), moments)))
def test_inputs_are_left_as_they_were(
    b: breaker.CircuitBreaker, steps: list[tuple[str, datetime]]
) -> None:
    for step, now in steps:
        snapshot = attrs.evolve(b)
        if step == "admit":
            _, after = breaker.admit(b, now)
        elif step == "success":
            after = breaker.record_success(b, now)
        else:
            after = breaker.record_failure(b, now)
        assert b == snapshot
        b = after

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import errors, ratelimit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def bucket(capacity: float = 3.0, rate: float = 0.5) -> ratelimit.TokenBucket:
    return ratelimit.TokenBucket(
        capacity=capacity, refill_per_second=rate, tokens=capacity, updated_at=None
    )


# -- examples ---------------------------------------------------------------------


def test_per_window_is_full_and_refills_the_window_rate() -> None:
    assert ratelimit.TokenBucket.per_window(max_requests=100, window_seconds=60) == (
        ratelimit.TokenBucket(
            capacity=100.0, refill_per_second=100 / 60, tokens=100.0, updated_at=None
        )
    )


def test_a_burst_up_to_capacity_then_a_wait_for_the_next_token() -> None:
    b = bucket(capacity=3.0, rate=0.5)
    decisions = []
    for _ in range(4):
        decision, b = ratelimit.acquire(b, at(0))
        decisions.append(decision)
    assert decisions == [ratelimit.Allowed()] * 3 + [ratelimit.Wait(seconds=2.0)]
    assert b == attrs.evolve(bucket(3.0, 0.5), tokens=0.0, updated_at=at(0))


def test_a_wait_takes_nothing_and_time_refills() -> None:
    empty = attrs.evolve(bucket(capacity=3.0, rate=0.5), tokens=0.0, updated_at=at(0))
    assert ratelimit.acquire(empty, at(1), cost=1.0) == (ratelimit.Wait(seconds=1.0), empty)
    assert ratelimit.available(empty, at(2)) == 1.0
    assert ratelimit.acquire(empty, at(2)) == (
        ratelimit.Allowed(),
        attrs.evolve(empty, tokens=0.0, updated_at=at(2)),
    )


def test_refill_is_capped_at_capacity() -> None:
    used = attrs.evolve(bucket(capacity=3.0, rate=0.5), tokens=1.0, updated_at=at(0))
    assert ratelimit.available(used, at(3600)) == 3.0


def test_a_fresh_bucket_is_full_whatever_the_time() -> None:
    assert ratelimit.available(bucket(capacity=3.0), at(-1e6)) == 3.0


def test_a_clock_gone_backwards_earns_nothing_and_does_not_rewind_the_bucket() -> None:
    b = attrs.evolve(bucket(capacity=3.0, rate=1.0), tokens=2.0, updated_at=at(10))
    assert ratelimit.available(b, at(5)) == 2.0
    assert ratelimit.acquire(b, at(5)) == (
        ratelimit.Allowed(),
        attrs.evolve(b, tokens=1.0, updated_at=at(10)),
    )
    empty = attrs.evolve(b, tokens=0.0)
    # Five seconds to get back to the bucket's own time, one to earn the token.
    assert ratelimit.acquire(empty, at(5)) == (ratelimit.Wait(seconds=6.0), empty)


def test_a_wait_is_rounded_up_to_a_whole_microsecond() -> None:
    empty = attrs.evolve(bucket(capacity=1.0, rate=3.0), tokens=0.0, updated_at=at(0))
    assert ratelimit.acquire(empty, at(0)) == (ratelimit.Wait(seconds=0.333334), empty)


@pytest.mark.parametrize("cost", [3.5, -1.0, math.nan, math.inf])
def test_a_cost_the_bucket_can_never_meet_is_a_bug(cost: float) -> None:
    with pytest.raises(ValueError, match="cost"):
        ratelimit.acquire(bucket(capacity=3.0), at(0), cost=cost)


@pytest.mark.parametrize(
    "fields",
    [
        {"capacity": 0.0},
        {"capacity": math.inf},
        {"refill_per_second": -1.0},
        {"refill_per_second": math.nan},
        {"tokens": 4.0, "updated_at": T0},
        {"tokens": -1.0, "updated_at": T0},
        {"tokens": 1.0, "updated_at": None},
    ],
)
def test_an_impossible_bucket_is_refused(fields: dict[str, Any]) -> None:
    valid: dict[str, Any] = {
        "capacity": 3.0,
        "refill_per_second": 1.0,
        "tokens": 3.0,
        "updated_at": None,
    }
    with pytest.raises(errors.ConfigurationError):
        ratelimit.TokenBucket(**(valid | fields))


@pytest.mark.parametrize("window", [0.0, -60.0, math.nan])
def test_per_window_refuses_an_empty_window(window: float) -> None:
    with pytest.raises(errors.ConfigurationError):
        ratelimit.TokenBucket.per_window(max_requests=100, window_seconds=window)


# -- properties -------------------------------------------------------------------

fresh_buckets = st.builds(
    bucket,
    capacity=st.floats(min_value=0.01, max_value=1e4),
    rate=st.floats(min_value=1e-3, max_value=1e4),
)
# Steps: microseconds since the previous call, and a cost as a share of capacity.
forward_steps = st.lists(
    st.tuples(st.integers(0, 10**8), st.floats(0.0, 1.0)), min_size=1, max_size=40
)
any_steps = st.lists(st.tuples(st.integers(-(10**8), 10**8), st.floats(0.0, 1.0)), max_size=40)


Call = tuple[datetime, float, ratelimit.Decision, ratelimit.TokenBucket, ratelimit.TokenBucket]


def run(start: ratelimit.TokenBucket, steps: list[tuple[int, float]]) -> list[Call]:
    """Acquire at each step; returns (now, cost, decision, before, after) per call."""
    calls: list[Call] = []
    b, now = start, T0
    for micros, share in steps:
        now += timedelta(microseconds=micros)
        cost = share * b.capacity
        decision, after = ratelimit.acquire(b, now, cost)
        calls.append((now, cost, decision, b, after))
        b = after
    return calls


@st.composite
def used_buckets(draw: st.DrawFn) -> tuple[ratelimit.TokenBucket, datetime]:
    """A bucket after some calls (the clock may go back), and the time of the last one."""
    start = draw(fresh_buckets)
    calls = run(start, draw(any_steps))
    if not calls:
        return start, T0
    now, _, _, _, after = calls[-1]
    return after, now


@given(fresh_buckets, any_steps)
def test_tokens_stay_within_zero_and_capacity(
    start: ratelimit.TokenBucket, steps: list[tuple[int, float]]
) -> None:
    for now, _, _, before, after in run(start, steps):
        for b in (before, after):
            assert 0.0 <= b.tokens <= b.capacity
            assert 0.0 <= ratelimit.available(b, now) <= b.capacity


@given(fresh_buckets, forward_steps)
def test_never_allows_more_than_the_burst_plus_the_refill(
    start: ratelimit.TokenBucket, steps: list[tuple[int, float]]
) -> None:
    calls = run(start, steps)
    allowed = sum(cost for _, cost, decision, _, _ in calls if decision == ratelimit.Allowed())
    elapsed = (calls[-1][0] - calls[0][0]).total_seconds()
    limit = start.capacity + start.refill_per_second * elapsed
    # Up to the float slack `acquire` forgives on each call.
    assert allowed <= limit * (1 + 1e-9) + len(calls) * start.capacity * 1e-9


@given(used_buckets(), st.integers(-(10**8), 10**8), st.floats(0.0, 1.0))
def test_waiting_the_advised_time_is_enough(
    used: tuple[ratelimit.TokenBucket, datetime], micros: int, share: float
) -> None:
    b, last = used
    now, cost = last + timedelta(microseconds=micros), share * b.capacity
    decision, after = ratelimit.acquire(b, now, cost)
    match decision:
        case ratelimit.Allowed():
            assert after.updated_at == max(now, b.updated_at or now)
        case ratelimit.Wait(seconds=seconds):
            assert seconds > 0
            assert after == b
            later = now + timedelta(seconds=seconds)
            assert ratelimit.acquire(b, later, cost)[0] == ratelimit.Allowed()
        case _:
            assert_never(decision)


@given(used_buckets(), st.integers(-(10**8), 10**8), st.floats(0.0, 1.0))
def test_inputs_are_left_as_they_were(
    used: tuple[ratelimit.TokenBucket, datetime], micros: int, share: float
) -> None:
    b, last = used
    snapshot = attrs.evolve(b)
    now = last + timedelta(microseconds=micros)
    ratelimit.available(b, now)
    ratelimit.acquire(b, now, share * b.capacity)
    assert b == snapshot


# -- adjusting after the fact --------------------------------------------------------


def test_adjust_takes_what_the_bucket_holds() -> None:
    used = attrs.evolve(bucket(capacity=10.0, rate=1.0), tokens=6.0, updated_at=at(0))
    assert ratelimit.adjust(used, at(0), 4.0) == attrs.evolve(used, tokens=2.0)


def test_taking_more_than_the_bucket_holds_leaves_a_debt_that_delays_the_next_caller() -> None:
    used = attrs.evolve(bucket(capacity=10.0, rate=2.0), tokens=4.0, updated_at=at(0))
    owing = ratelimit.adjust(used, at(0), 10.0)  # 6 tokens short: 3 s of refill
    assert owing == attrs.evolve(used, tokens=0.0, updated_at=at(3))
    assert ratelimit.available(owing, at(1)) == 0.0
    assert ratelimit.acquire(owing, at(1), 2.0) == (ratelimit.Wait(seconds=3.0), owing)
    decision, _ = ratelimit.acquire(owing, at(4), 2.0)
    assert decision == ratelimit.Allowed()


def test_giving_back_pays_off_a_debt_first_then_refills_up_to_capacity() -> None:
    owing = attrs.evolve(bucket(capacity=10.0, rate=2.0), tokens=0.0, updated_at=at(3))
    assert ratelimit.adjust(owing, at(0), -4.0) == attrs.evolve(owing, updated_at=at(1))
    assert ratelimit.adjust(owing, at(0), -10.0) == attrs.evolve(
        owing, tokens=4.0, updated_at=at(0)
    )
    assert ratelimit.adjust(owing, at(0), -100.0) == attrs.evolve(
        owing, tokens=10.0, updated_at=at(0)
    )


def test_giving_back_to_a_bucket_never_used_changes_nothing() -> None:
    full = bucket(capacity=5.0)
    assert ratelimit.adjust(full, at(0), -3.0) is full


@given(fresh_buckets, any_steps, st.floats(-1e5, 1e5))
def test_adjust_keeps_the_bucket_consistent(
    start: ratelimit.TokenBucket, steps: list[tuple[int, float]], tokens: float
) -> None:
    calls = run(start, steps)
    b, now = (calls[-1][4], calls[-1][0]) if calls else (start, T0)
    after = ratelimit.adjust(b, now, tokens)
    assert 0.0 <= after.tokens <= after.capacity
    assert 0.0 <= ratelimit.available(after, now) <= after.capacity
    if tokens > 0:  # the debt or the level accounts for every token taken, to a microsecond
        owed = 0.0
        if after.updated_at is not None and after.updated_at > now:
            owed = (after.updated_at - max(now, b.updated_at or now)).total_seconds()
        paid = ratelimit.available(b, now) - ratelimit.available(after, now)
        assert paid + owed * b.refill_per_second >= tokens - 1e-6 * (1 + b.refill_per_second)

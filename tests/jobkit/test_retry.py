"""Backoff with full jitter and the retry decision: unit values, properties, refused configs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jobkit import errors, instants, retry
from tests.jobkit import strategies

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DEFAULT = retry.Backoff()  # base 2, factor 2, cap 300
FLAKY = errors.transient("unavailable", "backend down")
POLICY = retry.RetryPolicy()  # max 5 attempts, DEFAULT backoff, default classifier


def decide(
    err: errors.Error,
    attempts: int,
    max_attempts: int = 3,
    policy: retry.RetryPolicy = POLICY,
    sample: float = 0.5,
) -> retry.Decision:
    return retry.decide(
        policy, err, attempts=attempts, max_attempts=max_attempts, now=T0, sample=sample
    )


# -- ceiling and delay ---------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (8, 256.0), (9, 300.0), (50, 300.0), (5000, 300.0)],
)
def test_ceiling_doubles_from_base_up_to_the_cap(attempt: int, expected: float) -> None:
    assert retry.ceiling(DEFAULT, attempt) == expected


def test_ceiling_with_factor_one_stays_at_base() -> None:
    steady = retry.Backoff(base=5.0, factor=1.0, cap=300.0)
    assert [retry.ceiling(steady, n) for n in (1, 2, 10, 100)] == [5.0, 5.0, 5.0, 5.0]


def test_ceiling_never_exceeds_a_cap_below_base() -> None:
    assert retry.ceiling(retry.Backoff(base=10.0, factor=3.0, cap=4.0), 1) == 4.0


@pytest.mark.parametrize(("factor", "attempt"), [(10.0, 400), (3.0, 700), (1000.0, 150)])
def test_ceiling_is_the_cap_long_after_the_power_overflows_a_float(
    factor: float, attempt: int
) -> None:
    # factor**(attempt-1) is past 1.8e308 here while the exponent is still under 1000.
    backoff = retry.Backoff(base=1.0, factor=factor, cap=60.0)
    assert retry.ceiling(backoff, attempt) == 60.0


@pytest.mark.parametrize(
    ("attempt", "sample", "expected"),
    [(1, 0.0, 0.0), (1, 0.5, 1.0), (3, 0.5, 4.0), (3, 0.25, 2.0), (9, 0.5, 150.0)],
)
def test_delay_is_the_sample_times_the_ceiling(
    attempt: int, sample: float, expected: float
) -> None:
    assert retry.delay(DEFAULT, attempt, sample) == expected


@pytest.mark.parametrize("sample", [-0.1, -0.0001, 1.0, 1.5, math.nan, math.inf])
def test_a_sample_outside_zero_to_one_is_refused(sample: float) -> None:
    with pytest.raises(ValueError, match=r"sample must be in \[0, 1\)"):
        retry.delay(DEFAULT, 1, sample)


# -- decide --------------------------------------------------------------------


def test_a_transient_failure_with_attempts_left_is_retried_after_the_jittered_delay() -> None:
    assert decide(FLAKY, attempts=1) == retry.RetryAt(at=instants.plus(T0, 1.0), delay=1.0)
    assert decide(FLAKY, attempts=2, sample=0.25) == retry.RetryAt(
        at=instants.plus(T0, 1.0), delay=1.0
    )


@pytest.mark.parametrize(
    "err",
    [
        errors.transient("invalid_input", "listed as permanent, whatever the performer said"),
        errors.permanent("boom", "not listed: the performer's word counts"),
    ],
)
def test_a_permanent_failure_gives_up_at_once(err: errors.Error) -> None:
    assert decide(err, attempts=1, max_attempts=100) == retry.GiveUp(reason="permanent")


def test_a_listed_transient_code_is_retried_even_if_the_performer_said_not() -> None:
    err = errors.permanent("timeout", "the classifier knows better")
    assert decide(err, attempts=1) == retry.RetryAt(at=instants.plus(T0, 1.0), delay=1.0)


def test_the_policys_classifier_is_the_one_consulted() -> None:
    policy = retry.RetryPolicy(classifier=errors.Classifier(permanent=frozenset({"unavailable"})))
    assert decide(FLAKY, attempts=1, policy=policy) == retry.GiveUp(reason="permanent")


@pytest.mark.parametrize(("attempts", "max_attempts"), [(3, 3), (4, 3), (1, 1)])
def test_no_attempts_left_gives_up_exhausted(attempts: int, max_attempts: int) -> None:
    assert decide(FLAKY, attempts, max_attempts) == retry.GiveUp(reason="exhausted")


def test_permanent_wins_over_exhausted() -> None:
    err = errors.permanent("boom", "no")
    assert decide(err, attempts=3, max_attempts=3) == retry.GiveUp(reason="permanent")


def test_the_jobs_max_attempts_counts_not_the_policys() -> None:
    generous = retry.RetryPolicy(max_attempts=10)
    assert decide(FLAKY, 2, max_attempts=2, policy=generous) == retry.GiveUp(reason="exhausted")
    stingy = retry.RetryPolicy(max_attempts=1)
    assert decide(FLAKY, 1, max_attempts=2, policy=stingy) == retry.RetryAt(
        at=instants.plus(T0, 1.0), delay=1.0
    )


def test_a_per_code_override_sets_the_backoff_for_that_code_only() -> None:
    slow = retry.Backoff(base=60.0, factor=1.0, cap=60.0)
    policy = retry.RetryPolicy(overrides={"rate_limited": slow})
    limited = errors.transient("rate_limited", "429")
    assert decide(limited, attempts=1, policy=policy) == retry.RetryAt(
        at=instants.plus(T0, 30.0), delay=30.0
    )
    assert decide(FLAKY, attempts=1, policy=policy) == retry.RetryAt(
        at=instants.plus(T0, 1.0), delay=1.0
    )


# -- configuration -------------------------------------------------------------


def test_a_retry_is_never_sooner_than_the_delay_the_service_asked_for() -> None:
    throttled = errors.transient("rate_limited", "quota", **{errors.RETRY_AFTER: 37.0})
    assert decide(throttled, attempts=1, sample=0.5) == retry.RetryAt(
        at=T0 + timedelta(seconds=37), delay=37.0
    )


def test_a_longer_backoff_wins_over_a_shorter_asked_delay() -> None:
    throttled = errors.transient("rate_limited", "quota", **{errors.RETRY_AFTER: 0.5})
    assert decide(throttled, attempts=3, max_attempts=5, sample=0.5) == retry.RetryAt(
        at=T0 + timedelta(seconds=4), delay=4.0
    )


@pytest.mark.parametrize("asked", [-1.0, math.inf, math.nan, "37", True, None])
def test_an_asked_delay_that_is_not_a_number_of_seconds_is_ignored(asked: object) -> None:
    throttled = errors.transient("rate_limited", "quota", **{errors.RETRY_AFTER: asked})
    assert retry.asked_delay(throttled) == 0.0


def test_a_permanent_error_gives_up_whatever_delay_it_asked_for() -> None:
    refused = errors.permanent("invalid_input", "bad", **{errors.RETRY_AFTER: 5.0})
    assert decide(refused, attempts=1) == retry.GiveUp(reason="permanent")


@pytest.mark.parametrize(
    "settings",
    [
        {"base": 0.0},
        {"base": -1.0},
        {"base": math.nan},
        {"cap": 0.0},
        {"cap": -5.0},
        {"cap": math.nan},
        {"factor": 0.5},
        {"factor": 0.0},
        {"factor": -2.0},
        {"factor": math.nan},
        {"factor": math.inf},
    ],
    ids=repr,
)
def test_a_backoff_refuses_bad_settings(settings: dict[str, float]) -> None:
    with pytest.raises(errors.ConfigurationError):
        retry.Backoff(**settings)


@pytest.mark.parametrize("max_attempts", [0, -1, retry.MAX_ATTEMPTS + 1])
def test_a_retry_policy_allows_one_to_the_most_attempts(max_attempts: int) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"max_attempts must be within 1\.\.100"):
        retry.RetryPolicy(max_attempts=max_attempts)


def test_the_smallest_settings_are_accepted() -> None:
    assert retry.Backoff(base=1e-9, factor=1.0, cap=1e-9).factor == 1.0
    assert retry.RetryPolicy(max_attempts=1).max_attempts == 1


def test_configuration_errors_are_jobkit_errors() -> None:
    assert issubclass(errors.ConfigurationError, errors.JobkitError)


# -- properties ----------------------------------------------------------------

wide_backoffs = st.builds(
    retry.Backoff,
    base=st.floats(min_value=1e-3, max_value=1e4),
    factor=st.floats(min_value=1.0, max_value=100.0),
    cap=st.floats(min_value=1e-3, max_value=1e5),
)


@given(wide_backoffs, st.integers(min_value=0, max_value=5000), strategies.samples())
def test_a_delay_is_within_zero_and_the_cap(
    backoff: retry.Backoff, attempt: int, sample: float
) -> None:
    seconds = retry.delay(backoff, attempt, sample)
    assert 0.0 <= seconds <= retry.ceiling(backoff, attempt) <= backoff.cap


GRID = [i / 64 for i in range(64)]


def mean_delay(backoff: retry.Backoff, attempt: int) -> float:
    return sum(retry.delay(backoff, attempt, sample) for sample in GRID) / len(GRID)


@given(strategies.backoffs(), st.integers(min_value=1, max_value=60))
def test_the_mean_delay_grows_with_the_attempt_and_strictly_until_the_cap(
    backoff: retry.Backoff, attempt: int
) -> None:
    this, following = mean_delay(backoff, attempt), mean_delay(backoff, attempt + 1)
    assert this <= following
    if retry.ceiling(backoff, attempt) == backoff.cap:
        assert this == following
    elif backoff.factor >= 1.001:
        assert this < following


@given(
    strategies.retry_policies(),
    strategies.error_values(),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=1, max_value=200),
    strategies.samples(),
)
def test_a_permanent_error_gives_up_whatever_attempts_remain(
    policy: retry.RetryPolicy, err: errors.Error, attempts: int, max_attempts: int, sample: float
) -> None:
    assume(not errors.classify(err, policy.classifier))
    assert retry.decide(
        policy, err, attempts=attempts, max_attempts=max_attempts, now=T0, sample=sample
    ) == retry.GiveUp(reason="permanent")


@given(
    strategies.retry_policies(),
    strategies.error_values(),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=0, max_value=100),
    strategies.samples(),
)
def test_no_attempts_left_gives_up_exhausted_for_any_transient_error(
    policy: retry.RetryPolicy, err: errors.Error, max_attempts: int, extra: int, sample: float
) -> None:
    assume(errors.classify(err, policy.classifier))
    decision = retry.decide(
        policy, err, attempts=max_attempts + extra, max_attempts=max_attempts, now=T0, sample=sample
    )
    assert decision == retry.GiveUp(reason="exhausted")


@given(
    strategies.retry_policies(),
    strategies.error_values(),
    st.integers(min_value=1, max_value=99),
    st.integers(min_value=1, max_value=100),
    strategies.samples(),
    strategies.utc_datetimes(),
)
def test_a_retry_waits_the_delay_of_the_codes_backoff(
    policy: retry.RetryPolicy,
    err: errors.Error,
    attempts: int,
    more: int,
    sample: float,
    now: datetime,
) -> None:
    assume(errors.classify(err, policy.classifier))
    backoff = policy.overrides.get(err.code, policy.backoff)
    expected = retry.delay(backoff, attempts, sample)
    decision = retry.decide(
        policy, err, attempts=attempts, max_attempts=attempts + more, now=now, sample=sample
    )
    assert decision == retry.RetryAt(at=now + timedelta(seconds=expected), delay=expected)
    assert 0.0 <= expected <= backoff.cap

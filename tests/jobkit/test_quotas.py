"""Per-user quotas: the pure admission decision, by example and by property."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import errors, instants, quotas

T0 = instants.from_epoch(1_800_000_000)


def at(seconds: float) -> datetime:
    return instants.plus(T0, seconds)


def test_no_limits_admit_everyone_and_remember_nobody() -> None:
    quota = quotas.Quotas()
    for n in range(100):
        decision, quota = quotas.admit(quota, f"user-{n % 3}", at(0), None)
        assert decision == quotas.Admitted()
    assert quota == quotas.Quotas()


def test_a_burst_of_per_minute_then_refused_until_a_token_is_back() -> None:
    quota = quotas.Quotas(per_minute=6)
    for _ in range(6):
        decision, quota = quotas.admit(quota, "ann", at(0), None)
        assert decision == quotas.Admitted()
    decision, refused_quota = quotas.admit(quota, "ann", at(0), None)
    assert decision == quotas.Refused(limit="per_minute", allowed=6, retry_after=10.0)
    assert refused_quota == quota  # a refusal takes nothing
    # Another user is not held back by ann.
    assert quotas.admit(quota, "bob", at(0), None)[0] == quotas.Admitted()
    # After the advised wait, ann is admitted again (once).
    decision, quota = quotas.admit(quota, "ann", at(10), None)
    assert decision == quotas.Admitted()
    assert isinstance(quotas.admit(quota, "ann", at(10), None)[0], quotas.Refused)


def test_max_active_refuses_at_the_limit_and_admits_below_it() -> None:
    quota = quotas.Quotas(max_active=3)
    assert quotas.admit(quota, "ann", at(0), 2)[0] == quotas.Admitted()
    decision, _ = quotas.admit(quota, "ann", at(0), 3)
    assert decision == quotas.Refused(
        limit="max_active", allowed=3, retry_after=quotas.ACTIVE_RETRY_SECONDS
    )
    with pytest.raises(ValueError, match="active count"):
        quotas.admit(quota, "ann", at(0), None)


def test_a_refusal_for_active_jobs_takes_no_token() -> None:
    quota = quotas.Quotas(per_minute=1, max_active=1)
    decision, after = quotas.admit(quota, "ann", at(0), 1)
    assert decision.limit == "max_active"  # type: ignore[union-attr]
    assert after == quota
    assert quotas.admit(after, "ann", at(0), 0)[0] == quotas.Admitted()


def test_users_whose_buckets_refilled_are_forgotten_past_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(quotas, "MAX_TRACKED", 3)
    quota = quotas.Quotas(per_minute=60)
    for n, second in enumerate((0, 0, 30)):
        _, quota = quotas.admit(quota, f"user-{n}", at(second), None)
    assert len(quota.buckets) == 3
    # At 31 s the buckets of users 0 and 1 have refilled (1 a second); user 2's has not.
    _, quota = quotas.admit(quota, "user-3", at(30.5), None)
    assert set(quota.buckets) == {"user-2", "user-3"}


@pytest.mark.parametrize("changes", [{"per_minute": 0}, {"per_minute": -1}, {"max_active": 0}])
def test_bad_quotas_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(errors.ConfigurationError):
        quotas.Quotas(**changes)  # type: ignore[arg-type]


ARRIVALS = st.lists(
    st.tuples(st.sampled_from(["ann", "bob", "cy"]), st.floats(0, 30, allow_nan=False)),
    max_size=200,
)


@given(per_minute=st.integers(1, 20), arrivals=ARRIVALS)
def test_no_user_is_admitted_more_than_the_bucket_allows_in_any_window(
    per_minute: int, arrivals: list[tuple[str, float]]
) -> None:
    quota = quotas.Quotas(per_minute=per_minute)
    now = 0.0
    admitted: dict[str, list[float]] = {}
    for user, gap in arrivals:
        now += gap
        decision, quota = quotas.admit(quota, user, at(now), None)
        if decision == quotas.Admitted():
            admitted.setdefault(user, []).append(now)
        else:
            assert isinstance(decision, quotas.Refused)
            assert decision.retry_after > 0
            # Coming back after the advised wait is admitted.
            assert quotas.admit(quota, user, at(now + decision.retry_after), None)[0] == (
                quotas.Admitted()
            )
    rate = per_minute / 60
    for times in admitted.values():
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                # In [start, times[j]]: at most the burst plus what refilled meanwhile.
                assert j - i + 1 <= per_minute + rate * (times[j] - start) + 1e-6

"""A token bucket as an immutable value, so a rate-limit decision is a pure function of time."""

from __future__ import annotations

import math
from datetime import datetime

import attrs

from jobkit import errors, instants

# Float rounding in the refill can leave a bucket a few ulps short of a cost it
# has exactly earned (e.g. right after waiting the advised time); forgive that
# much, relative to capacity, rather than ask for another microsecond's wait.
_SLACK = 1e-9
_TICKS_PER_SECOND = 1_000_000


def _positive_finite(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise errors.ConfigurationError(f"{attribute.name} must be finite and > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class TokenBucket:
    """`capacity` tokens at most (the burst), refilled at `refill_per_second`.

    `tokens` is the level at `updated_at`; `updated_at` is None for a bucket
    never used, which is full. An `updated_at` later than now is a debt (see `adjust`):
    the bucket earns nothing until then.
    """

    capacity: float = attrs.field(validator=_positive_finite)
    refill_per_second: float = attrs.field(validator=_positive_finite)
    tokens: float
    updated_at: datetime | None

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.tokens <= self.capacity:
            raise errors.ConfigurationError(
                f"tokens must be in [0, {self.capacity!r}], got {self.tokens!r}"
            )
        if self.updated_at is None and self.tokens != self.capacity:
            raise errors.ConfigurationError("a bucket never used (updated_at=None) must be full")

    @classmethod
    def per_window(cls, *, max_requests: float, window_seconds: float) -> TokenBucket:
        """`max_requests` per `window_seconds`, with a burst of `max_requests`; full."""
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise errors.ConfigurationError(
                f"window_seconds must be finite and > 0, got {window_seconds!r}"
            )
        capacity = float(max_requests)
        return cls(
            capacity=capacity,
            refill_per_second=capacity / window_seconds,
            tokens=capacity,
            updated_at=None,
        )


@attrs.frozen(kw_only=True)
class Allowed:
    """Go ahead: the cost has been taken from the bucket."""


@attrs.frozen(kw_only=True)
class Wait:
    """Not yet: enough tokens will be there `seconds` from now; nothing was taken."""

    seconds: float


Decision = Allowed | Wait


def _effective_now(bucket: TokenBucket, now: datetime) -> datetime:
    # A clock that went backwards earns nothing and does not move the bucket's
    # time back either: callers with skewed clocks sharing one bucket would
    # otherwise earn the same interval again on every swing.
    if bucket.updated_at is None or now >= bucket.updated_at:
        return now
    return bucket.updated_at


def available(bucket: TokenBucket, now: datetime) -> float:
    """The tokens in the bucket at `now`, in [0, capacity]."""
    if bucket.updated_at is None:
        return bucket.capacity
    elapsed = instants.seconds_between(bucket.updated_at, _effective_now(bucket, now))
    return min(bucket.capacity, bucket.tokens + elapsed * bucket.refill_per_second)


def acquire(bucket: TokenBucket, now: datetime, cost: float = 1.0) -> tuple[Decision, TokenBucket]:
    """Take `cost` tokens at `now` if they are there; otherwise say how long to wait.

    A `Wait` returns `bucket` unchanged. A cost above capacity could never be
    met, so it is a bug in the caller: `ValueError`.
    """
    if not 0.0 <= cost <= bucket.capacity:
        raise ValueError(f"cost must be in [0, capacity={bucket.capacity!r}], got {cost!r}")
    current = available(bucket, now)
    missing = cost - current
    if missing <= bucket.capacity * _SLACK:
        taken = attrs.evolve(
            bucket,
            tokens=max(0.0, current - cost),
            updated_at=_effective_now(bucket, now),
        )
        return Allowed(), taken
    behind = instants.seconds_between(now, _effective_now(bucket, now))
    # Round the refill time up to whole microseconds (a datetime's finest step):
    # `now + timedelta(seconds=...)` rounds to one, and must not round down.
    refill = math.ceil(missing / bucket.refill_per_second * _TICKS_PER_SECOND) / _TICKS_PER_SECOND
    return Wait(seconds=behind + refill), bucket


def adjust(bucket: TokenBucket, now: datetime, tokens: float) -> TokenBucket:
    """Take `tokens` more from the bucket at `now` (or give `-tokens` back), after the fact.

    For costs known only once the call is made (a model's tokens): reserve an estimate with
    `acquire`, then adjust by what the call really used minus the estimate. Taking more
    than the bucket holds leaves a debt, paid by refilling: the bucket is empty until
    `updated_at`, set that far ahead, so later callers wait for it. Giving back pays off a
    debt first, then refills the bucket, never past capacity.
    """
    if not math.isfinite(tokens):
        raise ValueError(f"tokens must be finite, got {tokens!r}")
    if bucket.updated_at is None and tokens <= 0:
        return bucket
    at = _effective_now(bucket, now)
    level = available(bucket, now)
    if tokens < 0 and at > now:  # a debt: paying it off moves the bucket's time back to now
        early = min(-tokens / bucket.refill_per_second, instants.seconds_between(now, at))
        at = instants.plus(at, -early)
        tokens += early * bucket.refill_per_second
    level -= tokens
    if level >= 0:
        return attrs.evolve(bucket, tokens=min(bucket.capacity, level), updated_at=at)
    debt = math.ceil(-level / bucket.refill_per_second * _TICKS_PER_SECOND) / _TICKS_PER_SECOND
    return attrs.evolve(bucket, tokens=0.0, updated_at=instants.plus(at, debt))

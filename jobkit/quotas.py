"""Per-user submission quotas as an immutable value: whether a user may submit now is pure.

Two limits, each off when None. `per_minute` is a token bucket per user (`ratelimit`): a burst
of `per_minute` submissions, refilled at `per_minute` a minute. `max_active` caps the jobs a
user has pending or processing; the caller counts them (in the store, so that every API
process sees the same count) and passes the count in. A refusal says which limit and when
to come back; it takes nothing from the bucket.

Only users who submitted lately are remembered: a bucket that has refilled is the same as
a new one, so it is dropped once more than `MAX_TRACKED` users are held.
"""

from __future__ import annotations

from datetime import datetime

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import errors, ratelimit

MAX_TRACKED = 10_000
# A job must finish before a user at `max_active` may submit again; nothing tells when that
# will be, so the client is asked to come back after this long.
ACTIVE_RETRY_SECONDS = 5.0
_EMPTY: PMap[str, ratelimit.TokenBucket] = pmap()


@attrs.frozen(kw_only=True)
class Quotas:
    per_minute: float | None = None
    max_active: int | None = None
    buckets: PMap[str, ratelimit.TokenBucket] = _EMPTY

    def __attrs_post_init__(self) -> None:
        if self.per_minute is not None and not self.per_minute > 0:
            raise errors.ConfigurationError(f"per_minute must be > 0, got {self.per_minute!r}")
        if self.max_active is not None and self.max_active < 1:
            raise errors.ConfigurationError(f"max_active must be >= 1, got {self.max_active!r}")


@attrs.frozen(kw_only=True)
class Admitted:
    """Go ahead: one submission was taken from the user's allowance."""


@attrs.frozen(kw_only=True)
class Refused:
    """Not now: `limit` is `"per_minute"` or `"max_active"`; try again after `retry_after`."""

    limit: str
    allowed: float
    retry_after: float


Decision = Admitted | Refused


def admit(quotas: Quotas, user: str, now: datetime, active: int | None) -> tuple[Decision, Quotas]:
    """May `user` submit at `now`, with `active` jobs pending or processing (None: not
    counted, which only a quota without `max_active` may do)?"""
    if quotas.max_active is not None:
        if active is None:
            raise ValueError("a quota with max_active needs the user's active count")
        if active >= quotas.max_active:
            refused = Refused(
                limit="max_active", allowed=quotas.max_active, retry_after=ACTIVE_RETRY_SECONDS
            )
            return refused, quotas
    if quotas.per_minute is None:
        return Admitted(), quotas
    bucket = quotas.buckets.get(user) or ratelimit.TokenBucket.per_window(
        max_requests=quotas.per_minute, window_seconds=60
    )
    decision, bucket = ratelimit.acquire(bucket, now)
    match decision:
        case ratelimit.Wait(seconds=seconds):
            return Refused(
                limit="per_minute", allowed=quotas.per_minute, retry_after=seconds
            ), quotas
        case ratelimit.Allowed():
            buckets = quotas.buckets
            if user not in buckets and len(buckets) >= MAX_TRACKED:
                buckets = _refilled_dropped(buckets, now)
            return Admitted(), attrs.evolve(quotas, buckets=buckets.set(user, bucket))
    raise AssertionError("unreachable")


def _refilled_dropped(
    buckets: PMap[str, ratelimit.TokenBucket], now: datetime
) -> PMap[str, ratelimit.TokenBucket]:
    """The buckets that have not refilled by `now`: a full one is the same as none."""
    kept = buckets.evolver()
    for user, bucket in buckets.items():
        if ratelimit.available(bucket, now) >= bucket.capacity:
            del kept[user]
    return kept.persistent()

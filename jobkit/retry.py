"""Retry policy: exponential backoff with full jitter, per-error-code overrides, computed purely.

The delay before attempt n+1 is `sample * min(cap, base * factor**(n-1))`
with `sample` uniform in [0, 1) drawn by the caller ("full jitter"): retries
of many jobs that failed together spread out instead of stampeding. When the
failing service said how long to wait (a 429's retry delay), the retry is never
sooner than that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import errors, instants


def _to_pmap(value: Mapping[str, Backoff]) -> PMap[str, Backoff]:
    return pmap(value)


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise errors.ConfigurationError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff in seconds: base * factor**(n-1), capped."""

    base: float = attrs.field(default=2.0, validator=_positive)
    factor: float = attrs.field(default=2.0)
    cap: float = attrs.field(default=300.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not (self.factor >= 1 and math.isfinite(self.factor)):
            raise errors.ConfigurationError(f"factor must be >= 1, got {self.factor!r}")


MAX_ATTEMPTS = 100  # the most any job may ask for


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how soon a job type's failed attempts are tried again.

    `overrides` maps an error code to the backoff used for it (a rate-limit
    error may want a longer one); `classifier` decides which errors are
    permanent (failed at once, whatever attempts remain).
    """

    max_attempts: int = 5
    backoff: Backoff = attrs.field(factory=Backoff)
    overrides: PMap[str, Backoff] = attrs.field(factory=pmap, converter=_to_pmap)
    classifier: errors.Classifier = errors.DEFAULT_CLASSIFIER

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise errors.ConfigurationError(
                f"max_attempts must be within 1..{MAX_ATTEMPTS}, got {self.max_attempts}"
            )


@attrs.frozen(kw_only=True)
class RetryAt:
    """Try again at `at`, `delay` seconds after the failure."""

    at: datetime
    delay: float


@attrs.frozen(kw_only=True)
class Defer:
    """Not an attempt (the service was never reached): wait until `at`, when the service
    may be tried again, without counting it against the job's attempts."""

    at: datetime
    delay: float


@attrs.frozen(kw_only=True)
class GiveUp:
    """No retry: `reason` is `permanent` or `exhausted`."""

    reason: str


Decision = RetryAt | Defer | GiveUp

# The shortest deferral: a service that says "now" is not asked again at once.
MIN_DEFER_SECONDS = 1.0


def ceiling(backoff: Backoff, attempt: int) -> float:
    """The largest delay after failed attempt number `attempt` (1-based)."""
    exponent = max(attempt - 1, 0)
    # Compare in logarithms: factor**exponent overflows a float long after the cap is reached.
    if backoff.base >= backoff.cap or (
        backoff.factor > 1
        and exponent * math.log(backoff.factor) >= math.log(backoff.cap / backoff.base)
    ):
        return float(backoff.cap)
    return float(backoff.base * backoff.factor**exponent)


def delay(backoff: Backoff, attempt: int, sample: float) -> float:
    """Full-jitter delay after failed attempt `attempt`, for `sample` in [0, 1)."""
    if not 0.0 <= sample < 1.0:
        raise ValueError(f"sample must be in [0, 1), got {sample!r}")
    return sample * ceiling(backoff, attempt)


def decide(
    policy: RetryPolicy,
    error: errors.Error,
    *,
    attempts: int,
    max_attempts: int,
    now: datetime,
    sample: float,
) -> Decision:
    """After `attempts` finished attempts (this failure included), retry or give up; a
    deferred error (`errors.deferred`) waits for the time the service asked, uncounted."""
    if errors.deferred(error, policy.classifier):
        seconds = max(asked_delay(error), MIN_DEFER_SECONDS)
        return Defer(at=instants.plus(now, seconds), delay=seconds)
    if not errors.classify(error, policy.classifier):
        return GiveUp(reason="permanent")
    if attempts >= max_attempts:
        return GiveUp(reason="exhausted")
    backoff = policy.overrides.get(error.code, policy.backoff)
    seconds = max(delay(backoff, attempts, sample), asked_delay(error))
    return RetryAt(at=instants.plus(now, seconds), delay=seconds)


def asked_delay(error: errors.Error) -> float:
    """The wait the failing service asked for (`errors.RETRY_AFTER` in the context), or 0.

    Honoured as a floor under the jittered backoff; a value that is not a finite,
    non-negative number of seconds is ignored rather than trusted.
    """
    asked = error.context.get(errors.RETRY_AFTER)
    if isinstance(asked, bool) or not isinstance(asked, int | float):
        return 0.0
    if not (math.isfinite(asked) and asked >= 0):
        return 0.0
    return float(asked)

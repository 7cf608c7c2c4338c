"""Events: the facts the lifecycle machine accepts, as frozen values.

A worker event names the lease it acts under (`worker`, `claim`); the machine
refuses it when that lease is no longer the job's, which is what stops a stale
worker from finishing an attempt that was already taken over.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import _frozen, errors, retry


@attrs.frozen(kw_only=True)
class Submitted:
    """A validated draft from `jobs.new_job` enters the queue."""

    kind: ClassVar[str] = "submitted"


@attrs.frozen(kw_only=True)
class Claimed:
    """A worker takes a due pending job for `lease_seconds`."""

    kind: ClassVar[str] = "claimed"
    worker: str
    lease_seconds: float


@attrs.frozen(kw_only=True)
class Heartbeat:
    """The lease holder is alive: the lease runs `lease_seconds` from now."""

    kind: ClassVar[str] = "heartbeat"
    worker: str
    claim: int
    lease_seconds: float


@attrs.frozen(kw_only=True)
class ProgressReported:
    """The running attempt has done `current` of `total` steps."""

    kind: ClassVar[str] = "progress"
    worker: str
    claim: int
    current: int
    total: int
    message: str = ""


@attrs.frozen(kw_only=True)
class AttemptSucceeded:
    """The attempt finished; `result` is the pipeline's summary, `result_key` the blob of
    the result document it wrote, if any. `progress` (current, total, message), when
    given, is a last progress report that was not written on its own: the same write
    records it."""

    kind: ClassVar[str] = "succeeded"
    worker: str
    claim: int
    result: PMap[str, Any] = attrs.field(factory=pmap, converter=_frozen.mapping)
    result_key: str | None = None
    progress: tuple[int, int, str] | None = None


@attrs.frozen(kw_only=True)
class AttemptFailed:
    """The attempt failed with `error`; `policy` and a uniform `sample` in [0, 1) pick a retry."""

    kind: ClassVar[str] = "failed"
    worker: str
    claim: int
    error: errors.Error
    policy: retry.RetryPolicy
    sample: float


@attrs.frozen(kw_only=True)
class LeaseExpired:
    """Observed by anyone: the lease ran out (a stall). Counts as a failed attempt."""

    kind: ClassVar[str] = "lease_expired"
    policy: retry.RetryPolicy
    sample: float


@attrs.frozen(kw_only=True)
class LeaseReleased:
    """The lease holder gives the job back unfinished (graceful shutdown): not an attempt."""

    kind: ClassVar[str] = "released"
    worker: str
    claim: int


@attrs.frozen(kw_only=True)
class CancelRequested:
    """The owner cancels a job that has not started."""

    kind: ClassVar[str] = "cancel"


@attrs.frozen(kw_only=True)
class RetryRequested:
    """The owner retries a failed job: attempts start again from zero, due now, and the job
    takes `turn` (`schedule.next_turn` where its band stands now, as a new submission would:
    `commands.apply` reads it), or keeps its own when None."""

    kind: ClassVar[str] = "retry"
    turn: int | None = None


@attrs.frozen(kw_only=True)
class Purged:
    """The owner deletes a finished job's record and its files."""

    kind: ClassVar[str] = "purge"


Event = (
    Submitted
    | Claimed
    | Heartbeat
    | ProgressReported
    | AttemptSucceeded
    | AttemptFailed
    | LeaseExpired
    | LeaseReleased
    | CancelRequested
    | RetryRequested
    | Purged
)

ALL: tuple[type[Event], ...] = (
    Submitted,
    Claimed,
    Heartbeat,
    ProgressReported,
    AttemptSucceeded,
    AttemptFailed,
    LeaseExpired,
    LeaseReleased,
    CancelRequested,
    RetryRequested,
    Purged,
)

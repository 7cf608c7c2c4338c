"""Per-user quotas at the submission endpoints: the shell's cell around `jobkit.quotas`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from jobkit import ports, quotas
from jobkit_http.problems import Problem


class Admission:
    """Holds the quota state of this process; `check` answers `429` past a limit.

    The per-minute buckets are this process's own; the active count comes from the store,
    so `max_active` holds across every API process on it (give or take the submissions
    that are counted at the same moment: a soft limit, never exceeded by more than those).
    """

    def __init__(
        self, quota: quotas.Quotas, store: ports.JobStore, clock: Callable[[], datetime]
    ) -> None:
        self.quota = quota
        self._store = store
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.quota.per_minute is not None or self.quota.max_active is not None

    async def check(self, user: str) -> None:
        """Take one submission from `user`'s allowance, or raise a `429` problem."""
        if not self.enabled:
            return
        limit = self.quota.max_active
        active = None if limit is None else await self._store.count_active(user, limit)
        decision, self.quota = quotas.admit(self.quota, user, self._clock(), active)
        match decision:
            case quotas.Admitted():
                return
            case quotas.Refused(limit="max_active", allowed=allowed, retry_after=seconds):
                raise _too_many(
                    f"you have {int(allowed)} jobs pending or running, the most allowed at "
                    "once; submit more when some have finished",
                    seconds,
                    "max_active",
                )
            case quotas.Refused(allowed=allowed, retry_after=seconds):
                raise _too_many(
                    f"you may submit {allowed:g} jobs a minute; try again in "
                    f"{math.ceil(seconds)} s",
                    seconds,
                    "per_minute",
                )


def _too_many(detail: str, seconds: float, limit: str) -> Problem:
    wait = max(1, math.ceil(seconds))
    return Problem(
        429,
        "too-many-requests",
        detail,
        headers={"Retry-After": str(wait)},
        limit=limit,
        retryAfter=wait,
    )

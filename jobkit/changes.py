"""Building a job's next version: `changes.Change(job).status(...).attempts(...).done()`.

A lifecycle step changes several fields at once; the machine collects them in one
`Change` and pays for one new version (one tuple copy that shares every unchanged value).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobkit import _frozen, errors, jobs
from jobkit._values import (
    ATTEMPTS,
    ERROR,
    HISTORY,
    LEASE_EXPIRES_AT,
    LEASE_OWNER,
    PROGRESS,
    RESULT,
    RUN_AT,
    STATUS,
    TURN,
    UPDATED_AT,
    VERSION,
    make_entry,
    make_job,
)
from jobkit.status import Status


class Change:
    """Changes to one job, applied in one copy by `done()`."""

    __slots__ = ("_job", "_values")

    def __init__(self, job: jobs.Job) -> None:
        self._job = job
        self._values: dict[int, Any] = {}  # by the field's place in `jobs.FIELDS`

    def status(self, value: Status) -> Change:
        self._values[STATUS] = jobs.STATUS_TEXTS[value]
        return self

    def lease(self, owner: str, expires_at: datetime) -> Change:
        self._values[LEASE_OWNER] = owner
        self._values[LEASE_EXPIRES_AT] = expires_at
        return self

    def no_lease(self) -> Change:
        self._values[LEASE_OWNER] = None
        self._values[LEASE_EXPIRES_AT] = None
        return self

    def run_at(self, at: datetime) -> Change:
        self._values[RUN_AT] = at
        return self

    def turn(self, value: int) -> Change:
        self._values[TURN] = value
        return self

    def attempts(self, value: int) -> Change:
        self._values[ATTEMPTS] = value
        return self

    def error(self, value: errors.Error | None) -> Change:
        self._values[ERROR] = value
        return self

    def result(self, value: Mapping[str, Any] | None) -> Change:
        self._values[RESULT] = None if value is None else _frozen.mapping(value)
        return self

    def progress(self, current: int, total: int, message: str) -> Change:
        self._values[PROGRESS] = _frozen.freeze(
            {"current": current, "total": total, "message": message}
        )
        return self

    def no_progress(self) -> Change:
        self._values[PROGRESS] = None
        return self

    def attempt_started(self, worker: str, at: datetime) -> Change:
        """Open a history entry for claim number `jobs.claim(job) + 1`."""
        entries = self._values.get(HISTORY, self._job._values[HISTORY])
        entry = make_entry((len(entries) + 1, worker, at, None, None, None, None, None, None))
        self._values[HISTORY] = entries.append(entry)
        return self

    def attempt_ended(
        self,
        *,
        at: datetime,
        outcome: str,
        error: errors.Error | None = None,
        next_run_at: datetime | None = None,
        delay_seconds: float | None = None,
        result_key: str | None = None,
    ) -> Change:
        """Close the latest history entry with how and when the attempt ended."""
        entries = self._values.get(HISTORY, self._job._values[HISTORY])
        (attempt, worker, started, _, _, old_error, old_next, old_delay, old_key) = entries[
            -1
        ]._values
        if next_run_at is None:
            next_run_at, delay_seconds = old_next, old_delay
        closed = make_entry(
            (
                attempt,
                worker,
                started,
                at,
                outcome,
                old_error if error is None else error,
                next_run_at,
                delay_seconds,
                old_key if result_key is None else result_key,
            )
        )
        self._values[HISTORY] = entries.set(len(entries) - 1, closed)
        return self

    def touched(self, now: datetime) -> Change:
        """One write: the version fence grows by one and `updatedAt` moves to `now`."""
        self._values[VERSION] = self._job._values[VERSION] + 1
        self._values[UPDATED_AT] = now
        return self

    def done(self) -> jobs.Job:
        """The new version; the job itself when no field changes."""
        old = self._job._values
        changed = False
        values = list(old)
        for index, value in self._values.items():
            if value is not old[index]:
                values[index] = value
                changed = True
        return make_job(tuple(values)) if changed else self._job

"""A virtual clock: time moves only when a test or the simulator says so."""

from __future__ import annotations

from datetime import datetime

from jobkit import instants


class VirtualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else instants.from_epoch(1_800_000_000)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a virtual clock never goes back")
        self._now = instants.plus(self._now, seconds)
        return self._now

    def set(self, at: datetime) -> datetime:
        if at < self._now:
            raise ValueError("a virtual clock never goes back")
        self._now = at
        return self._now

"""What a worker is told and what it tracks: its configuration, one running attempt, the
clock and id it gets by default, and the hook its outcomes are reported through."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from jobkit import effects, errors, events, jobs, machine, ports
from jobkit.worker import journal
from jobkit.worker.interpreter import Performers

log = logging.getLogger("jobkit.worker")

Clock = Callable[[], datetime]
Hook = Callable[[effects.MachineEffect, jobs.Job], None]
# The effects of a write that landed, the job as written, and the attempt it ended, if any.
Emit = Callable[[machine.Effects, jobs.Job, "Attempt | None"], None]

# The events that end an attempt: once one is written, nothing more is.
FINAL = (events.AttemptSucceeded, events.AttemptFailed, events.LeaseReleased)


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How one worker process runs jobs. Defaults fit Cloud Run (10 s to shut down)."""

    concurrency: int = 8
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    idle_seconds: float = 0.25  # longest idle sleep without a doorbell: others may submit work
    poll_seconds: float = 5.0  # longest idle sleep with one: a safety net for lost rings
    reap_seconds: float = 5.0
    grace_seconds: float = 8.0
    # At most one progress write per job this often, the claim counting as one: a report
    # made sooner waits, and is written when the time comes or rides on the completion.
    progress_seconds: float = 0.5
    queues: frozenset[str] | None = None
    # Read the next claim while one is on its way (its jobs are read again and passed over):
    # faster drains. A store that bills reads (Firestore) turns it off: the next read waits
    # for the claim on its way to land.
    claim_ahead: bool = True

    def __attrs_post_init__(self) -> None:
        if self.concurrency < 1:
            raise errors.ConfigurationError("concurrency must be >= 1")
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise errors.ConfigurationError("heartbeat_seconds must be within (0, lease_seconds)")
        if not (self.idle_seconds > 0 and self.poll_seconds > 0):
            raise errors.ConfigurationError("idle_seconds and poll_seconds must be > 0")


@attrs.define
class Attempt:
    """One running attempt, as the worker tracks it; `job` is the latest version it wrote.

    Its lock orders the attempt's own writes (heartbeats, progress, its end). Times are
    the event loop's (`loop.time()`), so a virtual-time loop drives them too.
    """

    job: jobs.Job
    claim: int
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    report: ports.Progress | None = None  # progress of this attempt, for performers
    lost: bool = False
    closed: bool = False  # its final event (succeeded, failed, released) is written
    last_progress: float = float("-inf")  # loop time of its last progress write (or claim)
    pending: events.ProgressReported | None = None  # the latest report not written yet
    flush: asyncio.TimerHandle | None = None  # writes `pending` when the throttle allows
    renewed: float = 0.0  # loop time its lease was last taken or renewed
    effect: str | None = None  # the effect being performed, by its type's name
    step: str | None = None  # its last progress message, for a failure's point
    failure: journal.FailurePoint | None = None  # where it failed, once it has


PerformersFor = Callable[[Attempt], Performers]


def emitter(on_effect: Hook | None, worker_id: str) -> Emit:
    """How the worker reports the lifecycle effects of each write that landed: logged
    (`journal.record`), then passed to `on_effect` (metrics, long-pollers) when given.
    The one place outcomes leave the worker."""
    hook = on_effect

    def emit(done: machine.Effects, job: jobs.Job, attempt: Attempt | None = None) -> None:
        if not done:
            return
        failure = None if attempt is None else attempt.failure
        journal.record(done, job, worker_id=worker_id, failure=failure)
        if hook is not None:
            for effect in done:
                hook(effect, job)

    return emit

"""User commands on stored jobs (submit, cancel, retry, purge): a pure step, then compare-and-set.

The API and the library runtime both call these, so every store and every
front end shares one set of rules. A command that loses a race with a worker
reads the job again and re-decides; it never overwrites newer state. The
machine's effects reach `on_effect` once the change is stored, as the worker's do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

import attrs
from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, jobs, machine, ports, schedule
from jobkit.status import FAILED
from jobkit.worker import journal

Clock = Callable[[], datetime]
Hook = Callable[[effects.MachineEffect, jobs.Job], None]
MAX_RACES = 20

# The variant digit of a version 4 UUID (`10xx` in its top bits), from a random digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_BATCH: Final = 256  # ids made from one read of the OS's random source
_ids: list[str] = []  # made, not yet handed out; emptied in a forked child (below)
os.register_at_fork(after_in_child=_ids.clear)  # a child must never hand out its parent's


def new_id() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` writes it.

    From the same source as `uuid4` (`os.urandom`), but read for `_BATCH` ids at a time:
    each read releases the GIL, and a producer that let the store's writer thread take it
    once per submission lost a fifth of its time waiting to get it back.
    """
    try:
        return _ids.pop()
    except IndexError:  # empty (or emptied by another thread meanwhile): make more
        digits = os.urandom(16 * _BATCH).hex()
        made = [
            f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{_VARIANT[d[16]]}{d[17:20]}-{d[20:32]}"
            for d in (digits[start : start + 32] for start in range(0, len(digits), 32))
        ]
        _ids.extend(made[1:])
        return made[0]


@attrs.frozen(kw_only=True)
class NotFound:
    """No such job for this user (another user's job is reported the same way)."""

    job_id: str


Refused = errors.JobError | NotFound


def _told(on_effect: Hook | None, done: machine.Effects, job: jobs.Job) -> None:
    """A user's change is stored: log it (`journal.record`), then tell `on_effect`."""
    journal.record(done, job)
    if on_effect is not None:
        for effect in done:
            on_effect(effect, job)


async def submit(
    store: ports.JobStore, draft: jobs.Job, now: datetime, on_effect: Hook | None = None
) -> jobs.Job:
    """Store a validated draft as a pending job, in turn (`JobStore.insert_in_turn`); its id
    must be new."""
    job = await submit_new(store, draft, now, on_effect)
    if job is None:
        raise errors.JobkitError(f"job id {jobs.id(draft)} already exists")
    return job


async def submit_new(
    store: ports.JobStore, draft: jobs.Job, now: datetime, on_effect: Hook | None = None
) -> jobs.Job | None:
    """Store a validated draft as a pending job; None when a job with its id exists (an
    idempotent submission that lost the race to its twin)."""
    match machine.step(draft, events.Submitted(), now):
        case Success((submitted, done)):
            (turn,) = await store.insert_in_turn([submitted])
            if turn is None:
                return None
            job = jobs.with_turn(submitted, turn)
            _told(on_effect, done, job)
            return job
        case Failure(refusal):
            raise errors.JobkitError(f"a fresh draft was refused: {refusal.message}")
    raise AssertionError("unreachable")


async def submit_many(
    store: ports.JobStore,
    drafts: Sequence[jobs.Job],
    now: datetime,
    on_effect: Hook | None = None,
) -> list[jobs.Job]:
    """Store validated drafts as pending jobs in one round trip; their ids must be new."""
    moved: list[tuple[jobs.Job, machine.Effects]] = []
    for draft in drafts:
        match machine.step(draft, events.Submitted(), now):
            case Success((submitted, done)):
                moved.append((submitted, done))
            case Failure(refusal):
                raise errors.JobkitError(f"a fresh draft was refused: {refusal.message}")
    turns = await store.insert_in_turn([job for job, _ in moved])
    stored: list[jobs.Job] = []
    taken: list[str] = []
    for (job, done), turn in zip(moved, turns, strict=True):
        if turn is None:
            taken.append(jobs.id(job))
            continue
        held = jobs.with_turn(job, turn)
        _told(on_effect, done, held)
        stored.append(held)
    if taken:
        raise errors.JobkitError(f"job ids {taken} already exist; the others were stored")
    return stored


async def owned(store: ports.JobStore, job_id: str, user_id: str | None) -> jobs.Job | None:
    """The job if it exists and belongs to `user_id` (None: any user)."""
    job = await store.get(job_id)
    if job is None or (user_id is not None and jobs.user_id(job) != user_id):
        return None
    return job


async def apply(
    store: ports.JobStore,
    blobs: ports.BlobStore | None,
    job_id: str,
    event: events.Event,
    *,
    user_id: str | None,
    clock: Clock,
    on_effect: Hook | None = None,
) -> Result[jobs.Job, Refused]:
    """Apply a user's event to a stored job; retried on a lost race, refused by the machine.
    A retry takes the turn a new submission would (`events.RetryRequested`), read here."""
    for _ in range(MAX_RACES):
        job = await owned(store, job_id, user_id)
        if job is None:
            return Failure(NotFound(job_id=job_id))
        move = event
        retried = isinstance(event, events.RetryRequested) and event.turn is None
        if retried and jobs.status(job) == FAILED:  # else the machine refuses: no turn to read
            move = events.RetryRequested(turn=await _next_turn(store, job))
        match machine.step(job, move, clock()):
            case Failure(refusal):
                return Failure(refusal)
            case Success((new, done)):
                if isinstance(event, events.Purged):
                    purged = await _purge(store, blobs, job, done)
                    if isinstance(purged, Success):
                        _told(on_effect, done, job)
                    return purged
                if await store.compare_and_set(jobs.version(job), new):
                    _told(on_effect, done, new)
                    return Success(new)
    raise errors.JobkitError(f"job {job_id} kept changing under {event.kind}; gave up")


async def _next_turn(store: ports.JobStore, job: jobs.Job) -> int:
    line = schedule.line_of(job)
    return schedule.next_turn((await store.turns([line]))[line])


async def _purge(
    store: ports.JobStore,
    blobs: ports.BlobStore | None,
    job: jobs.Job,
    done: machine.Effects,
) -> Result[jobs.Job, Refused]:
    """Delete the record first, then the files: a crash in between leaves orphan files
    (harmless, and cleaned by the bucket's lifecycle rules), never a record without them."""
    for effect in done:
        if isinstance(effect, effects.DeleteJob) and not await store.delete(
            effect.job_id, effect.version
        ):
            return Failure(
                errors.JobError(
                    code="conflict",
                    message="the job changed while it was being deleted; try again",
                    status=jobs.status(job).value,
                    event="purge",
                )
            )
    if blobs is not None:
        for effect in done:
            if isinstance(effect, effects.DeleteBlob):
                await blobs.delete(effect.key)
    return Success(job)

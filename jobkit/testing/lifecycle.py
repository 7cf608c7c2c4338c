"""Take one job through the lifecycle machine, attempt after attempt, until it is finished.

Each attempt's pipeline runs under `harness.run` (so faults strike by claim
number); its progress reports and its end go through `machine.step`, and the
job type's own retry policy decides what follows a failure. `check_job` adds
the rules that hold between attempts to `harness.check`. Stdlib and core only.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import datetime

import attrs
from returns.result import Failure, Success

from jobkit import effects, events, jobs, machine, registry
from jobkit.status import PENDING, PROCESSING, TERMINAL
from jobkit.testing import harness


@attrs.frozen(kw_only=True)
class Attempt:
    """One claim of a job: the job its pipeline saw, what it did, and the job afterwards."""

    job: jobs.Job
    run: harness.Run
    after: jobs.Job


@attrs.frozen(kw_only=True)
class JobRun:
    job_type: registry.JobType
    attempts: tuple[Attempt, ...]
    job: jobs.Job  # finished: completed or failed


def _stepped(job: jobs.Job, event: events.Event, now: datetime) -> jobs.Job:
    match machine.step(job, event, now):
        case Success((moved, _)):
            return typing.cast(jobs.Job, moved)
        case Failure(refused):
            # Only a pipeline's own report can be refused: progress outside 0..total.
            raise harness.PipelineBroke(f"the machine refused {event!r}: {refused.message}")
    raise AssertionError("unreachable")  # pragma: no cover


def run_job(
    job_type: registry.JobType,
    job: jobs.Job,
    respond: harness.Respond,
    *,
    faults: Sequence[harness.Fault] = (),
    worker: str = "harness",
    lease_seconds: float = 60.0,
    sample: float = 0.5,
) -> JobRun:
    """Take `job` (a draft, or pending) through claims and attempts until it is finished.

    Each attempt is claimed when due, its pipeline is run as `run` does, its
    progress reports and its end go through `machine.step`, and the job type's
    retry policy (with `sample` as the jitter) picks the next due time. Time moves
    only from one due time to the next; an attempt takes no time.
    """
    now = jobs.updated_at(job)
    if jobs.status_or_none(job) is None:
        job = _stepped(job, events.Submitted(), now)
    if jobs.status(job) is not PENDING:
        raise ValueError(f"run_job starts from a draft or a pending job, not {jobs.status(job)}")
    done: list[Attempt] = []
    while jobs.status(job) not in TERMINAL:
        now = max(now, jobs.run_at(job))
        job = _stepped(job, events.Claimed(worker=worker, lease_seconds=lease_seconds), now)
        assert jobs.status(job) is PROCESSING
        claim = jobs.claim(job)
        seen = job
        attempt = harness.run(job_type.pipeline(seen, claim), respond, faults=faults, claim=claim)
        # Every report is written, but the last when the attempt succeeds: it rides on the
        # completion's write, as the worker does with a report it has not written yet.
        reports = [
            step.effect
            for step in attempt.steps
            if isinstance(step.effect, effects.ReportProgress) and step.fault is None
        ]
        last = reports.pop() if reports and isinstance(attempt.outcome, Success) else None
        for effect in reports:
            report = events.ProgressReported(
                worker=worker,
                claim=claim,
                current=effect.current,
                total=effect.total,
                message=effect.message,
            )
            job = _stepped(job, report, now)
        end: events.Event
        match attempt.outcome:
            case Success(completion):
                end = events.AttemptSucceeded(
                    worker=worker,
                    claim=claim,
                    result=completion.result,
                    result_key=completion.document_key,
                    progress=None if last is None else (last.current, last.total, last.message),
                )
            case Failure(err):
                end = events.AttemptFailed(
                    worker=worker, claim=claim, error=err, policy=job_type.retry, sample=sample
                )
        job = _stepped(job, end, now)
        done.append(Attempt(job=seen, run=attempt, after=job))
    return JobRun(job_type=job_type, attempts=tuple(done), job=job)


def check_job(done: JobRun) -> list[str]:
    """`check` for every attempt, and the rules between attempts: the same attempt asks
    for the same effects when replayed with the same answers (a re-run overwrites what
    it wrote), and no two attempts write the same blob."""
    problems: list[str] = []
    writers: dict[str, int] = {}
    for attempt in done.attempts:
        claim = attempt.run.claim
        problems += [f"attempt {claim}: {problem}" for problem in harness.check(attempt.run)]
        script = [(step.effect, step.answer) for step in attempt.run.steps]
        try:
            again = harness.run_script(
                done.job_type.pipeline(attempt.job, claim), script, claim=claim
            )
        except harness.ScriptMismatch as exc:
            problems.append(f"attempt {claim}: replayed with the same answers, {exc}")
        else:
            if again.outcome != attempt.run.outcome:
                problems.append(f"attempt {claim}: replayed, it ended {again.outcome}")
        for key in attempt.run.written:
            if key in writers:
                problems.append(f"attempts {writers[key]} and {claim} both wrote {key!r}")
            writers.setdefault(key, claim)
    return problems

"""The invariants a simulation report must satisfy, checked by `check(report)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobkit import jobs, pipeline
from jobkit.status import COMPLETED, PENDING, PROCESSING, Status, targets
from jobkit.testing import faults

if TYPE_CHECKING:  # the simulator re-exports `check`, so it is imported for types only
    from jobkit.testing.simulator import Report
    from jobkit.testing.wire import Write


def check(report: Report) -> list[str]:
    """Every invariant the run violated, one line each; empty when all hold.

    - Every job is terminal. `pending` is legitimate only when the run was cut at the
      horizon (not due yet, backlogged, or released by the shutdown); `processing` never.
    - Per job the write log is a chain: each write expected the version the one before
      made and made exactly one more, and the store holds the last. So a stale copy
      never overwrote a newer one.
    - Every logged move is in `status.TRANSITIONS`; attempts never exceed maxAttempts;
      the logged claims are the history's entries; only a worker that shut down (or died)
      released.
    - No job completed twice, or after it was cancelled.
    - A completed job has one succeeded attempt; it names the resultKey its claim wrote,
      the job's result key is that one, and that claim wrote the blob.
    - Every lease a dead worker held (a crash, or an exit on a store error) was reaped:
      its attempt is `stalled`. And every `stalled` attempt is one of those, or one that a
      store write with an unknown outcome touched: a live worker never loses any other
      lease, however slow its calls.
    - The simulator saw no anomaly (such as a shutdown that never finished).
    """
    problems = [f"anomaly: {text}" for text in report.anomalies]
    log: dict[str, list[Write]] = {}
    for write in report.writes:
        log.setdefault(write.job_id, []).append(write)
    problems += [f"{job_id}: written but not in the store" for job_id in log.keys() - report.jobs]
    for job_id, job in sorted(report.jobs.items()):
        problems += [f"{job_id}: {p}" for p in _check_job(report, job, log.get(job_id, []))]
    stalled = {
        (job_id, jobs.entry_attempt(entry))
        for job_id, job in report.jobs.items()
        for entry in jobs.history(job)
        if jobs.entry_outcome(entry) == jobs.STALLED
    }
    never_reaped = sorted(report.lease_losses - stalled)
    if never_reaped:
        problems.append(f"leases of dead workers never reaped: {never_reaped[:5]}")
    unexplained = sorted(stalled - report.lease_losses - report.excused)
    if unexplained:
        problems.append(
            f"{len(unexplained)} stalls that no crash or store fault caused: {unexplained[:5]}"
        )
    return problems


def _check_job(report: Report, job: jobs.Job, log: list[Write]) -> list[str]:
    problems: list[str] = []
    state = jobs.status(job)
    if state == PROCESSING:
        problems.append(f"still processing when the run {report.stopped}")
    elif state == PENDING and report.stopped != "horizon":
        problems.append("pending although the run went on until nothing was active")
    version, cancelled = 0, False
    for write in log:
        if (write.expected, write.version) != (version, version + 1):
            problems.append(
                f"{write.kind} by {write.actor} wrote v{write.expected}->v{write.version} over"
                f" v{version}: a stale copy overwrote a newer one"
            )
        version = write.version
        source = None if write.source is None else Status(write.source)
        if Status(write.target) not in targets(source, write.kind):
            problems.append(
                f"{write.kind} moved {write.source} to {write.target}: not in the table"
            )
        if write.attempts > jobs.max_attempts(job):
            problems.append(
                f"{write.attempts} attempts exceed maxAttempts {jobs.max_attempts(job)}"
            )
        if cancelled and write.target == COMPLETED:
            problems.append(f"completed by {write.actor} after it was cancelled")
        cancelled = cancelled or write.target == "cancelled"
    if jobs.version(job) != version:
        problems.append(f"stored v{jobs.version(job)} but the last logged write made v{version}")
    if sum(write.kind == "succeeded" for write in log) > 1:
        problems.append("completed more than once")
    if sum(write.kind == "claimed" for write in log) != jobs.claim(job):
        problems.append("the claims in the write log do not match the history")
    released = {
        jobs.entry_worker(entry)
        for entry in jobs.history(job)
        if jobs.entry_outcome(entry) == jobs.RELEASED
    }
    if released - report.shut_down:
        problems.append(f"released by {sorted(released - report.shut_down)}, never shut down")
    won = [entry for entry in jobs.history(job) if jobs.entry_outcome(entry) == jobs.SUCCEEDED]
    if state != COMPLETED:
        return problems + (["has a succeeded attempt but is not completed"] if won else [])
    if len(won) != 1:
        return [*problems, f"completed with {len(won)} succeeded attempts"]
    claim, entry_key = jobs.entry_attempt(won[0]), jobs.entry_result_key(won[0])
    return problems + _check_result(report, job, claim, entry_key)


def _check_result(report: Report, job: jobs.Job, claim: int, entry_key: str | None) -> list[str]:
    """The result document was written by the attempt that succeeded, and nowhere else."""
    key = pipeline.result_key(job, claim)
    result = jobs.result(job)
    problems = []
    if result is None or entry_key != key or jobs.result_key(job) != key:
        problems.append(f"result key {entry_key!r} is not the succeeded claim {claim}'s {key!r}")
    data = report.blobs.get(key)
    if data is None or faults.written_by(data) != (jobs.id(job), claim):
        problems.append(f"blob {key!r} was not written by claim {claim}")
    return problems

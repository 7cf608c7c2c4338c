"""The pure core's speed on one core: `step()` calls per second; and the simulator's, running
the real worker on the virtual-time loop: lifecycles and small schedules per second.

Run: `python benchmarks/core.py` (5 fresh processes per figure, medians).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from returns.result import Success

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness
from jobkit import errors, events, machine, pipeline, registry, retry, submission

JOBS = 10_000


def _noop(job: object, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


def step_rate() -> dict[str, float]:
    """One lifecycle of 6 steps per job: submit, claim, heartbeat, progress, fail+retry, succeed."""
    types = registry.of([registry.JobType(name="noop", pipeline=_noop)])
    policy = retry.RetryPolicy()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    later = now + timedelta(hours=1)
    drafts = [
        submission.new_job(
            {"type": "noop"}, types=types, job_id=f"j{i}", user_id="u", now=now
        ).unwrap()
        for i in range(JOBS)
    ]
    boom = errors.transient("unavailable", "try again")
    steps = 0
    started = time.perf_counter()
    for draft in drafts:
        job, _ = machine.step(draft, events.Submitted(), now).unwrap()
        job, _ = machine.step(job, events.Claimed(worker="w", lease_seconds=30), now).unwrap()
        job, _ = machine.step(
            job, events.Heartbeat(worker="w", claim=1, lease_seconds=30), now
        ).unwrap()
        job, _ = machine.step(
            job, events.ProgressReported(worker="w", claim=1, current=1, total=2), now
        ).unwrap()
        job, _ = machine.step(
            job,
            events.AttemptFailed(worker="w", claim=1, error=boom, policy=policy, sample=0.5),
            now,
        ).unwrap()
        job, _ = machine.step(job, events.Claimed(worker="w", lease_seconds=30), later).unwrap()
        job, _ = machine.step(job, events.AttemptSucceeded(worker="w", claim=2), later).unwrap()
        steps += 7
    elapsed = time.perf_counter() - started
    return {"step() calls/s": steps / elapsed, "jobs": JOBS}


def simulation_rate() -> dict[str, float]:
    """10,000 jobs on 8 real workers (4 slots each) on the virtual-time loop, 5% faults at
    performer calls, 50 ms store latency; then the invariant checker."""
    import logging

    from jobkit.testing import simulator

    logging.getLogger("jobkit").setLevel(logging.CRITICAL)  # injected faults log
    config = simulator.SimConfig(seed=1, jobs=JOBS, workers=8, concurrency=4, fault_rate=0.05)
    started = time.perf_counter()
    report = simulator.simulate(config)
    elapsed = time.perf_counter() - started
    violations = simulator.check(report)
    if violations:
        raise SystemExit(f"the simulation broke an invariant: {violations}")
    return {"simulated lifecycles/s": JOBS / elapsed, "wall seconds": elapsed}


def schedule_rate() -> dict[str, float]:
    """The CI test's small seeded schedules (`simulator.sample`), 500 of them, checked."""
    import logging

    from jobkit.testing import simulator

    logging.getLogger("jobkit").setLevel(logging.CRITICAL)
    count = 500
    started = time.perf_counter()
    for seed in range(count):
        report = simulator.simulate(simulator.sample(seed))
        if simulator.check(report):
            raise SystemExit(f"schedule {seed} broke an invariant")
    elapsed = time.perf_counter() - started
    return {"schedules/s": count / elapsed}


if __name__ == "__main__":
    sys.exit(
        _harness.main(
            {"step": step_rate, "simulation": simulation_rate, "schedules": schedule_rate},
            sys.argv[1:],
        )
    )

from __future__ import annotations

import os
import subprocess
import sys

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import errors, jobs
from jobkit.status import COMPLETED, PENDING, PROCESSING
from jobkit.testing import faults, simulator
from jobkit.testing.memory import MemoryJobStore
from jobkit.testing.simulator import SimConfig, check, simulate

WEEK = 7 * 24 * 3600.0


def replay(report: simulator.Report) -> str:
    """How to rerun a failing case: the config's repr is the exact call."""
    return f"seed {report.seed}; replay with simulate({report.config!r})"


def assert_holds(report: simulator.Report) -> None:
    problems = check(report)
    assert problems == [], "invariants violated, " + replay(report) + "\n" + "\n".join(problems)


@st.composite
def configs(draw: st.DrawFn) -> SimConfig:
    lease = draw(st.floats(2.0, 60.0))
    weights = st.sampled_from([0.0, 1.0, 3.0])
    return SimConfig(
        seed=draw(st.integers(0, 2**32 - 1)),
        jobs=draw(st.integers(1, 30)),
        workers=draw(st.integers(1, 4)),
        concurrency=draw(st.integers(1, 4)),
        fault_rate=draw(st.floats(0.0, 0.3)),
        fault_weights=draw(st.tuples(weights, weights, weights, weights).filter(any)),
        store_fault_rate=draw(st.sampled_from([0.0, 0.05, 0.2])),
        lease_seconds=lease,
        heartbeat_every=lease * draw(st.floats(0.1, 0.6)),
        timeout_seconds=lease * draw(st.sampled_from([1.0, 2.0, 100.0])),
        max_attempts=draw(st.integers(1, 5)),
        cancel_rate=draw(st.floats(0.0, 0.5)),
        retry_rate=draw(st.floats(0.0, 1.0)),
        horizon_seconds=draw(st.sampled_from([30.0, 300.0, WEEK])),
        submit_seconds=draw(st.floats(0.0, 120.0)),
        effect_seconds=draw(st.floats(0.1, 10.0)),
        reap_every=draw(st.floats(0.5, 30.0)),
        poll_seconds=draw(st.floats(0.5, 10.0)),
        grace_seconds=draw(st.floats(0.0, 10.0)),
        latency_seconds=lease * draw(st.floats(0.0, 0.02)),
    )


@given(configs())
def test_every_invariant_holds_whatever_the_config(config: SimConfig) -> None:
    assert_holds(simulate(config))


# -- the simulator itself ------------------------------------------------------------

FAULTY = SimConfig(
    seed=7,
    jobs=300,
    workers=5,
    fault_rate=0.3,
    store_fault_rate=0.05,
    lease_seconds=10.0,
    heartbeat_every=3.0,
    timeout_seconds=20.0,
)


def test_the_same_seed_gives_the_same_report() -> None:
    config = attrs.evolve(FAULTY, jobs=80)
    assert simulate(config) == simulate(config)


_DIGEST = """
import hashlib
from jobkit.testing.simulator import SimConfig, simulate
report = simulate(SimConfig(seed=5, jobs=60, workers=4, fault_rate=0.3, store_fault_rate=0.1))
text = repr(report.writes) + repr(sorted(report.counters.items())) + repr(report.ended_at)
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_a_seed_replays_in_another_process_whatever_the_hash_seed() -> None:
    def digest(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    assert digest("0") == digest("1")


def test_another_seed_gives_another_run() -> None:
    config = attrs.evolve(FAULTY, jobs=80)
    assert simulate(config).writes != simulate(attrs.evolve(config, seed=8)).writes


def test_a_high_fault_run_injects_every_kind_of_fault() -> None:
    report = simulate(FAULTY)
    assert_holds(report)
    seen = report.counters
    for counter in (
        "crashes_holding_lease",
        "slow",
        "transient",
        "permanent",
        "store_write_faults",
        "store_write_faults_landed",
        "lifecycle_stalled",
        "lifecycle_retried",
        "error_timeout",
        "cancels",
        "manual_retries",
        "workers_started",
    ):
        assert seen.get(counter, 0) > 0, f"no {counter}: {dict(seen)}; " + replay(report)
    assert seen["workers_started"] > FAULTY.workers  # dead workers were replaced
    assert report.stopped == "quiescent"


def test_without_faults_every_job_completes_at_the_first_attempt() -> None:
    config = SimConfig(seed=3, jobs=200, workers=6, fault_rate=0.0, cancel_rate=0.0)
    report = simulate(config)
    assert_holds(report)
    assert report.stopped == "quiescent"
    assert len(report.jobs) == 200
    assert {jobs.status(job) for job in report.jobs.values()} == {COMPLETED}
    assert {jobs.attempts(job) for job in report.jobs.values()} == {1}
    assert report.lease_losses == frozenset()
    assert report.excused == frozenset()


def test_slow_calls_keep_their_leases_by_heartbeats() -> None:
    """Every call takes two to three leases: without heartbeats every attempt would stall."""
    config = SimConfig(
        seed=4, jobs=20, workers=3, fault_rate=1.0, fault_weights=(0.0, 0.0, 0.0, 1.0)
    )
    report = simulate(config)
    assert_holds(report)
    assert {jobs.status(job) for job in report.jobs.values()} == {COMPLETED}
    assert report.counters.get("lifecycle_stalled", 0) == 0
    assert report.counters["slow"] >= 60


def test_the_horizon_shuts_the_workers_down_and_leaves_nothing_processing() -> None:
    report = simulate(attrs.evolve(FAULTY, jobs=100, horizon_seconds=60.0, grace_seconds=1.0))
    assert_holds(report)
    assert report.stopped == "horizon"
    states = [jobs.status(job) for job in report.jobs.values()]
    assert PENDING in states
    assert PROCESSING not in states
    assert report.counters["lifecycle_released"] > 0


def test_the_indexed_store_answers_like_the_reference_store() -> None:
    for seed in range(3):
        config = attrs.evolve(FAULTY, seed=seed, jobs=60, workers=4)
        assert simulate(config, store=MemoryJobStore()) == simulate(config)


def test_config_is_validated() -> None:
    with pytest.raises(errors.ConfigurationError):
        SimConfig(lease_seconds=10.0, heartbeat_every=10.0)
    with pytest.raises(errors.ConfigurationError):
        SimConfig(lease_seconds=10.0, heartbeat_every=5.0, latency_seconds=0.5)
    with pytest.raises(errors.ConfigurationError):
        SimConfig(fault_rate=1.5)
    with pytest.raises(errors.ConfigurationError):
        SimConfig(fault_weights=(0.0, 0.0, 0.0, 0.0))


# -- the checker can fail ---------------------------------------------------------------


class IgnoresVersions(MemoryJobStore):
    """A broken store: compare-and-set always overwrites, whatever the expected version."""

    def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
        current = self.get_now(jobs.id(job))
        stored = expected_version if current is None else jobs.version(current)
        return super().compare_and_set_now(stored, job)


def test_a_store_that_ignores_versions_is_caught() -> None:
    report = simulate(attrs.evolve(FAULTY, jobs=150), store=IgnoresVersions())
    problems = check(report)
    assert any("a stale copy overwrote a newer one" in p for p in problems), problems


def test_check_notices_a_tampered_report() -> None:
    report = simulate(attrs.evolve(FAULTY, jobs=40, store_fault_rate=0.0))
    assert_holds(report)
    assert report.lease_losses
    assert check(attrs.evolve(report, writes=report.writes[:-1])) != []
    assert check(attrs.evolve(report, lease_losses=frozenset())) != []
    assert check(attrs.evolve(report, shut_down=frozenset())) == []  # nothing was released
    key = next(iter(report.blobs.keys() - {k for k in report.blobs if k.startswith("inputs/")}))
    assert check(attrs.evolve(report, blobs=report.blobs.discard(key))) != []


def test_result_blobs_name_the_attempt_that_wrote_them() -> None:
    report = simulate(attrs.evolve(FAULTY, jobs=40))
    for key, data in report.blobs.items():
        if key.startswith("results/"):
            job_id, claim = faults.written_by(data)
            assert key == f"results/{job_id}/attempt-{claim}.json"


@pytest.mark.slow
def test_ten_thousand_jobs_on_eight_workers() -> None:
    report = simulate(SimConfig(seed=1, jobs=10_000, workers=8, concurrency=4, fault_rate=0.05))
    assert_holds(report)
    assert report.stopped == "quiescent"
    assert report.counters["crashes_holding_lease"] > 0
    assert report.counters["slow"] > 0


def test_workers_outlive_a_store_that_fails_their_writes() -> None:
    """Claims and reaps whose writes fail (landed or not) are logged and retried after a
    pause: the loops go on, no worker exits, and every invariant holds."""
    report = simulate(attrs.evolve(FAULTY, jobs=200, fault_rate=0.0, store_fault_rate=0.3, seed=11))
    assert_holds(report)
    assert report.stopped == "quiescent"
    assert report.counters["store_write_faults"] > 50
    assert report.counters.get("worker_exits", 0) == 0, dict(report.counters)

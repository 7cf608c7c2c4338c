"""The real worker under thousands of small seeded fault schedules (`simulator.sample`).

CI runs all of them (`-m slow` is part of the suite); the count run is printed in the
terminal summary, so it shows in the CI log. A failure names each failing seed and the
call that replays it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from jobkit.testing import simulator
from tests import conftest

SCHEDULES = int(os.environ.get("JOBKIT_SIM_SCHEDULES", "10000"))


@pytest.fixture
def quiet_worker_logs() -> Iterator[None]:
    """Thousands of injected faults log thousands of warnings: keep only the report."""
    logger = logging.getLogger("jobkit")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.mark.slow
@pytest.mark.usefixtures("quiet_worker_logs")
def test_every_invariant_holds_over_thousands_of_seeded_schedules() -> None:
    started = time.perf_counter()
    failures: list[str] = []
    totals: Counter[str] = Counter()
    for seed in range(SCHEDULES):
        config = simulator.sample(seed)
        report = simulator.simulate(config)
        totals.update(report.counters)
        totals[f"stopped_{report.stopped}"] += 1
        problems = simulator.check(report)
        if problems:
            failures.append(
                f"seed {seed}: {problems[:3]}\n  replay: simulate(simulator.sample({seed}))"
                f" == simulate({config!r})"
            )
    elapsed = time.perf_counter() - started
    kinds = ", ".join(
        f"{totals[name]:,} {name}"
        for name in (
            "submitted",
            "lifecycle_completed",
            "crashes",
            "store_write_faults",
            "slow",
            "lifecycle_stalled",
            "lifecycle_released",
            "error_timeout",
        )
    )
    conftest.SUMMARY.append(
        f"simulation: ran the real worker over {SCHEDULES:,} seeded schedules in {elapsed:.0f} s"
        f" ({totals['stopped_quiescent']:,} to quiescence, {totals['stopped_horizon']:,} cut at"
        f" the horizon; {kinds}); {len(failures)} violated an invariant"
    )
    assert SCHEDULES >= 1
    assert not failures, f"{len(failures)} of {SCHEDULES} schedules failed:\n" + "\n".join(
        failures[:20]
    )

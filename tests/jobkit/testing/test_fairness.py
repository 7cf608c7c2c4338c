"""Fair claims through real workers on virtual time (`jobkit.testing.fairness`): a job waits
behind at most `k + 2` jobs of any other user (and the claims' slack), where first come,
first served makes it wait behind another user's whole backlog."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jobkit.testing import fairness
from jobkit.testing.fairness import Burst, Plan

BACKLOG = (Burst("alice", 0.0, 300, 0.01), Burst("bob", 1.0, 1, 0.01))


def test_a_single_job_is_not_held_behind_another_users_backlog() -> None:
    plan = Plan(bursts=BACKLOG)
    trace = fairness.run(plan)
    assert fairness.unfair(trace, plan.slack) == {}
    assert fairness.overtakes(trace)["bob-1-0"] <= 2


def test_first_come_first_served_breaks_the_bound_the_check_enforces() -> None:
    """The check can fail: without turns, bob's job waits behind alice's backlog."""
    plan = Plan(bursts=BACKLOG, fair=False)
    trace = fairness.run(plan)
    passed = fairness.overtakes(trace)["bob-1-0"]
    assert passed > 150
    assert "bob-1-0" in fairness.unfair(trace, plan.slack)


bursts = st.lists(
    st.builds(
        Burst,
        user=st.sampled_from(("alice", "bob", "carol")),
        at=st.integers(0, 20).map(float),
        count=st.integers(1, 40),
        seconds=st.sampled_from((0.01, 0.2, 1.0)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(
    bursts=bursts,
    workers=st.integers(1, 3),
    concurrency=st.integers(1, 4),
    seed=st.integers(0, 1000),
)
def test_no_job_waits_behind_more_than_its_bound(
    bursts: list[Burst], workers: int, concurrency: int, seed: int
) -> None:
    plan = Plan(bursts=tuple(bursts), workers=workers, concurrency=concurrency, seed=seed)
    trace = fairness.run(plan)
    assert len([what for what, _ in trace.order if what == "started"]) == sum(
        b.count for b in bursts
    )
    assert fairness.unfair(trace, plan.slack) == {}

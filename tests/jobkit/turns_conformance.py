"""What every `ports.JobStore` does with turns (`schedule`: fair claims across users): the
turns it gives submissions (`insert_in_turn`), where it says a line stands (`turns`), and
its claims round by round. Mixed into each store's conformance class, beside
`conformance.JobStoreConformance` (whose property test checks `turns` against the
reference on random populations)."""

from __future__ import annotations

from jobkit import events, jobs, ports, schedule
from tests.jobkit.conformance import T0, at, claimed, ids, moved, new, scenario, succeeded


def line(user: str, queue: str = "default", priority: int = 50) -> schedule.Line:
    return schedule.Line(user, queue, priority)


class TurnsConformance:
    @scenario
    async def test_submissions_take_turns_in_their_users_line(self, store: ports.JobStore) -> None:
        backlog = [new(n, created=at(n)) for n in range(3)]
        assert await store.insert_in_turn(backlog) == [0, 1, 2]
        assert await store.insert_in_turn([new(10, user="user-2", created=at(5))]) == [0]
        assert await store.insert_in_turn([new(11, created=at(6))]) == [3]  # after their last
        other_bands = [new(12, priority=90), new(13, queue="slow"), new(14, queue="slow")]
        assert await store.insert_in_turn(other_bands) == [0, 0, 1]
        for job, turn in zip(backlog, (0, 1, 2), strict=True):
            assert await store.get(jobs.id(job)) == jobs.with_turn(job, turn)
        assert await store.insert_in_turn([]) == []
        assert await store.turns([line("user-1"), line("user-2"), line("user-3")]) == {
            line("user-1"): schedule.Turns(served=None, last=3),
            line("user-2"): schedule.Turns(served=None, last=0),
            line("user-3"): schedule.Turns(served=None, last=None),
        }

    @scenario
    async def test_a_submission_whose_id_exists_takes_no_turn_and_writes_nothing(
        self, store: ports.JobStore
    ) -> None:
        first = new(1)
        assert await store.insert_in_turn([first]) == [0]
        clash = new(1, user="user-2", priority=90)
        assert await store.insert_in_turn([clash, new(2, user="user-3")]) == [None, 0]
        assert await store.get(jobs.id(first)) == jobs.with_turn(first, 0)
        twins = await store.insert_in_turn([new(3, user="user-4"), new(3, user="user-4")])
        assert twins[0] is not None
        assert twins[1] is None

    @scenario
    async def test_claims_go_round_by_round_across_users(self, store: ports.JobStore) -> None:
        """A backlog of one user and, later, jobs of another: the other's are claimed among
        the backlog's, one each round, not after it."""
        await store.insert_in_turn([new(n, created=at(n)) for n in range(5)])
        await store.insert_in_turn([new(10 + n, user="user-2", created=at(9)) for n in range(2)])
        order = ids(await store.claimable(at(60), None, 10))
        assert order == [
            "job-0000", "job-0010", "job-0001", "job-0011", "job-0002", "job-0003", "job-0004",
        ]  # fmt: skip

    @scenario
    async def test_the_bands_clock_is_the_largest_claimed_turn(self, store: ports.JobStore) -> None:
        """A newcomer lands in the round being served: the largest turn claimed (processing,
        completed or failed) in the band, whatever the user's own line holds."""
        backlog = [new(n, created=at(n)) for n in range(6)]
        await store.insert_in_turn(backlog)
        head = [jobs.with_turn(job, n) for n, job in enumerate(backlog[:4])]
        for n, job in enumerate(head):
            moved_on = claimed(job, at(10))
            if n < 3:
                moved_on = succeeded(moved_on, at(11))
            assert await store.compare_and_set(jobs.version(job), moved_on)
        assert await store.turns([line("user-2")]) == {
            line("user-2"): schedule.Turns(served=3, last=None)
        }
        assert await store.insert_in_turn([new(20, user="user-2", created=at(12))]) == [3]
        # In another band the clock has not moved.
        assert await store.insert_in_turn([new(21, user="user-2", priority=90)]) == [0]
        order = ids(await store.claimable(at(60), None, 3))
        assert order == ["job-0021", "job-0020", "job-0004"]

    @scenario
    async def test_cancelled_jobs_do_not_hold_a_users_place(self, store: ports.JobStore) -> None:
        jobs_ = [new(n, created=at(n)) for n in range(3)]
        await store.insert_in_turn(jobs_)
        last = jobs.with_turn(jobs_[2], 2)
        assert await store.compare_and_set(
            jobs.version(last), moved(last, events.CancelRequested(), at(5))
        )
        assert await store.turns([line("user-1")]) == {
            line("user-1"): schedule.Turns(served=None, last=1)
        }
        assert await store.insert_in_turn([new(3, created=at(6))]) == [2]

    @scenario
    async def test_a_job_keeps_its_turn_through_a_claim_and_release(
        self, store: ports.JobStore
    ) -> None:
        await store.insert_in_turn([new(n, created=at(n)) for n in range(3)])
        first = jobs.with_turn(new(0, created=at(0)), 0)
        taken = claimed(first, T0)
        assert await store.compare_and_set(jobs.version(first), taken)
        released = moved(taken, events.LeaseReleased(worker="w", claim=jobs.claim(taken)), at(1))
        assert jobs.turn(released) == 0
        assert await store.compare_and_set(jobs.version(taken), released)
        assert ids(await store.claimable(at(60), None, 1)) == ["job-0000"]


class FirstComeConformance:
    """A store made with `fair=False` (`JOBKIT_FAIR_CLAIMING=false`): every job takes turn 0,
    so claims go first come, first served within a priority, as before turns."""

    @scenario
    async def test_without_fairness_claims_go_first_come_first_served(
        self, store: ports.JobStore
    ) -> None:
        backlog = [new(n, created=at(n)) for n in range(3)]
        assert await store.insert_in_turn(backlog) == [0, 0, 0]
        assert await store.insert_in_turn([new(10, user="user-2", created=at(9))]) == [0]
        assert await store.insert_in_turn([new(1, user="user-3")]) == [None]  # its id exists
        assert await store.get(jobs.id(backlog[2])) == jobs.with_turn(backlog[2], 0)
        order = ids(await store.claimable(at(60), None, 10))
        assert order == ["job-0000", "job-0001", "job-0002", "job-0010"]
        assert await store.turns([line("user-1")]) == {line("user-1"): schedule.Turns()}

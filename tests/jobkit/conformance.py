"""The `JobStore` conformance suite: every store is held to the in-memory reference semantics.

To run it against a store, subclass `JobStoreConformance` in that store's test
module and give the class an `opener` fixture: `opener(name)` is an async
context manager yielding a store on the database `name`. The same name means
the same data, so a second handle (like a second process) sees the first one's
writes; a new name is an empty database.

Jobs are made the way production makes them: `submission.new_job` gives a
draft and `machine.step` moves it. Expectations come from the pure reference
functions (`listing.page`, `schedule.claimable`, ...) or are written out.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Success

from jobkit import (
    errors,
    events,
    instants,
    jobs,
    listing,
    machine,
    pipeline,
    ports,
    registry,
    retry,
    schedule,
    submission,
)
from jobkit.status import CANCELLED, PENDING, PROCESSING, TRANSITIONS, Status

Opener = Callable[[str], AbstractAsyncContextManager[ports.JobStore]]
Body = Callable[[Any, ports.JobStore], Coroutine[Any, Any, None]]

T0 = instants.from_epoch(1_800_000_000)
POLICY = retry.RetryPolicy(max_attempts=3)
LEASE = 600.0


def at(seconds: float) -> datetime:
    return instants.plus(T0, seconds)


def _nothing(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.of(
    [
        registry.JobType(name="echo", pipeline=_nothing, retry=POLICY),
        registry.JobType(name="report", pipeline=_nothing, retry=POLICY),
    ]
)
TYPE_NAMES = ("echo", "report")
USERS = ("user-1", "user-2")
QUEUES = ("default", "slow", "fast")


def new(
    n: int,
    *,
    prefix: str = "job",
    user: str = "user-1",
    type_name: str = "echo",
    priority: int = 50,
    queue: str = "default",
    delay: float = 0.0,
    created: datetime = T0,
    max_attempts: int = 3,
    params: dict[str, Any] | None = None,
) -> jobs.Job:
    """A submitted (pending) job with id `{prefix}-{n:04d}`, due `delay` seconds after creation."""
    request = {
        "type": type_name,
        "priority": priority,
        "queue": queue,
        "delaySeconds": delay,
        "maxAttempts": max_attempts,
        "params": params or {},
    }
    draft = submission.new_job(
        request, types=TYPES, job_id=f"{prefix}-{n:04d}", user_id=user, now=created
    ).unwrap()
    return moved(draft, events.Submitted(), created)


def moved(job: jobs.Job, event: events.Event, now: datetime) -> jobs.Job:
    after, _ = machine.step(job, event, now).unwrap()
    return after


def claimed(job: jobs.Job, now: datetime, worker: str = "w", lease: float = LEASE) -> jobs.Job:
    return moved(job, events.Claimed(worker=worker, lease_seconds=lease), now)


def succeeded(job: jobs.Job, now: datetime) -> jobs.Job:
    worker = jobs.lease_owner(job) or "w"
    return moved(job, events.AttemptSucceeded(worker=worker, claim=jobs.claim(job)), now)


def ids(found: Sequence[jobs.Job]) -> list[str]:
    return [jobs.id(job) for job in found]


async def insert_all(store: ports.JobStore, population: Sequence[jobs.Job]) -> None:
    assert all(await asyncio.gather(*(store.insert(job) for job in population)))


async def claim_all(
    store: ports.JobStore, worker: str, *, now: datetime = T0, batch: int = 4, many: bool = False
) -> list[str]:
    """Claim due jobs until none is left; the ids this worker won."""
    won: list[str] = []
    while candidates := await store.claimable(now, None, batch):
        moves = [(jobs.version(job), claimed(job, now, worker)) for job in candidates]
        if many:
            answers = await store.compare_and_set_many(moves)
        else:
            answers = list(await asyncio.gather(*(store.compare_and_set(*m) for m in moves)))
        won += [jobs.id(job) for (_, job), ok in zip(moves, answers, strict=True) if ok]
        await asyncio.sleep(0)
    return won


def scenario(body: Body) -> Callable[[Any, Opener], None]:
    """Turn `async def test_x(self, store)` into a sync test run on a fresh `main` store."""

    def test(self: Any, opener: Opener) -> None:
        async def main() -> None:
            async with opener("main") as store:
                await body(self, store)

        asyncio.run(main())

    test.__name__, test.__qualname__, test.__doc__ = body.__name__, body.__qualname__, body.__doc__
    return test


# -- random populations and queries, for the properties -------------------------------

FATES = ("pending", "later", "processing", "expired", "completed", "cancelled")


@st.composite
def populations(draw: st.DrawFn) -> list[jobs.Job]:
    """Jobs in every status, with ties on priority, createdAt and runAt to stress the orders."""
    numbers = draw(st.lists(st.integers(0, 9999), unique=True, max_size=24))
    population = []
    for n in numbers:
        created = at(draw(st.integers(0, 4)))
        job = new(
            n,
            user=draw(st.sampled_from(USERS)),
            type_name=draw(st.sampled_from(TYPE_NAMES)),
            priority=draw(st.sampled_from((0, 50, 100))),
            queue=draw(st.sampled_from(QUEUES)),
            delay=draw(st.sampled_from((0, 0, 3, 30))),
            created=created,
        )
        job = jobs.with_turn(job, draw(st.integers(0, 3)))  # ties on turns, and orders by them
        start = jobs.run_at(job)
        match draw(st.sampled_from(FATES)):
            case "later":  # retried: pending again, due later
                job = claimed(job, start)
                failure = errors.transient("timeout", "slow")
                event = events.AttemptFailed(
                    worker="w", claim=1, error=failure, policy=POLICY, sample=0.5
                )
                job = moved(job, event, start)
            case "processing":
                job = claimed(job, start, lease=draw(st.sampled_from((5.0, 20.0, 60.0))))
            case "expired":
                job = claimed(job, start, lease=1.0)
            case "completed":
                job = succeeded(claimed(job, start), start)
            case "cancelled":
                job = moved(job, events.CancelRequested(), start)
        population.append(job)
    return population


@st.composite
def queries(draw: st.DrawFn) -> listing.Query:
    bounds = st.none() | st.integers(0, 5).map(at)
    return listing.Query(
        statuses=frozenset(draw(st.sets(st.sampled_from(list(Status))))),
        types=frozenset(draw(st.sets(st.sampled_from(TYPE_NAMES)))),
        created_from=draw(bounds),
        created_to=draw(bounds),
        sort=draw(st.sampled_from(("createdAt", "priority"))),
        descending=draw(st.booleans()),
        limit=draw(st.integers(1, 6)),
    )


queue_choices = st.none() | st.sets(st.sampled_from((*QUEUES, "missing")))
_names = itertools.count()
property_settings = settings(
    max_examples=max(10, settings().max_examples // 4),
    # Each example opens its own database, so the function-scoped `opener` is safe to share;
    # and each store's subclass runs the same method: the examples are meant to be shared.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)

# Several filter sets for the exhaustive pagination test.
FILTERS: tuple[dict[str, Any], ...] = (
    {},
    {"statuses": frozenset({PENDING})},
    {"statuses": frozenset({PENDING, CANCELLED}), "types": frozenset({"report"})},
    {"created_from": at(2), "created_to": at(7)},
    {"types": frozenset({"echo"}), "created_from": at(3)},
)


class JobStoreConformance:
    """What every `ports.JobStore` does. Subclasses provide the `opener` fixture.

    `COUNTS_FIND_QUEUES`: whether `counts` also reports queues it was not asked about (a
    store whose count aggregations cannot group by queue, like Firestore's, sets False)."""

    COUNTS_FIND_QUEUES = True

    def expected_counts(
        self, population: list[jobs.Job], now: datetime, queues: Sequence[str]
    ) -> schedule.Counts:
        expected = schedule.counts(population, now, queues)
        if self.COUNTS_FIND_QUEUES:
            return expected
        return {name: expected[name] for name in queues}

    # -- insert, get, delete -------------------------------------------------------

    @scenario
    async def test_insert_then_get_round_trips_the_whole_job(self, store: ports.JobStore) -> None:
        params = {"text": "naïve ☃ \U0001f600", "nested": {"list": [1, 2.5, None, True]}}
        job = new(1, params=params, created=at(0.123456))
        failure = errors.error("boom", "no", retryable=True, context={"k": [1, "v"]}, at=at(1))
        event = events.AttemptFailed(worker="w", claim=1, error=failure, policy=POLICY, sample=0.3)
        rich = moved(claimed(job, at(1)), event, at(2))
        assert await store.insert(rich)
        assert await store.get(jobs.id(rich)) == rich
        assert await store.get("job-missing") is None

    @scenario
    async def test_a_duplicate_insert_returns_false_and_keeps_the_first(
        self, store: ports.JobStore
    ) -> None:
        first = new(1, priority=10)
        assert await store.insert(first)
        assert not await store.insert(new(1, priority=90, user="user-2"))
        assert not await store.insert(claimed(first, T0))
        assert await store.get(jobs.id(first)) == first

    @scenario
    async def test_insert_many_answers_each_job_as_insert_would(
        self, store: ports.JobStore
    ) -> None:
        first, second, third = new(1), new(2, priority=90), new(3, user="user-2")
        assert await store.insert(first)
        clash = new(1, priority=10)  # first's id, another job
        assert await store.insert_many([second, clash, third, new(2)]) == [
            True,
            False,
            True,
            False,  # a twin within the batch loses to the earlier one
        ]
        assert [await store.get(jobs.id(job)) for job in (first, second, third)] == [
            first,
            second,
            third,
        ]
        assert await store.insert_many([]) == []

    @scenario
    async def test_delete_needs_the_current_version(self, store: ports.JobStore) -> None:
        job = new(1)
        await insert_all(store, [job])
        assert not await store.delete(jobs.id(job), jobs.version(job) + 1)
        assert await store.get(jobs.id(job)) == job
        assert await store.delete(jobs.id(job), jobs.version(job))
        assert await store.get(jobs.id(job)) is None
        assert not await store.delete(jobs.id(job), jobs.version(job))
        assert not await store.delete("job-missing", 1)
        assert await store.insert(job)  # the id is free again

    def test_handles_on_one_database_see_each_others_writes(self, opener: Opener) -> None:
        async def main() -> None:
            async with opener("shared") as first, opener("shared") as second:
                job = new(1)
                assert await first.insert(job)
                assert await second.get(jobs.id(job)) == job
                assert not await second.insert(job)
                assert await second.compare_and_set(jobs.version(job), claimed(job, T0))
                assert await first.get(jobs.id(job)) == claimed(job, T0)
            async with opener("other") as third:
                assert await third.get(jobs.id(job)) is None

        asyncio.run(main())

    # -- compare-and-set -------------------------------------------------------------

    @scenario
    async def test_every_transition_is_written_by_compare_and_set(
        self, store: ports.JobStore
    ) -> None:
        seen: set[tuple[Status | None, str, Status]] = set()

        async def submit(n: int, max_attempts: int) -> jobs.Job:
            draft = submission.new_job(
                {"type": "echo", "maxAttempts": max_attempts},
                types=TYPES,
                job_id=f"job-{n:04d}",
                user_id="user-1",
                now=T0,
            ).unwrap()
            job = moved(draft, events.Submitted(), T0)
            seen.add((None, "submitted", jobs.status(job)))
            assert await store.insert(job)
            return job

        async def move(job: jobs.Job, event: events.Event, now: datetime) -> jobs.Job:
            after = moved(job, event, now)
            seen.add((jobs.status(job), event.kind, jobs.status(after)))
            key, version = jobs.id(job), jobs.version(job)
            if isinstance(event, events.Purged):
                assert not await store.delete(key, version - 1)
                assert await store.delete(key, version)
                assert await store.get(key) is None
                return after
            assert not await store.compare_and_set(version - 1, after)  # stale: loses
            assert await store.get(key) == job  # ... and wrote nothing
            assert await store.compare_and_set(version, after)
            assert await store.get(key) == after
            assert not await store.compare_and_set(version, after)  # a replay is stale too
            return after

        def failed(job: jobs.Job, code: str) -> events.AttemptFailed:
            err = errors.error(code, "x", retryable=True)
            return events.AttemptFailed(
                worker="w", claim=jobs.claim(job), error=err, policy=POLICY, sample=0.5
            )

        claim = events.Claimed(worker="w", lease_seconds=30)
        job = await submit(1, max_attempts=3)
        job = await move(job, claim, T0)
        job = await move(job, events.Heartbeat(worker="w", claim=1, lease_seconds=60), at(1))
        job = await move(
            job, events.ProgressReported(worker="w", claim=1, current=1, total=2), at(2)
        )
        job = await move(job, failed(job, "timeout"), at(3))  # retried: pending
        job = await move(job, claim, jobs.run_at(job))
        job = await move(job, events.LeaseExpired(policy=POLICY, sample=0.5), at(999))
        job = await move(job, claim, jobs.run_at(job))
        job = await move(job, events.LeaseReleased(worker="w", claim=3), jobs.run_at(job))
        job = await move(job, claim, jobs.run_at(job))
        job = await move(job, events.AttemptSucceeded(worker="w", claim=4), jobs.run_at(job))
        await move(job, events.Purged(), at(9999))

        job = await submit(2, max_attempts=1)
        job = await move(job, claim, T0)
        job = await move(job, events.LeaseExpired(policy=POLICY, sample=0.5), at(999))  # failed
        job = await move(job, events.RetryRequested(), at(1000))
        job = await move(job, claim, at(1000))
        job = await move(job, failed(job, "invalid_input"), at(1001))  # permanent: failed
        await move(job, events.Purged(), at(1002))

        job = await submit(3, max_attempts=1)
        job = await move(job, events.CancelRequested(), T0)
        await move(job, events.Purged(), at(1))

        assert seen == {(s, kind, t) for (s, kind), to in TRANSITIONS.items() for t in to}

    @scenario
    async def test_compare_and_set_on_a_missing_job_writes_nothing(
        self, store: ports.JobStore
    ) -> None:
        ghost = claimed(new(1), T0)
        assert not await store.compare_and_set(1, ghost)
        assert not await store.compare_and_set(jobs.version(ghost), ghost)
        assert await store.get(jobs.id(ghost)) is None
        assert await store.compare_and_set_many([(1, ghost)]) == [False]
        assert await store.get(jobs.id(ghost)) is None

    @scenario
    async def test_compare_and_set_many_answers_each_write_alone(
        self, store: ports.JobStore
    ) -> None:
        a, b, c = new(1), new(2), new(3)
        await insert_all(store, [a, b, c])
        a2, b2, c2 = (claimed(job, T0) for job in (a, b, c))
        ghost = claimed(new(4), T0)
        other = claimed(a, T0, worker="other")
        answers = await store.compare_and_set_many(
            [(1, a2), (7, b2), (1, ghost), (1, c2), (1, other)]
        )
        assert answers == [True, False, False, True, False]
        assert [await store.get(jobs.id(j)) for j in (a, b, c, ghost)] == [a2, b, c2, None]
        a3 = moved(a2, events.Heartbeat(worker="w", claim=1, lease_seconds=9), at(1))
        a4 = moved(a3, events.Heartbeat(worker="w", claim=1, lease_seconds=9), at(2))
        assert await store.compare_and_set_many([(2, a3), (3, a4)]) == [True, True]  # in order
        assert await store.get(jobs.id(a)) == a4
        assert await store.compare_and_set_many([]) == []

    @scenario
    async def test_concurrent_claimers_win_each_job_exactly_once(
        self, store: ports.JobStore
    ) -> None:
        population = [new(n, priority=n % 3 * 10, created=at(n % 5)) for n in range(60)]
        await insert_all(store, population)
        results = await asyncio.gather(
            *(claim_all(store, f"w{i}", now=at(5), many=i % 2 == 0) for i in range(8))
        )
        won = [key for keys in results for key in keys]
        assert sorted(won) == ids(population)
        for worker, keys in enumerate(results):
            for key in keys:
                stored = await store.get(key)
                assert stored is not None
                assert jobs.status(stored) == PROCESSING
                assert jobs.lease_owner(stored) == f"w{worker}"
        assert await store.claimable(at(5), None, 10) == []

    # -- scheduling -------------------------------------------------------------------

    @scenario
    async def test_claimable_follows_claim_order_and_queues(self, store: ports.JobStore) -> None:
        population = [
            new(1, priority=50),
            new(2, priority=90, created=at(1)),
            new(3, priority=90, delay=5),
            new(4, priority=90),
            new(5, priority=90),  # ties with 4 but for the id
            new(6, priority=10, queue="slow"),
            new(7, priority=100, delay=3600),  # not due
            moved(new(8, priority=100), events.CancelRequested(), T0),
            claimed(new(9, priority=100), T0, lease=1),  # processing, even once stalled
            new(10, priority=90, queue="fast", delay=2),
        ]
        await insert_all(store, population)
        now = at(10)
        every = ["job-0004", "job-0005", "job-0002", "job-0010", "job-0003", "job-0001"]
        assert ids(await store.claimable(now, None, 10)) == [*every, "job-0006"]
        assert ids(await store.claimable(now, None, 3)) == every[:3]
        assert ids(await store.claimable(at(1), None, 9)) == [*every[:3], "job-0001", "job-0006"]
        assert ids(await store.claimable(now, ["slow"], 10)) == ["job-0006"]
        assert ids(await store.claimable(now, ["fast", "slow"], 10)) == ["job-0010", "job-0006"]
        assert ids(await store.claimable(now, {"default", "fast"}, 2)) == every[:2]
        assert await store.claimable(now, [], 10) == []
        assert await store.claimable(now, ["missing"], 10) == []
        assert await store.claimable(at(-1), None, 10) == []
        for queues in (None, ["slow"], ["default", "fast"], ["default", "slow", "fast"]):
            for limit in (1, 4, 20):
                expected = schedule.claimable(population, now, queues, limit)
                assert list(await store.claimable(now, queues, limit)) == expected

    @scenario
    async def test_stalled_lists_expired_leases_oldest_first(self, store: ports.JobStore) -> None:
        population = [
            claimed(new(1), T0, lease=30),
            claimed(new(2), T0, lease=20),
            claimed(new(3), T0, lease=10),
            claimed(new(4), at(10), lease=10),  # expires with 2: the id breaks the tie
            succeeded(claimed(new(5), T0, lease=1), T0),
            new(6),
            claimed(new(7), T0, lease=1000),
        ]
        await insert_all(store, population)
        assert await store.stalled(at(9), 10) == []
        assert ids(await store.stalled(at(10), 10)) == ["job-0003"]
        assert ids(await store.stalled(at(20), 10)) == ["job-0003", "job-0002", "job-0004"]
        assert ids(await store.stalled(at(30), 2)) == ["job-0003", "job-0002"]
        for now in (at(0), at(20), at(25), at(5000)):
            expected = schedule.stalled(population, now, 3)
            assert list(await store.stalled(now, 3)) == expected

    @scenario
    async def test_next_wakeup_is_the_earliest_due_time_or_lease_expiry(
        self, store: ports.JobStore
    ) -> None:
        for queues in (None, [], ["default"]):
            assert await store.next_wakeup(queues) is None
        population = [
            new(1, queue="default", delay=100),
            new(2, queue="slow", delay=50),
            claimed(new(3, queue="fast"), T0, lease=70),
            succeeded(claimed(new(4, queue="slow"), T0, lease=10), T0),
            moved(new(5, queue="slow", delay=5), events.CancelRequested(), T0),
        ]
        await insert_all(store, population)
        assert await store.next_wakeup(None) == at(50)
        assert await store.next_wakeup(["slow"]) == at(50)
        assert await store.next_wakeup(["default"]) == at(70)  # a lease expiry in any queue
        assert await store.next_wakeup([]) == at(70)
        for queues in (None, [], ["default"], ["slow", "fast"], ["missing"]):
            assert await store.next_wakeup(queues) == schedule.next_wakeup(population, queues)

    @scenario
    async def test_counts_are_the_live_jobs_by_queue(self, store: ports.JobStore) -> None:
        assert await store.counts(T0, ["default"]) == {"default": schedule.QueueCounts()}
        population = [
            new(1, queue="default", created=at(0)),
            new(2, queue="default", created=at(2)),
            new(3, queue="default", delay=100),
            new(4, queue="slow", delay=5),
            claimed(new(5, queue="fast"), T0),
            succeeded(claimed(new(6, queue="slow"), T0), T0),
            moved(new(7, queue="gone"), events.CancelRequested(), T0),
        ]
        await insert_all(store, population)
        found = await store.counts(at(10), ["default", "empty", "fast", "slow"])
        assert found == {
            "default": schedule.QueueCounts(pending=3, due=2, oldest_due=at(0)),
            "empty": schedule.QueueCounts(),
            "fast": schedule.QueueCounts(processing=1),
            "slow": schedule.QueueCounts(pending=1, due=1, oldest_due=at(5)),
        }
        asked = ["default", "empty"]
        assert await store.counts(at(10), asked) == self.expected_counts(population, at(10), asked)
        assert (await store.counts(T0, ["slow"]))["slow"] == schedule.QueueCounts(pending=1)

    @scenario
    async def test_count_due_counts_the_due_pending_jobs_up_to_a_limit(
        self, store: ports.JobStore
    ) -> None:
        assert await store.count_due(T0, None, 10) == 0
        population = [
            new(1, queue="default"),
            new(2, queue="default"),
            new(3, queue="slow"),
            new(4, queue="slow", delay=100),  # not yet due
            claimed(new(5, queue="fast"), T0),  # running
            moved(new(6), events.CancelRequested(), T0),
        ]
        await insert_all(store, population)
        assert await store.count_due(at(10), None, 10) == 3
        assert await store.count_due(at(10), None, 2) == 2
        assert await store.count_due(at(10), ["default"], 10) == 2
        assert await store.count_due(at(10), ["slow", "fast"], 10) == 1
        assert await store.count_due(at(200), ["slow"], 10) == 2
        assert await store.count_due(at(10), [], 10) == 0
        assert await store.count_due(at(10), ["missing"], 10) == 0

    @given(population=populations(), data=st.data())
    @property_settings
    def test_scheduling_reads_match_the_reference(
        self, opener: Opener, population: list[jobs.Job], data: st.DataObject
    ) -> None:
        checks = data.draw(
            st.lists(
                st.tuples(st.integers(-1, 100).map(at), queue_choices, st.integers(1, 8)),
                min_size=1,
                max_size=4,
            )
        )

        async def main() -> None:
            async with opener(f"schedule-{next(_names)}") as store:
                await insert_all(store, population)
                lines = {
                    schedule.Line(user, queue, priority)
                    for user in USERS
                    for queue in (*QUEUES, "missing")
                    for priority in (0, 50, 100)
                }
                assert await store.turns(lines) == schedule.turns(population, lines)
                for now, queues, limit in checks:
                    expected = schedule.claimable(population, now, queues, limit)
                    assert list(await store.claimable(now, queues, limit)) == expected
                    assert list(await store.stalled(now, limit)) == schedule.stalled(
                        population, now, limit
                    )
                    expected_due = schedule.count_due(population, now, queues, limit)
                    assert await store.count_due(now, queues, limit) == expected_due
                    expected_wakeup = schedule.next_wakeup(population, queues)
                    assert await store.next_wakeup(queues) == expected_wakeup
                    known = sorted(queues or ())
                    expected_counts = self.expected_counts(population, now, known)
                    assert await store.counts(now, known) == expected_counts

        asyncio.run(main())

    # -- listing ------------------------------------------------------------------------

    @scenario
    async def test_count_active_counts_a_users_unfinished_jobs_up_to_a_limit(
        self, store: ports.JobStore
    ) -> None:
        pending = [new(n) for n in range(5)]
        running = claimed(new(5), at(1))
        done = succeeded(claimed(new(6), at(1)), at(2))
        cancelled = moved(new(7), events.CancelRequested(), at(1))
        later = new(8, delay=3600)  # pending, not yet due: it still waits in the queue
        theirs = [new(9, user="user-2"), new(10, user="user-2")]
        await insert_all(store, [*pending, running, done, cancelled, later, *theirs])
        assert await store.count_active("user-1", 100) == 7
        assert await store.count_active("user-1", 7) == 7
        assert await store.count_active("user-1", 3) == 3
        assert await store.count_active("user-2", 100) == 2
        assert await store.count_active("nobody", 100) == 0
        # Finishing a job frees its place.
        assert await store.compare_and_set(jobs.version(running), succeeded(running, at(3)))
        assert await store.count_active("user-1", 100) == 6

    @scenario
    async def test_list_filters_and_keeps_users_apart(self, store: ports.JobStore) -> None:
        mine = [new(1, created=at(1)), new(2, type_name="report", created=at(2))]
        theirs = [new(3, user="user-2", created=at(3))]
        await insert_all(store, [*mine, *theirs])
        page = await store.list("user-1", listing.Query())
        assert page == listing.Page(jobs=(mine[1], mine[0]), next_cursor=None)
        only = listing.Query(types=frozenset({"report"}))
        assert (await store.list("user-1", only)).jobs == (mine[1],)
        assert (await store.list("user-2", listing.Query())).jobs == tuple(theirs)
        assert (await store.list("nobody", listing.Query())).jobs == ()
        window = listing.Query(created_from=at(1), created_to=at(2))
        assert (await store.list("user-1", window)).jobs == (mine[0],)

    @scenario
    async def test_pages_cover_each_job_once_while_jobs_arrive(self, store: ports.JobStore) -> None:
        combos = itertools.product(("createdAt", "priority"), (True, False), FILTERS)
        for number, (sort, descending, filters) in enumerate(combos):
            user = f"user-{number}"
            population = [
                self._job(user, n, n % 10, (10, 50, 90)[n % 3])
                for n in range(number * 100, number * 100 + 30)
            ]
            await insert_all(store, population)
            query = listing.Query(sort=sort, descending=descending, limit=4, **filters)
            seen: list[jobs.Job] = []
            arrivals = itertools.count(number * 100 + 50)
            while True:
                page = await store.list(user, query)
                seen += page.jobs
                for created in (0, 5, 20):  # before, among and after the pages so far
                    await insert_all(store, [self._job(user, next(arrivals), created, 50)])
                if page.next_cursor is None:
                    break
                query = listing.decode_cursor(page.next_cursor, query).unwrap()
            keys = [listing.sort_key(job, sort) for job in seen]
            assert len(set(ids(seen))) == len(seen), "a job was listed twice"
            assert keys == sorted(keys, reverse=descending)
            assert all(listing.matches(job, query) for job in seen)
            expected = {jobs.id(job) for job in population if listing.matches(job, query)}
            assert expected <= set(ids(seen)), "a job was skipped"

    @staticmethod
    def _job(user: str, n: int, created: float, priority: int) -> jobs.Job:
        job = new(
            n,
            user=user,
            created=at(created),
            priority=priority,
            type_name=TYPE_NAMES[n % 2],
        )
        return moved(job, events.CancelRequested(), at(created)) if n % 5 == 0 else job

    @given(population=populations(), query=queries(), user=st.sampled_from(USERS))
    @property_settings
    def test_pages_match_the_reference(
        self, opener: Opener, population: list[jobs.Job], query: listing.Query, user: str
    ) -> None:
        mine = [job for job in population if jobs.user_id(job) == user]

        async def main() -> None:
            async with opener(f"pages-{next(_names)}") as store:
                await insert_all(store, population)
                current: listing.Query = query
                while True:
                    page = await store.list(user, current)
                    assert page == listing.page(mine, current)
                    if page.next_cursor is None:
                        break
                    current = listing.decode_cursor(page.next_cursor, current).unwrap()

        asyncio.run(main())

"""Turns (`schedule.next_turn`, `take_turns`, `turns`) and the claim order they make, purely."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from jobkit import jobs, schedule
from jobkit.status import Status
from tests.jobkit import conformance
from tests.jobkit.conformance import at, claimed, new, succeeded

maybe_turn = st.none() | st.integers(0, 10**6)


def test_standing_drops_a_last_below_the_clock_which_gives_the_same_turn() -> None:
    assert schedule.standing(7, 3) == schedule.Turns(served=7, last=None)
    assert schedule.standing(7, 7) == schedule.Turns(served=7, last=7)
    assert schedule.standing(None, 3) == schedule.Turns(served=None, last=3)
    assert schedule.standing(7, None) == schedule.Turns(served=7, last=None)
    assert schedule.next_turn(schedule.Turns(served=7, last=3)) == schedule.next_turn(
        schedule.standing(7, 3)
    )


def test_next_turn_is_the_round_served_or_the_one_after_the_users_last() -> None:
    assert schedule.next_turn(schedule.Turns()) == 0
    assert schedule.next_turn(schedule.Turns(served=7)) == 7
    assert schedule.next_turn(schedule.Turns(served=7, last=3)) == 7
    assert schedule.next_turn(schedule.Turns(served=7, last=7)) == 8
    assert schedule.next_turn(schedule.Turns(served=None, last=4)) == 5


@given(served=maybe_turn, last=maybe_turn)
def test_next_turn_is_never_behind_the_clock_nor_at_or_before_the_users_last(
    served: int | None, last: int | None
) -> None:
    turn = schedule.next_turn(schedule.Turns(served=served, last=last))
    assert turn >= (served or 0)
    assert last is None or turn > last
    assert turn in {served or 0, (last or 0) + 1}  # and no later than it must be


@given(st.lists(st.sampled_from(("user-1", "user-2", "user-3")), max_size=30), st.data())
def test_a_batch_takes_turns_as_if_stored_one_by_one(users: list[str], data: st.DataObject) -> None:
    batch = [new(n, user=user) for n, user in enumerate(users)]
    lines = {schedule.line_of(job) for job in batch}
    found = {
        line: schedule.Turns(served=data.draw(maybe_turn), last=data.draw(maybe_turn))
        for line in lines
    }
    taken = schedule.take_turns(found, batch)
    now = dict(found)
    for job, turn in zip(batch, taken, strict=True):
        line = schedule.line_of(job)
        assert turn == schedule.next_turn(now[line])
        now[line] = schedule.Turns(served=now[line].served, last=turn)


@given(st.lists(st.tuples(st.sampled_from(("a", "b", "c")), st.integers(0, 3)), max_size=40))
def test_backlogs_stored_in_an_idle_band_are_claimed_round_by_round(
    arrivals: list[tuple[str, int]],
) -> None:
    """Whatever order users' jobs arrive in (and when), with nothing claimed yet, a user's
    jobs take turns 0, 1, 2, ... and between two consecutive claims of one user's jobs
    another user gets at most two (one in each round: the tie in a round goes by runAt)."""
    stored: list[jobs.Job] = []
    for n, (user, second) in enumerate(arrivals):
        job = new(n, user=user, created=at(second))
        found = schedule.turns(stored, [schedule.line_of(job)])
        stored.append(jobs.with_turn(job, schedule.take_turns(found, [job])[0]))
    order = [jobs.user_id(job) for job in sorted(stored, key=schedule.claim_key)]
    for user in set(order):
        theirs = [jobs.turn(job) for job in stored if jobs.user_id(job) == user]
        assert theirs == list(range(len(theirs)))
        places = [i for i, who in enumerate(order) if who == user]
        for start, end in itertools.pairwise(places):
            between = order[start + 1 : end]
            assert all(between.count(other) <= 2 for other in set(between))


def test_turns_read_the_bands_clock_from_claimed_jobs_and_skip_cancelled_ones() -> None:
    done = jobs.with_turn(succeeded(claimed(new(1), at(1)), at(2)), 4)
    running = jobs.with_turn(claimed(new(2, user="user-2"), at(1)), 6)
    waiting = jobs.with_turn(new(3), 9)
    other_band = jobs.with_turn(claimed(new(4, priority=90), at(1)), 50)
    line = schedule.Line("user-1", "default", 50)
    assert schedule.turns([done, running, waiting, other_band], [line]) == {
        line: schedule.Turns(served=6, last=9)
    }


@given(conformance.populations(), st.sampled_from(conformance.USERS))
def test_the_narrow_last_and_the_last_of_every_job_not_cancelled_stand_the_same(
    population: list[jobs.Job], user: str
) -> None:
    """`turns` reads `last` from live jobs and the clock's round only; a finished job further
    back has a turn below the clock, which holds nothing: in `standing`'s form the two are
    equal (Firestore reads the wide one, in one query), and so is the turn given."""
    for queue in conformance.QUEUES:
        for priority in (0, 50, 100):
            line = schedule.Line(user, queue, priority)
            found = schedule.turns(population, [line])[line]
            theirs = [
                jobs.turn(job)
                for job in population
                if schedule.line_of(job) == line
                and jobs.status_or_none(job) not in (None, Status.CANCELLED)
            ]
            wide = schedule.standing(found.served, max(theirs, default=None))
            assert found == wide
            assert schedule.next_turn(found) == schedule.next_turn(wide)

"""The lifecycle machine driven by hypothesis: one job, random events legal or not, checked
after every step against a tiny hand-kept model."""

from __future__ import annotations

from datetime import datetime

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import documents, effects, errors, events, instants, jobs, machine, retry
from jobkit.status import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    PROCESSING,
    TERMINAL,
    Status,
)
from tests.jobkit import strategies


@attrs.define
class Model:
    """What the lifecycle should look like from outside, kept by hand."""

    status: Status
    attempts: int
    claim: int
    max_attempts: int
    version: int
    owner: str | None = None
    lease_until: datetime | None = None


class LifecycleMachine(RuleBasedStateMachine):
    """Drive one job with random events, legal or not, and check it against the model."""

    job: jobs.Job
    now: datetime
    model: Model

    @initialize(drawn=strategies.drafts())
    def submit(self, drawn: tuple[jobs.Job, datetime]) -> None:
        self.start(drawn)

    @precondition(lambda self: self.model.status in TERMINAL)
    @rule(drawn=strategies.drafts())
    def start_over(self, drawn: tuple[jobs.Job, datetime]) -> None:
        """A finished job absorbs almost everything; keep exploring with a new one."""
        self.start(drawn)

    # helpers

    def start(self, drawn: tuple[jobs.Job, datetime]) -> None:
        draft, self.now = drawn
        self.job = strategies.accepted(draft, events.Submitted(), self.now)
        self.model = Model(
            status=PENDING, attempts=0, claim=0, max_attempts=jobs.max_attempts(draft), version=1
        )

    def step(self, event: events.Event) -> machine.Stepped:
        result = machine.step(self.job, event, self.now)
        if isinstance(result, Success):
            self.job = result.unwrap()[0]
            if not isinstance(event, events.Purged):
                self.model.version += 1
        return result

    def refused(self, result: machine.Stepped, code: str, kind: str) -> None:
        assert isinstance(result, Failure), f"{kind} was accepted; expected {code}"
        refused = result.failure()
        assert (refused.code, refused.status, refused.event) == (
            code,
            self.model.status.value,
            kind,
        )

    def lease(self, own: bool, worker: str, offset: int) -> tuple[str, int]:
        if own and self.model.owner is not None:
            return self.model.owner, self.model.claim
        return worker, max(self.model.claim + offset, 0)

    def holds(self, worker: str, claim: int) -> bool:
        return (worker, claim) == (self.model.owner, self.model.claim)

    def lease_rule(self, worker: str, claim: int) -> str | None:
        """The refusal code a worker event must get, or None when it must be accepted."""
        if self.model.status is not PROCESSING:
            return "illegal_transition"
        return None if self.holds(worker, claim) else "lease_lost"

    def end_attempt(self, gives_up: bool) -> None:
        self.model.attempts += 1
        exhausted = self.model.attempts >= self.model.max_attempts
        self.model.status = FAILED if gives_up or exhausted else PENDING
        self.model.owner = self.model.lease_until = None

    # rules

    @rule(seconds=strategies.seconds(900.0))
    def wait(self, seconds: float) -> None:
        self.now = instants.plus(self.now, seconds)

    @rule()
    def wait_until_due(self) -> None:
        self.now = max(self.now, jobs.run_at(self.job))

    @rule()
    def wait_for_the_lease_to_run_out(self) -> None:
        if self.model.lease_until is not None:
            self.now = max(self.now, self.model.lease_until)

    @rule(worker=st.sampled_from(strategies.WORKERS), seconds=strategies.lease_seconds)
    def claim_it(self, worker: str, seconds: float) -> None:
        due = jobs.run_at(self.job) <= self.now
        result = self.step(events.Claimed(worker=worker, lease_seconds=seconds))
        if self.model.status is not PENDING:
            self.refused(result, "illegal_transition", "claimed")
        elif not due:
            self.refused(result, "not_due", "claimed")
        else:
            assert isinstance(result, Success)
            self.model.status, self.model.owner = PROCESSING, worker
            self.model.claim += 1
            self.model.lease_until = instants.plus(self.now, seconds)

    @rule(worker=st.sampled_from(strategies.WORKERS), seconds=strategies.lease_seconds)
    def claim_when_due(self, worker: str, seconds: float) -> None:
        """What a worker's poll does: wait for the job to be due, then claim it."""
        self.wait_until_due()
        self.claim_it(worker, seconds)

    @rule(
        own=st.booleans(),
        worker=st.sampled_from(strategies.WORKERS),
        offset=st.sampled_from((-1, 0, 1)),
        seconds=strategies.lease_seconds,
    )
    def beat(self, own: bool, worker: str, offset: int, seconds: float) -> None:
        worker, claim = self.lease(own, worker, offset)
        expected = self.lease_rule(worker, claim)
        result = self.step(events.Heartbeat(worker=worker, claim=claim, lease_seconds=seconds))
        if expected is not None:
            self.refused(result, expected, "heartbeat")
        else:
            assert isinstance(result, Success)
            self.model.lease_until = instants.plus(self.now, seconds)

    @rule(
        own=st.booleans(),
        worker=st.sampled_from(strategies.WORKERS),
        offset=st.sampled_from((-1, 0, 1)),
        current=st.integers(-1, 11),
        total=st.integers(0, 10),
    )
    def report(self, own: bool, worker: str, offset: int, current: int, total: int) -> None:
        worker, claim = self.lease(own, worker, offset)
        expected = self.lease_rule(worker, claim)
        if expected is None and not 0 <= current <= total:
            expected = "invalid_progress"
        report = events.ProgressReported(worker=worker, claim=claim, current=current, total=total)
        result = self.step(report)
        if expected is not None:
            self.refused(result, expected, "progress")
        else:
            assert isinstance(result, Success)
            assert jobs.progress(self.job) == pmap(
                {"current": current, "total": total, "message": ""}
            )

    @rule(
        own=st.booleans(),
        worker=st.sampled_from(strategies.WORKERS),
        offset=st.sampled_from((-1, 0, 1)),
    )
    def succeed(self, own: bool, worker: str, offset: int) -> None:
        worker, claim = self.lease(own, worker, offset)
        expected = self.lease_rule(worker, claim)
        result = self.step(events.AttemptSucceeded(worker=worker, claim=claim))
        if expected is not None:
            self.refused(result, expected, "succeeded")
        else:
            assert isinstance(result, Success)
            self.model.attempts += 1
            self.model.status, self.model.owner, self.model.lease_until = COMPLETED, None, None

    @rule(
        own=st.booleans(),
        worker=st.sampled_from(strategies.WORKERS),
        offset=st.sampled_from((-1, 0, 1)),
        err=strategies.error_values(),
        policy=strategies.retry_policies(),
        sample=strategies.samples(),
    )
    def fail(
        self,
        own: bool,
        worker: str,
        offset: int,
        err: errors.Error,
        policy: retry.RetryPolicy,
        sample: float,
    ) -> None:
        worker, claim = self.lease(own, worker, offset)
        expected = self.lease_rule(worker, claim)
        event = events.AttemptFailed(
            worker=worker, claim=claim, error=err, policy=policy, sample=sample
        )
        result = self.step(event)
        if expected is not None:
            self.refused(result, expected, "failed")
        else:
            assert isinstance(result, Success)
            self.end_attempt(gives_up=not errors.classify(err, policy.classifier))

    @rule(policy=strategies.retry_policies(), sample=strategies.samples())
    def expire(self, policy: retry.RetryPolicy, sample: float) -> None:
        result = self.step(events.LeaseExpired(policy=policy, sample=sample))
        if self.model.status is not PROCESSING:
            self.refused(result, "illegal_transition", "lease_expired")
        elif self.model.lease_until is not None and self.model.lease_until > self.now:
            self.refused(result, "lease_active", "lease_expired")
        else:
            assert isinstance(result, Success)
            stall = errors.transient("lease_expired", "")
            self.end_attempt(gives_up=not errors.classify(stall, policy.classifier))

    @rule(
        own=st.booleans(),
        worker=st.sampled_from(strategies.WORKERS),
        offset=st.sampled_from((-1, 0, 1)),
    )
    def release(self, own: bool, worker: str, offset: int) -> None:
        worker, claim = self.lease(own, worker, offset)
        expected = self.lease_rule(worker, claim)
        result = self.step(events.LeaseReleased(worker=worker, claim=claim))
        if expected is not None:
            self.refused(result, expected, "released")
        else:
            assert isinstance(result, Success)
            self.model.status, self.model.owner, self.model.lease_until = PENDING, None, None

    @rule(mind=st.integers(min_value=0, max_value=3))
    def cancel(self, mind: int) -> None:
        if mind:
            return  # owners rarely cancel; a cancel ends the walk, so most thoughts are dropped
        result = self.step(events.CancelRequested())
        if self.model.status is not PENDING:
            self.refused(result, "illegal_transition", "cancel")
        else:
            assert isinstance(result, Success)
            self.model.status = CANCELLED

    @rule()
    def retry_it(self) -> None:
        result = self.step(events.RetryRequested())
        if self.model.status is not FAILED:
            self.refused(result, "illegal_transition", "retry")
        else:
            assert isinstance(result, Success)
            self.model.status, self.model.attempts = PENDING, 0
            assert jobs.run_at(self.job) == self.now

    @rule()
    def purge(self) -> None:
        before = self.job
        result = self.step(events.Purged())
        if self.model.status not in TERMINAL:
            self.refused(result, "illegal_transition", "purge")
        else:
            assert result == Success((before, result.unwrap()[1]))
            assert isinstance(result.unwrap()[1][-2], effects.DeleteJob)

    # invariants

    @invariant()
    def matches_the_model(self) -> None:
        assert (
            jobs.status(self.job),
            jobs.attempts(self.job),
            jobs.claim(self.job),
            jobs.version(self.job),
            jobs.lease_owner(self.job),
            jobs.lease_expires_at(self.job),
        ) == (
            self.model.status,
            self.model.attempts,
            self.model.claim,
            self.model.version,
            self.model.owner,
            self.model.lease_until,
        )

    @invariant()
    def attempts_stay_within_max_attempts(self) -> None:
        assert 0 <= jobs.attempts(self.job) <= jobs.max_attempts(self.job)

    @invariant()
    def only_a_running_job_holds_a_lease_and_an_open_attempt(self) -> None:
        running = jobs.status(self.job) is PROCESSING
        assert (jobs.lease_owner(self.job) is not None) == running
        entries = documents.to_document(self.job)["history"]
        closed = entries[:-1] if running else entries
        assert all(entry["endedAt"] is not None for entry in closed)
        assert [entry["attempt"] for entry in entries] == list(range(1, len(entries) + 1))


TestLifecycle = LifecycleMachine.TestCase
TestLifecycle.settings = settings(stateful_step_count=30)

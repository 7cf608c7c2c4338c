"""Expected values shared by the lifecycle machine's tests: its refusals and their reasons."""

from __future__ import annotations

from returns.result import Failure

from jobkit import errors, machine
from jobkit.status import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, Status

# What `illegal_transition` says of each status, as `cannot <event>: <reason>`.
REASONS: dict[Status | None, str] = {
    None: "the job has not been submitted",
    PENDING: "the job has not started",
    PROCESSING: "the job is running",
    COMPLETED: "the job has completed",
    FAILED: "the job has failed",
    CANCELLED: "the job was cancelled",
}


def refusal(code: str, message: str, status: Status | None, event: str) -> machine.Stepped:
    return Failure(
        errors.JobError(
            code=code, message=message, status=None if status is None else status.value, event=event
        )
    )

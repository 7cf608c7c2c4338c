"""Job statuses and the lifecycle transition table every rule is read from.

Theory of operation
-------------------
A job is born by `submitted` into `pending`. A worker `claimed` it into
`processing` under a lease, keeps the lease alive with `heartbeat`, reports
`progress`, and ends the attempt with `succeeded` (-> `completed`) or `failed`.
A failed attempt, or a lease that ran out (`lease_expired`, a stall), goes back
to `pending` with a later `runAt` while the retry policy allows, else to
`failed`. A worker shutting down `released` the job back to `pending`. The owner
may `cancel` a pending job, `retry` a failed one, and `purge` any finished one.

The table maps (status, event kind) to the statuses that event may lead to;
where there are two (a retry or a give-up), the retry policy picks. A pair that
is not in the table is an illegal move. `None` is the draft before submission.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED = Status

TERMINAL: frozenset[Status] = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE: frozenset[Status] = frozenset({PENDING, PROCESSING})

TRANSITIONS: Mapping[tuple[Status | None, str], frozenset[Status]] = MappingProxyType(
    {
        (None, "submitted"): frozenset({PENDING}),
        (PENDING, "claimed"): frozenset({PROCESSING}),
        (PENDING, "cancel"): frozenset({CANCELLED}),
        (PROCESSING, "heartbeat"): frozenset({PROCESSING}),
        (PROCESSING, "progress"): frozenset({PROCESSING}),
        (PROCESSING, "succeeded"): frozenset({COMPLETED}),
        (PROCESSING, "failed"): frozenset({PENDING, FAILED}),
        (PROCESSING, "lease_expired"): frozenset({PENDING, FAILED}),
        (PROCESSING, "released"): frozenset({PENDING}),
        (FAILED, "retry"): frozenset({PENDING}),
        (COMPLETED, "purge"): frozenset({COMPLETED}),
        (FAILED, "purge"): frozenset({FAILED}),
        (CANCELLED, "purge"): frozenset({CANCELLED}),
    }
)


def targets(status: Status | None, event_kind: str) -> frozenset[Status]:
    """The statuses `event_kind` may lead to from `status`; empty when the move is illegal."""
    return TRANSITIONS.get((status, event_kind), frozenset())


def is_terminal(status: Status) -> bool:
    return status in TERMINAL


def mermaid() -> str:
    """The state diagram of `TRANSITIONS` in Mermaid syntax (docs/explanation/lifecycle.md)."""
    lines = ["stateDiagram-v2"]
    for (source, kind), to in TRANSITIONS.items():
        for target in sorted(to):
            if source == target:
                continue  # self-loops (heartbeat, progress, purge) are listed below the diagram
            left = "[*]" if source is None else source.value
            label = kind
            if len(to) > 1:  # the retry policy chooses between the targets
                label += " (retry)" if target is PENDING else " (give up)"
            lines.append(f"    {left} --> {target.value}: {label}")
    lines.extend(f"    {s.value} --> [*]" for s in sorted(TERMINAL))
    return "\n".join(lines) + "\n"


def self_loops() -> list[tuple[Status, str]]:
    """(status, event kind) pairs that are legal but keep the status: updates in place."""
    return [
        (source, kind)
        for (source, kind), to in TRANSITIONS.items()
        if source is not None and to == frozenset({source})
    ]

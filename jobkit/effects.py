"""Effects: what a pipeline or the machine asks the shell to do, as frozen values.

Each docstring is the effect's contract: what a performer must do, what it
returns inside `Success`, and whether doing it twice is safe. A performer
returns `Failure(errors.Error)` for an expected failure, with `retryable` set.
"""

from __future__ import annotations

from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import _frozen

# -- pipeline effects ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class StatBlob:
    """Look up blob `key`. Returns `BlobInfo`. Missing blob: `Failure` code `not_found`,
    not retryable. Idempotent."""

    key: str


@attrs.frozen(kw_only=True)
class BlobInfo:
    """A stored blob: what `StatBlob` finds and `WriteBlob` made (a result's reference)."""

    key: str
    size: int
    content_type: str


@attrs.frozen(kw_only=True)
class ReadBlob:
    """Read the whole of blob `key`. Returns `bytes`. Missing blob: `Failure` code
    `not_found`, not retryable. Idempotent. For small blobs: large documents go to
    `Analyze` by key so that a performer can stream them or hand the store's URI on."""

    key: str


@attrs.frozen(kw_only=True)
class WriteBlob:
    """Store `data` at `key`, atomically: a reader sees the old blob or the new one,
    never a part. Returns the blob's `BlobInfo`. Idempotent: the key is deterministic
    per job and attempt, so a repeat overwrites the same bytes."""

    key: str
    data: bytes
    content_type: str


@attrs.frozen(kw_only=True)
class DeleteBlob:
    """Delete blob `key`. Returns `None`. Idempotent: a missing blob is a success."""

    key: str


@attrs.frozen(kw_only=True)
class Analyze:
    """Analyse the document at blob `key` with `instructions`, answering as JSON that
    fits `schema` when one is given. Returns an `Analysis`. May report progress on its
    own (page by page) through the worker. Not retryable: `corrupt_document`,
    `encrypted_document`, `too_many_pages`, `not_found` (no such blob); retryable: an
    overloaded or unreachable model, `rate_limited` or `unavailable`. Idempotent: it
    only reads."""

    key: str
    content_type: str
    instructions: str
    schema: PMap[str, Any] | None = attrs.field(default=None, converter=_frozen.optional_mapping)
    model: str | None = None


@attrs.frozen(kw_only=True)
class Analysis:
    """What `Analyze` returns: the model's output, facts about the document, usage.

    `model_version` and `finish_reason` are what a hosted model reported; `cost` is an
    estimate of what the call cost (`{"currency", "amount", ...}`), None where nothing
    was paid for.
    """

    model: str
    output: Any = attrs.field(converter=_frozen.anything)
    pages: int | None = None
    document: PMap[str, Any] = attrs.field(factory=pmap, converter=_frozen.mapping)
    usage: PMap[str, Any] = attrs.field(factory=pmap, converter=_frozen.mapping)
    model_version: str | None = None
    finish_reason: str | None = None
    cost: PMap[str, Any] | None = attrs.field(default=None, converter=_frozen.optional_mapping)


@attrs.frozen(kw_only=True)
class ReportProgress:
    """Record that `current` of `total` steps are done, with a short `message`.
    Returns `None`. Best effort: a lost report is not a failure. Idempotent."""

    current: int
    total: int
    message: str = ""


PipelineEffect = StatBlob | ReadBlob | WriteBlob | DeleteBlob | Analyze | ReportProgress

# -- lifecycle effects: what the machine asks for alongside a new job state -----


@attrs.frozen(kw_only=True)
class Lifecycle:
    """A lifecycle event happened (`created`, `started`, `completed`, `attempt_failed`,
    `stalled`, then `retried` or `failed`; `deferred`, `released`, `cancelled`, `requeued`,
    `purged`):
    count it and log it. Not idempotent (a counter): perform it once, after the state
    change is stored."""

    name: str
    job_id: str
    job_type: str
    queue: str
    attempt: int


@attrs.frozen(kw_only=True)
class DeleteJob:
    """Delete the record of job `job_id`, written at `version`. Returns `None`. Idempotent."""

    job_id: str
    version: int


MachineEffect = Lifecycle | DeleteBlob | DeleteJob

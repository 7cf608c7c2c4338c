"""What the shell logs about jobs: each lifecycle event at its level, a failed attempt with
its context, and the fields that say which job, user, request and worker a line is about.

The core does not log; the shell does, with the stdlib `logging` and structured fields in
`extra=`. Fields that hold for everything a task does (the request a handler serves, the
attempt a worker runs) live in a context variable (`bind`, `enter`, `update`): the
formatters (`jobkit_http.logs`) add them to every line that task writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from jobkit import documents, effects, errors, instants, jobs, machine

log = logging.getLogger("jobkit.jobs")

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "jobkit_log_context", default=None
)


def context() -> Mapping[str, Any]:
    """The fields bound to what the current task is doing (empty when none)."""
    return _CONTEXT.get() or {}


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[dict[str, Any]]:
    """Within the block, every line logged carries `fields` (on top of the outer ones). The
    dict yielded is the bound one: `update` adds to it, and whoever bound it sees that."""
    bound = {**context(), **fields}
    token = _CONTEXT.set(bound)
    try:
        yield bound
    finally:
        _CONTEXT.reset(token)


def begin(**fields: Any) -> dict[str, Any]:
    """Bind exactly `fields` for the rest of the current task (a request's, whose outer
    context is the server's), and return the bound dict for `update` to add to."""
    bound = dict(fields)
    _CONTEXT.set(bound)
    return bound


def enter(**fields: Any) -> None:
    """Bind `fields` for the rest of the current task (a task's context is its own copy)."""
    _CONTEXT.set({**context(), **fields})


def update(**fields: Any) -> None:
    """Add `fields` to the bound context in place (a handler that learns who the user is
    tells the middleware that logs the request); nothing when nothing is bound."""
    bound = _CONTEXT.get()
    if bound is not None:
        bound.update(fields)


# -- redaction -----------------------------------------------------------------------------

SECRET: Final = re.compile(
    r"secret|token|passw|api.?key|authori[sz]ation|credential|private|cookie|signature",
    re.IGNORECASE,
)
LONGEST_TEXT: Final = 200  # longer texts are documents, not parameters: shown by length only
REDACTED: Final = "[redacted]"


def redact(value: Any) -> Any:
    """`value` as plain JSON data safe to log: values under secret-looking keys hidden, long
    texts (a document's contents) cut to their length, bytes never shown."""
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if SECRET.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple) or type(value).__name__ == "PVector":
        return [redact(item) for item in value]
    if isinstance(value, str) and len(value) > LONGEST_TEXT:
        return f"[{len(value)} characters]"
    if isinstance(value, bytes | bytearray):
        return f"[{len(value)} bytes]"
    return value


# -- a failed attempt's point of failure -------------------------------------------------------


@attrs.frozen(kw_only=True)
class FailurePoint:
    """Where an attempt failed: the effect being performed (None: the pipeline itself
    decided), the step it had reported (its last progress message), and the exception of a
    crash (a bug in a pipeline or performer)."""

    effect: str | None = None
    step: str | None = None
    exception: BaseException | None = None


# -- lifecycle lines ---------------------------------------------------------------------------

LEVELS: Final = {
    "created": logging.INFO,
    "started": logging.INFO,
    "completed": logging.INFO,
    "attempt_failed": logging.ERROR,
    "stalled": logging.WARNING,
    "retried": logging.INFO,
    "failed": logging.ERROR,
    "released": logging.INFO,
    "cancelled": logging.INFO,
    "requeued": logging.INFO,
    "purged": logging.INFO,
}


def record(
    done: machine.Effects,
    job: jobs.Job,
    *,
    worker_id: str | None = None,
    failure: FailurePoint | None = None,
) -> None:
    """Log the lifecycle effects of one stored change of `job` (the job as written), each
    at its level: INFO for transitions, WARNING for a stall, ERROR for a failed attempt
    (with the job's parameters, input, the point of failure and the error) and a failed job."""
    for effect in done:
        if type(effect) is not effects.Lifecycle:
            continue
        level = LEVELS.get(effect.name, logging.INFO)
        if not log.isEnabledFor(level):
            continue
        fields: dict[str, Any] = {
            "event": effect.name,
            "jobId": effect.job_id,
            "userId": jobs.user_id(job),
            "jobType": effect.job_type,
            "queue": effect.queue,
            "attempt": effect.attempt or None,  # none before the first claim
            "status": jobs.STATUS_TEXTS[jobs.status(job)] if effect.name != "purged" else None,
        }
        if worker_id is not None:
            fields["workerId"] = worker_id
        message, more, exc = _detail(effect, job, failure)
        fields.update(more)
        log.log(level, message, extra=fields, exc_info=exc)


def _entry(job: jobs.Job, attempt: int) -> jobs.Entry | None:
    history = jobs.history(job)
    return history[attempt - 1] if 0 < attempt <= len(history) else None


def _detail(
    effect: effects.Lifecycle, job: jobs.Job, failure: FailurePoint | None
) -> tuple[str, dict[str, Any], BaseException | None]:
    """The message and the extra fields of one lifecycle line."""
    name = effect.name
    entry = _entry(job, effect.attempt)
    if name == "completed" and entry is not None:
        seconds = _seconds(entry)
        return f"job completed in {seconds:.3g} s", {"seconds": seconds}, None
    if name in {"attempt_failed", "stalled"}:
        return _failed_attempt(effect, job, entry, failure)
    if name == "retried":
        at = jobs.run_at(job)
        return f"job retries at {instants.format(at)}", {"nextRunAt": instants.format(at)}, None
    if name == "failed":
        err = jobs.error(job)
        said = "" if err is None else f": {err.code}: {err.message}"
        fields = {"code": None if err is None else err.code, "attempts": jobs.attempts(job)}
        return f"job failed after {jobs.attempts(job)} attempts{said}", fields, None
    if name == "released":
        return "job released: its worker is stopping, another takes it", {}, None
    return f"job {name}", {}, None


def _failed_attempt(
    effect: effects.Lifecycle,
    job: jobs.Job,
    entry: jobs.Entry | None,
    failure: FailurePoint | None,
) -> tuple[str, dict[str, Any], BaseException | None]:
    err = None if entry is None else jobs.entry_error(entry)
    if err is None:
        err = jobs.error(job)
    source = jobs.input(job)
    fields: dict[str, Any] = {
        "params": redact(jobs.params(job)),
        "input": None if source is None else redact(documents.input_to_document(source)),
        "error": None if err is None else errors.to_document(err),
        "code": None if err is None else err.code,
        "retryable": None if err is None else err.retryable,
        "maxAttempts": jobs.max_attempts(job),
    }
    if entry is not None:
        fields["seconds"] = _seconds(entry)
    if failure is not None:
        fields["effect"] = failure.effect or "pipeline"
        fields["step"] = failure.step
    said = "" if err is None else f": {err.code}: {err.message}"
    if effect.name == "stalled":
        owner = None if entry is None else jobs.entry_worker(entry)
        fields["leaseOwner"] = owner
        return f"job stalled: worker {owner} stopped renewing its lease", fields, None
    where = "" if failure is None else f" in {failure.effect or 'the pipeline'}"
    message = f"attempt {effect.attempt} of {jobs.max_attempts(job)} failed{where}{said}"
    return message, fields, None if failure is None else failure.exception


def _seconds(entry: jobs.Entry) -> float:
    """How long the attempt ran (0 while it runs)."""
    ended = jobs.entry_ended_at(entry)
    if ended is None:
        return 0.0
    return round(instants.seconds_between(jobs.entry_started_at(entry), ended), 6)

"""Validating a submission into a job draft: types, ranges, sizes and unknown fields."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyrsistent import pmap
from pyrsistent.typing import PMap
from returns.result import Failure, Result, Success

from jobkit import _frozen, errors, instants, jobs, registry, retry

QUEUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ACCEPTED = frozenset(
    {"type", "params", "priority", "queue", "runAt", "delaySeconds", "maxAttempts", "metadata"}
)
MAX_PARAMS_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_KEYS = 64
MAX_KEY_LENGTH = 128
MAX_ATTEMPTS = retry.MAX_ATTEMPTS
MAX_DELAY_SECONDS = 366 * 24 * 3600.0

Problems = list[errors.Problem]


def _plain(value: Any) -> bool:
    """Only what JSON round-trips unchanged: string keys, no tuples or other types."""
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _json_size(value: Any) -> int | None:
    """Encoded size in bytes, or None when `value` is not plain finite JSON."""
    if not _plain(value):
        return None
    try:
        return len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        return None


_EMPTY: PMap[str, Any] = pmap()


def _object(
    request: Mapping[str, Any], name: str, limit: int, problems: Problems
) -> PMap[str, Any] | None:
    value = request.get(name, {})
    if not isinstance(value, Mapping):
        problems.append(errors.Problem(field=name, message="must be an object"))
        return None
    if not value:  # the common case, `{}` (2 bytes, plain): spare it the encoding
        return _EMPTY
    size = _json_size(value)
    if size is None:
        problems.append(errors.Problem(field=name, message="must hold only finite JSON values"))
        return None
    if size > limit:
        problems.append(errors.Problem(field=name, message=f"is {size} bytes; at most {limit}"))
        return None
    return _frozen.freeze(dict(value))  # type: ignore[no-any-return]


def _integer(
    request: Mapping[str, Any], name: str, default: int, low: int, high: int, problems: Problems
) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(errors.Problem(field=name, message="must be an integer"))
        return default
    if not low <= value <= high:
        problems.append(errors.Problem(field=name, message=f"must be within {low}..{high}"))
        return default
    return value


def _run_at(request: Mapping[str, Any], now: datetime, problems: Problems) -> datetime:
    if "runAt" in request and "delaySeconds" in request:
        problems.append(
            errors.Problem(field="runAt", message="give runAt or delaySeconds, not both")
        )
        return now
    if "runAt" in request:
        value = request["runAt"]
        try:
            if not isinstance(value, str):
                raise TypeError
            return instants.parse(value)
        except (TypeError, ValueError):
            message = "must be an ISO 8601 instant with an offset, e.g. 2030-01-01T09:00:00Z"
            problems.append(errors.Problem(field="runAt", message=message))
            return now
    delay = request.get("delaySeconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
        problems.append(errors.Problem(field="delaySeconds", message="must be a number"))
        return now
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        limit = f"0..{MAX_DELAY_SECONDS:.0f}"
        problems.append(errors.Problem(field="delaySeconds", message=f"must be within {limit}"))
        return now
    return instants.plus(now, float(delay))


def _metadata(request: Mapping[str, Any], problems: Problems) -> PMap[str, Any]:
    value = _object(request, "metadata", MAX_METADATA_BYTES, problems)
    if value is None:
        return pmap()
    if len(value) > MAX_METADATA_KEYS:
        problems.append(
            errors.Problem(field="metadata", message=f"at most {MAX_METADATA_KEYS} keys")
        )
    for key in value:
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            message = f"keys must be 1..{MAX_KEY_LENGTH} characters"
            problems.append(errors.Problem(field="metadata", message=message))
            break
    return value


def new_job(
    request: Mapping[str, Any],
    *,
    types: registry.Registry,
    job_id: str,
    user_id: str,
    now: datetime,
    input: jobs.Input | None = None,  # noqa: A002 - the JSON name
    accepted: frozenset[str] = ACCEPTED,
    idempotency: Mapping[str, str] | None = None,
) -> Result[jobs.Job, errors.Invalid]:
    """Validate a submission; every problem found is reported, not just the first.

    `input` describes an uploaded document and is set by the shell, never by the
    request body. `accepted` lets an endpoint take extra fields it handles itself.
    """
    problems: Problems = [
        errors.Problem(field=name, message="unknown field")
        for name in sorted(set(request) - accepted)
    ]
    type_value = request.get("type")
    job_type: registry.JobType | None = None
    if not isinstance(type_value, str):
        problems.append(errors.Problem(field="type", message="is required and must be a string"))
    else:
        match registry.lookup(types, type_value):
            case Success(found):
                job_type = found
            case Failure(refused):
                problems.extend(refused.problems)
    raw_params = _object(request, "params", MAX_PARAMS_BYTES, problems)
    params: PMap[str, Any] = pmap()
    if job_type is not None and raw_params is not None:
        match job_type.validate_params(raw_params):
            case Success(checked):
                params = checked
            case Failure(refused):
                problems.extend(
                    errors.Problem(field=f"params/{p.field}", message=p.message)
                    for p in refused.problems
                )
    if job_type is not None and job_type.input_required and input is None:
        problems.append(
            errors.Problem(field="input", message=f"job type {job_type.name!r} needs a document")
        )
    default_priority = job_type.priority if job_type else 50
    default_attempts = job_type.retry.max_attempts if job_type else 1
    priority = _integer(request, "priority", default_priority, 0, 100, problems)
    max_attempts = _integer(request, "maxAttempts", default_attempts, 1, MAX_ATTEMPTS, problems)
    queue = request.get("queue", job_type.queue if job_type else "default")
    if not isinstance(queue, str) or not QUEUE.fullmatch(queue):
        problems.append(errors.Problem(field="queue", message=f"must match {QUEUE.pattern}"))
    run_at = _run_at(request, now, problems)
    metadata = _metadata(request, problems)
    if problems or job_type is None:
        return Failure(errors.Invalid(problems=tuple(problems)))
    return Success(
        jobs.draft(
            job_id=job_id,
            user_id=user_id,
            type_name=job_type.name,
            params=params,
            priority=priority,
            queue=str(queue),
            run_at=run_at,
            max_attempts=max_attempts,
            metadata=metadata,
            input=input,
            now=now,
            idempotency=idempotency,
        )
    )

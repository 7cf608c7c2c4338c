"""The `/api/v1` endpoints: thin handlers from HTTP to the core's commands and back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import uuid
from datetime import datetime
from typing import Any

from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from jobkit import (
    effects,
    errors,
    events,
    instants,
    jobs,
    listing,
    pipeline,
    ports,
    status,
    submission,
)
from jobkit.worker import commands
from jobkit_http import uploads
from jobkit_http.limits import MAX_JSON_DEPTH, limited, too_deep
from jobkit_http.metrics import Metrics
from jobkit_http.problems import Problem, invalid
from jobkit_http.service import Service

PREFIX = "/api/v1"
JSON_LIMIT = 1024 * 1024
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3c1e-7d8a-4f5e-9a44-0b6f2d8f3a10")
MAX_IDEMPOTENCY_KEY = 255
MAX_CURSOR = 512  # issued cursors are ~150 characters; longer ones are refused unparsed
LIST_PARAMS = frozenset({"status", "type", "createdFrom", "createdTo", "sort", "limit", "cursor"})
SORTS: dict[str, tuple[listing.SortField, bool]] = {
    "createdAt": ("createdAt", False),
    "-createdAt": ("createdAt", True),
    "priority": ("priority", False),
    "-priority": ("priority", True),
}


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


async def principal_of(request: Request) -> str:
    """The caller's user id, or a `401`/`403` problem."""
    match await service(request).authenticator.authenticate(request.headers.get("authorization")):
        case Success(principal):
            user: str = principal.user_id
            return user
        case Failure(failure):
            raise Problem(
                failure.status,
                "unauthorized" if failure.status == 401 else "forbidden",
                failure.detail,
                title=failure.title,
                headers={"WWW-Authenticate": failure.www_authenticate},
            )
    raise AssertionError("unreachable")


def job_id_of(request: Request) -> str:
    raw = request.path_params["job_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, "not-found", f"no job {raw!r}: job ids are UUIDs") from None


async def owned_job(request: Request, user: str) -> jobs.Job:
    """The caller's job; another user's job is reported exactly like a missing one."""
    job_id = job_id_of(request)
    job = await commands.owned(service(request).runtime.store, job_id, user)
    if job is None:
        raise Problem(404, "not-found", f"no job {job_id}")
    return job


def links(job_id: str) -> dict[str, str]:
    return {
        "jobUrl": f"{PREFIX}/jobs/{job_id}",
        "statusUrl": f"{PREFIX}/jobs/{job_id}/status",
        "resultUrl": f"{PREFIX}/jobs/{job_id}/result",
    }


def document(job: jobs.Job) -> dict[str, Any]:
    """The job as served: its document, with links the client can follow.

    `resultUrl` is the API's result endpoint, not the storage location: clients
    fetch through the API (which checks who asks), and the server's layout stays
    its own.
    """
    served = {**jobs.to_document(job), "links": links(jobs.id(job))}
    if served["resultUrl"] is not None:
        served["resultUrl"] = served["links"]["resultUrl"]
    return served


def accepted(job: jobs.Job, *, replayed: bool = False) -> JSONResponse:
    job_id = jobs.id(job)
    headers = {"Location": f"{PREFIX}/jobs/{job_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    body = {"id": job_id, "status": jobs.status(job).value, **links(job_id)}
    return JSONResponse(body, status_code=202, headers=headers)


def refused(refusal: commands.Refused) -> Problem:
    match refusal:
        case commands.NotFound(job_id=job_id):
            return Problem(404, "not-found", f"no job {job_id}")
        case errors.JobError(code=code, message=message, status=current):
            return Problem(409, "conflict", message, code=code, jobStatus=current)
    raise AssertionError("unreachable")


# -- submission ---------------------------------------------------------------------


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem(
            422,
            "invalid-request",
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return key


def fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def submit_draft(request: Request, user: str, key: str | None, draft: jobs.Job) -> Response:
    """Store a validated draft, honouring the Idempotency-Key the draft was built for."""
    svc = service(request)
    now = svc.clock()
    match_ = await _replay(svc, user, key, draft)
    if match_ is not None:
        return match_
    job = await commands.submit_new(svc.runtime.store, draft, now)
    if job is None:  # lost an insert race to the same key in another process
        replay = await _replay(svc, user, key, draft)
        if replay is not None:
            return replay
        raise Problem(409, "conflict", "a request with this Idempotency-Key is in progress")
    svc.submitted(job)
    count(request, "created", job)
    return accepted(job)


def count(request: Request, name: str, job: jobs.Job) -> None:
    """Count the lifecycle event of a user's command. The worker's events reach the metrics
    through its `on_effect`; `commands` keeps the machine's effects to itself, so the names
    here mirror the machine's (`created`, `cancelled`, `requeued`, `purged`)."""
    metrics: Metrics = request.app.state.metrics
    metrics.on_lifecycle(
        effects.Lifecycle(
            name=name,
            job_id=jobs.id(job),
            job_type=jobs.type_name(job),
            queue=jobs.queue(job),
            attempt=jobs.attempts(job),
        )
    )


async def _replay(svc: Service, user: str, key: str | None, draft: jobs.Job) -> Response | None:
    if key is None:
        return None
    existing = await commands.owned(svc.runtime.store, jobs.id(draft), user)
    if existing is None:
        return None
    stored = jobs.idempotency(existing)
    wanted = jobs.idempotency(draft)
    if stored is None or wanted is None or stored.get("fingerprint") != wanted.get("fingerprint"):
        raise Problem(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request",
        )
    return accepted(existing, replayed=True)


def new_job_id(user: str, key: str | None) -> str:
    """Random, or derived from (user, key) so that a retried request finds its first job."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user}\n{key}"))


async def create_job(request: Request) -> Response:
    user = await principal_of(request)
    key = idempotency_key(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, "unsupported-media-type", "send the job as application/json")
    body = await limited(request, JSON_LIMIT).body()
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "malformed-json", "the body is nested too deeply to parse") from None
    if not isinstance(payload, dict):
        raise Problem(422, "invalid-request", "the body must be a JSON object")
    if too_deep(payload):
        raise Problem(422, "invalid-request", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    svc = service(request)
    job_id = new_job_id(user, key)
    token = None if key is None else {"key": key, "fingerprint": fingerprint(body)}
    async with svc.in_flight(user, key):
        return await validate_and_submit(request, user, key, job_id, payload, token=token)


async def validate_and_submit(
    request: Request,
    user: str,
    key: str | None,
    job_id: str,
    fields: dict[str, Any],
    *,
    source: dict[str, Any] | None = None,
    token: dict[str, str] | None = None,
) -> Response:
    """`422` for an invalid submission, else store it (honouring its Idempotency-Key)."""
    svc = service(request)
    checked = submission.new_job(
        fields,
        types=svc.runtime.types,
        job_id=job_id,
        user_id=user,
        now=svc.clock(),
        input=source,
        idempotency=token,
    )
    match checked:
        case Failure(problems):
            raise invalid(problems.problems)
        case Success(draft):
            return await submit_draft(request, user, key, draft)
    raise AssertionError("unreachable")


async def create_pdf_job(request: Request) -> Response:
    user = await principal_of(request)
    key = idempotency_key(request)
    svc = service(request)
    job_id = new_job_id(user, key)
    # A keyed request may name a job that exists (a replay, or the key reused with another
    # file): its upload gets a blob of its own, so it can never overwrite the document that
    # job was accepted with; the blob is kept only if the job stored under `job_id` uses it.
    folder = job_id if key is None else f"{job_id}/{uuid.uuid4().hex}"
    async with svc.in_flight(user, key):
        upload = await uploads.receive_pdf(
            limited(request, svc.settings.max_upload_bytes + uploads.FORM_OVERHEAD),
            svc.runtime.blobs,
            pipeline.input_key(folder, "pdf"),
            svc.settings.max_upload_bytes,
        )
        try:
            request_fields, params = uploads.job_request(upload.fields)
            token = None
            if key is not None:
                form = json.dumps(upload.fields, sort_keys=True).encode()
                token = {"key": key, "fingerprint": fingerprint(form, upload.sha256.encode())}
            fields = {**request_fields, "type": "pdf-analysis", "params": params}
            return await validate_and_submit(
                request, user, key, job_id, fields, source=upload.input, token=token
            )
        finally:
            stored = await svc.runtime.store.get(job_id)
            source = None if stored is None else jobs.input(stored)
            used = None if source is None else source.get("blob")
            if used != upload.input["blob"]:  # nothing refers to the upload: do not keep it
                await svc.runtime.blobs.delete(upload.input["blob"])
    raise AssertionError("unreachable")


# -- reading ---------------------------------------------------------------------------


def _instant(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return instants.parse(raw)
    except ValueError:
        raise invalid(
            [errors.Problem(field=name, message="must be an ISO 8601 instant with an offset")]
        ) from None


def list_query(request: Request) -> listing.Query:
    params = request.query_params
    problems = [
        errors.Problem(field=name, message="unknown query parameter")
        for name in sorted(set(params) - LIST_PARAMS)
    ]
    statuses: set[status.Status] = set()
    for value in params.getlist("status"):
        for part in filter(None, value.split(",")):
            try:
                statuses.add(status.Status(part))
            except ValueError:
                known = ", ".join(s.value for s in status.Status)
                problems.append(
                    errors.Problem(field="status", message=f"{part!r} is not one of {known}")
                )
    types = frozenset(p for value in params.getlist("type") for p in value.split(",") if p)
    sort = params.get("sort", "-createdAt")
    if sort not in SORTS:
        problems.append(errors.Problem(field="sort", message=f"must be one of {', '.join(SORTS)}"))
        sort = "-createdAt"
    limit_raw = params.get("limit", "20")
    limit = int(limit_raw) if limit_raw.isascii() and limit_raw.isdigit() else 0
    if not 1 <= limit <= listing.MAX_LIMIT:
        problems.append(
            errors.Problem(
                field="limit", message=f"must be an integer within 1..{listing.MAX_LIMIT}"
            )
        )
        limit = 20
    if problems:
        raise invalid(problems, "the query has invalid parameters")
    field, descending = SORTS[sort]
    query = listing.Query(
        statuses=frozenset(statuses),
        types=types,
        created_from=_instant(request, "createdFrom"),
        created_to=_instant(request, "createdTo"),
        sort=field,
        descending=descending,
        limit=limit,
    )
    cursor = params.get("cursor")
    if cursor is None:
        return query
    if len(cursor) > MAX_CURSOR:
        raise invalid(
            [errors.Problem(field="cursor", message="is not a cursor this service issued")],
            "the cursor is not valid for this query",
        )
    match listing.decode_cursor(cursor, query):
        case Success(continued):
            found: listing.Query = continued
            return found
        case Failure(bad):
            raise invalid(bad.problems, "the cursor is not valid for this query")
    raise AssertionError("unreachable")


async def list_jobs(request: Request) -> Response:
    user = await principal_of(request)
    query = list_query(request)
    page = await service(request).runtime.store.list(user, query)
    return JSONResponse(
        {"jobs": [document(job) for job in page.jobs], "nextCursor": page.next_cursor}
    )


async def get_job(request: Request) -> Response:
    user = await principal_of(request)
    return JSONResponse(document(await owned_job(request, user)))


def status_document(job: jobs.Job) -> dict[str, Any]:
    """What a poller needs, and no more."""
    err = jobs.error(job)
    result = jobs.result(job)
    job_id = jobs.id(job)
    return {
        "id": job_id,
        "status": jobs.status(job).value,
        "progress": None if jobs.progress(job) is None else dict(jobs.progress(job) or {}),
        "attempts": jobs.attempts(job),
        "maxAttempts": jobs.max_attempts(job),
        "nextRunAt": instants.format_or_none(jobs.next_run_at(job)),
        "resultUrl": links(job_id)["resultUrl"] if result and result.get("resultKey") else None,
        "error": None if err is None else errors.to_document(err),
        "updatedAt": instants.format(jobs.updated_at(job)),
        "version": jobs.version(job),
    }


def etag(job: jobs.Job) -> str:
    return f'"v{jobs.version(job)}"'


def retry_after(job: jobs.Job, now: datetime) -> str | None:
    """How long a poller should wait: until the next run, or a second while running."""
    current = jobs.status(job)
    if status.is_terminal(current):
        return None
    if current == status.PENDING:
        seconds = instants.seconds_between(now, jobs.run_at(job))
        return str(min(max(1, math.ceil(seconds)), 60))
    return "1"


def wait_seconds(request: Request, longest: float) -> float:
    raw = request.query_params.get("wait")
    extra = set(request.query_params) - {"wait"}
    if extra:
        raise invalid(
            [
                errors.Problem(field=name, message="unknown query parameter")
                for name in sorted(extra)
            ]
        )
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= longest:
        raise invalid(
            [
                errors.Problem(
                    field="wait", message=f"must be a number of seconds within 0..{longest:g}"
                )
            ]
        )
    return seconds


async def get_status(request: Request) -> Response:
    user = await principal_of(request)
    svc = service(request)
    wait = wait_seconds(request, svc.settings.long_poll_max_seconds)
    job = await owned_job(request, user)
    seen = request.headers.get("if-none-match")
    if wait > 0:
        since = seen if seen is not None else etag(job)
        job = await svc.wait_for_change(job, since, wait)
    headers = {"ETag": etag(job), "Cache-Control": "no-cache"}
    after = retry_after(job, svc.clock())
    if after is not None:
        headers["Retry-After"] = after
    if seen is not None and etag(job) in {tag.strip() for tag in seen.split(",")}:
        return Response(status_code=304, headers=headers)
    return JSONResponse(status_document(job), headers=headers)


async def get_result(request: Request) -> Response:
    user = await principal_of(request)
    job = await owned_job(request, user)
    result = jobs.result(job)
    if jobs.status(job) != status.COMPLETED:
        raise Problem(
            409,
            "not-completed",
            f"the job is {jobs.status(job).value}; its result exists once it has completed",
            jobStatus=jobs.status(job).value,
        )
    key = None if result is None else result.get("resultKey")
    if not isinstance(key, str):
        raise Problem(404, "no-result", "this job completed without a result document")
    blobs = service(request).runtime.blobs
    try:
        chunks = await blobs.get(key)
    except ports.BlobNotFound:
        raise Problem(
            404, "no-result", "the result document is gone (deleted or expired)"
        ) from None
    return StreamingResponse(chunks, media_type="application/json")


# -- management --------------------------------------------------------------------


async def _command(request: Request, event: events.Event, counted: str) -> jobs.Job:
    user = await principal_of(request)
    svc = service(request)
    match await commands.apply(
        svc.runtime.store,
        svc.runtime.blobs,
        job_id_of(request),
        event,
        user_id=user,
        clock=svc.clock,
    ):
        case Success(job):
            found: jobs.Job = job
            count(request, counted, found)
            return found
        case Failure(refusal):
            raise refused(refusal)
    raise AssertionError("unreachable")


async def cancel_job(request: Request) -> Response:
    return JSONResponse(document(await _command(request, events.CancelRequested(), "cancelled")))


async def retry_job(request: Request) -> Response:
    job = await _command(request, events.RetryRequested(), "requeued")
    service(request).submitted(job)
    return JSONResponse(document(job))


async def delete_record(request: Request) -> Response:
    await _command(request, events.Purged(), "purged")
    return Response(status_code=204)


# -- operations -------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        async with asyncio.timeout(2):
            await service(request).runtime.store.get("00000000-0000-0000-0000-000000000000")
    except Exception as exc:  # any failure means not ready; say which
        raise Problem(
            503, "not-ready", f"the job store is not answering: {type(exc).__name__}"
        ) from None
    return JSONResponse({"status": "ready"})

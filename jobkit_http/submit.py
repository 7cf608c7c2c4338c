"""Submission endpoints: `POST /jobs` and `POST /pdf-processing`, with Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import Response

from jobkit import jobs, pipeline, submission
from jobkit.worker import commands
from jobkit_http import direct, uploads
from jobkit_http.api import accepted, principal_of, service
from jobkit_http.limits import MAX_JSON_DEPTH, limited, too_deep
from jobkit_http.problems import Problem, invalid
from jobkit_http.service import Service

JSON_LIMIT = 1024 * 1024
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3c1e-7d8a-4f5e-9a44-0b6f2d8f3a10")
MAX_IDEMPOTENCY_KEY = 255


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
    job = await commands.submit_new(svc.runtime.store, draft, now, svc.on_effect)
    if job is None:  # lost an insert race to the same key in another process
        replay = await _replay(svc, user, key, draft)
        if replay is not None:
            return replay
        raise Problem(409, "conflict", "a request with this Idempotency-Key is in progress")
    svc.submitted(job)
    return accepted(job)


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
        return commands.new_id()
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user}\n{key}"))


async def admit(svc: Service, user: str, key: str | None, job_id: str) -> None:
    """The user's quota, checked before any body is read; a request whose Idempotency-Key
    names a job of theirs creates none (it is replayed or refused), so it is not counted."""
    if svc.admission.enabled and (
        key is None or await commands.owned(svc.runtime.store, job_id, user) is None
    ):
        await svc.admission.check(user)


async def create_job(request: Request) -> Response:
    user = await principal_of(request)
    key = idempotency_key(request)
    await admit(service(request), user, key, new_job_id(user, key))
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
    token = None if key is None else {"key": key, "fingerprint": fingerprint(body)}
    if "input" in payload:  # a direct upload names its document
        async with svc.in_flight(user, key):
            return await direct.submit_upload(request, user, payload, token)
    job_id = new_job_id(user, key)
    async with svc.in_flight(user, key):
        return await validate_and_submit(request, user, key, job_id, payload, token=token)


async def validate_and_submit(
    request: Request,
    user: str,
    key: str | None,
    job_id: str,
    fields: dict[str, Any],
    *,
    source: jobs.Input | None = None,
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
    await admit(svc, user, key, job_id)
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
            used = None if source is None else source.blob
            if used != upload.input.blob:  # nothing refers to the upload: do not keep it
                await svc.runtime.blobs.delete(upload.input.blob)
    raise AssertionError("unreachable")


# -- reading ---------------------------------------------------------------------------

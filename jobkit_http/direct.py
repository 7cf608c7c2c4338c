"""Direct uploads: a signed URL to put a large PDF straight into the blob store, then a job
that names it (`POST /jobs` with `"input": {"upload": id}`), checked before it is accepted.

An upload's object is `uploads/{owner}/{id}/document.pdf`, where `owner` is a digest of the
user id (a user can name only their own uploads: the key is built from the caller) and `id`
is a fresh UUID that becomes the id of the job made from it. So an upload makes at most one
job (a second submission finds that job: a replay with the same Idempotency-Key and body,
else `409`), and the orphan sweep knows which job keeps an upload, as for `inputs/`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobkit import errors, instants, jobs, ports, submission
from jobkit.jobtypes import pdf
from jobkit.worker import commands
from jobkit_http import signing, uploads
from jobkit_http.api import accepted, principal_of, service
from jobkit_http.limits import limited
from jobkit_http.problems import Problem, invalid

PREFIX = "uploads/"
CONTENT_TYPE = "application/pdf"
REQUEST_LIMIT = 4096
FIELDS = frozenset({"size", "contentType", "resumable"})
INPUT_FIELDS = frozenset({"upload", "filename"})


def owner_of(user: str) -> str:
    """The user's folder under `uploads/`: a digest, so any user id makes a safe key."""
    return hashlib.sha256(user.encode()).hexdigest()[:32]


def object_key(owner: str, upload_id: str) -> str:
    return f"{PREFIX}{owner}/{upload_id}/document.pdf"


def upload_id_of(raw: object) -> str | None:
    """The canonical form of an upload id (a UUID), or None."""
    if not isinstance(raw, str):
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def signer(request: Request) -> signing.UploadSigner:
    found: signing.UploadSigner | None = getattr(request.app.state, "signer", None)
    if found is None:
        raise Problem(503, "not-ready", "the service is starting: try again")
    return found


async def _json_object(request: Request, limit: int) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, "unsupported-media-type", "send the request as application/json")
    body = await limited(request, limit).body()
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Problem(400, "malformed-json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Problem(422, "invalid-request", "the body must be a JSON object")
    return payload


async def create_upload(request: Request) -> Response:
    """`POST /uploads`: `{"size": bytes, "contentType"?: "application/pdf", "resumable"?: bool}`
    → `201` with the upload's id, and the method, URL and headers to upload it with."""
    user = await principal_of(request)
    svc = service(request)
    payload = await _json_object(request, REQUEST_LIMIT)
    problems = [
        errors.Problem(field=name, message="unknown field")
        for name in sorted(set(payload) - FIELDS)
    ]
    size = payload.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        problems.append(errors.Problem(field="size", message="must be an integer >= 1"))
    resumable = payload.get("resumable", False)
    if not isinstance(resumable, bool):
        problems.append(errors.Problem(field="resumable", message="must be a boolean"))
    if problems or not isinstance(size, int):
        raise invalid(problems, "the upload request is not valid")
    if payload.get("contentType", CONTENT_TYPE) != CONTENT_TYPE:
        raise Problem(415, "unsupported-media-type", f"only {CONTENT_TYPE} can be uploaded")
    limit = svc.settings.max_upload_bytes
    if size > limit:
        raise Problem(413, "too-large", f"the file is larger than {limit} bytes")
    upload_id = str(uuid.uuid4())
    owner = owner_of(user)
    key = object_key(owner, upload_id)
    now = svc.clock()
    expires_at = instants.plus(now, svc.settings.upload_url_seconds)
    signed = await signer(request).sign(
        key,
        route=str(request.url_for("put_upload", owner=owner, upload_id=upload_id)),
        content_type=CONTENT_TYPE,
        max_bytes=limit,
        expires_at=expires_at,
        resumable=resumable,
    )
    body = {
        "upload": upload_id,
        "method": signed.method,
        "url": signed.url,
        "headers": signed.headers,
        "resumable": signed.resumable,
        "expiresAt": instants.format(expires_at),
        "maxBytes": limit,
    }
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


async def put_upload(request: Request) -> Response:
    """`PUT /uploads/{owner}/{id}?expires&max&signature` (the embedded default's signed URL):
    the body streamed to the blob store, at most `max` bytes, once."""
    svc = service(request)
    local = signer(request)
    if not isinstance(local, signing.LocalSigner):
        raise Problem(404, "not-found", "uploads go straight to the bucket on this service")
    owner = request.path_params["owner"]
    upload_id = upload_id_of(request.path_params["upload_id"])
    if upload_id is None or len(owner) != 32 or not all(c in "0123456789abcdef" for c in owner):
        raise Problem(404, "not-found", "no such upload URL")
    key = object_key(owner, upload_id)
    query = request.query_params
    try:
        expires, max_bytes = int(query["expires"]), int(query["max"])
        signature = query["signature"]
    except (KeyError, ValueError):
        raise Problem(403, "bad-signature", "the URL is not a signed upload URL") from None
    if not local.verify(key, CONTENT_TYPE, max_bytes, expires, signature):
        raise Problem(403, "bad-signature", "the URL's signature does not match it")
    if svc.clock().timestamp() > expires:
        raise Problem(403, "url-expired", "the upload URL has expired: ask for a new one")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != CONTENT_TYPE:
        raise Problem(415, "unsupported-media-type", f"send the file as {CONTENT_TYPE}")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise Problem(413, "too-large", f"the file is larger than {max_bytes} bytes")
    blobs = svc.runtime.blobs
    if await _exists(blobs, key):  # created once, as `x-goog-if-generation-match: 0` on GCS
        raise Problem(409, "upload-exists", "this upload is done: ask for a new URL")
    try:
        size = await blobs.put(key, request.stream(), CONTENT_TYPE, max_bytes=max_bytes)
    except ports.BlobTooLarge:
        raise Problem(413, "too-large", f"the file is larger than {max_bytes} bytes") from None
    return JSONResponse({"upload": upload_id, "size": size}, status_code=201)


async def _exists(blobs: ports.BlobStore, key: str) -> bool:
    try:
        await blobs.stat(key)
    except ports.BlobNotFound:
        return False
    return True


async def _head(blobs: ports.BlobStore, key: str, size: int) -> bytes:
    """The first bytes of the blob, enough to check its magic."""
    head = b""
    stream = await blobs.get(key)
    try:
        async for chunk in stream:
            head += chunk
            if len(head) >= size:
                break
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return head[:size]


def _input_spec(raw: object) -> tuple[str, str]:
    """(upload id, filename) from a submission's `input`; `422` if it is not one."""
    if not isinstance(raw, dict):
        raise invalid([errors.Problem(field="input", message="must be an object")])
    problems = [
        errors.Problem(field=f"input/{name}", message="unknown field")
        for name in sorted(set(raw) - INPUT_FIELDS)
    ]
    upload_id = upload_id_of(raw.get("upload"))
    if upload_id is None:
        message = "must be the id POST /api/v1/uploads returned"
        problems.append(errors.Problem(field="input/upload", message=message))
    filename = raw.get("filename", "document.pdf")
    if not isinstance(filename, str):
        message = "must be a string"
        problems.append(errors.Problem(field="input/filename", message=message))
    if problems or upload_id is None or not isinstance(filename, str):
        raise invalid(problems)
    return upload_id, uploads.safe_name(filename)


def _replayed(existing: jobs.Job, token: dict[str, str] | None) -> Response:
    stored = jobs.idempotency(existing)
    if token is not None and stored is not None and stored.get("key") == token["key"]:
        if stored.get("fingerprint") != token["fingerprint"]:
            raise Problem(
                422,
                "idempotency-key-reused",
                "this Idempotency-Key was used with a different request",
            )
        return accepted(existing, replayed=True)
    raise Problem(
        409,
        "upload-consumed",
        f"upload {jobs.id(existing)} was submitted already: it is job {jobs.id(existing)}",
    )


async def submit_upload(
    request: Request, user: str, payload: dict[str, Any], token: dict[str, str] | None
) -> Response:
    """`POST /jobs` naming an upload: the job gets the upload's id, and its object as input,
    once the object is checked (there, the caller's, at most the limit, a PDF). `token`: the
    request's Idempotency-Key and fingerprint, if it has a key."""
    svc = service(request)
    fields = {name: value for name, value in payload.items() if name != "input"}
    if fields.get("type") != pdf.NAME:
        message = f"an upload is the document of a {pdf.NAME!r} job"
        raise invalid([errors.Problem(field="input", message=message)])
    upload_id, filename = _input_spec(payload["input"])
    blob = object_key(owner_of(user), upload_id)
    store, blobs = svc.runtime.store, svc.runtime.blobs
    existing = await commands.owned(store, upload_id, user)
    if existing is not None:
        return _replayed(existing, token)
    try:
        size, _ = await blobs.stat(blob)
    except ports.BlobNotFound:
        raise Problem(
            404, "not-found", f"no upload {upload_id}: not uploaded (yet), or swept"
        ) from None
    limit = svc.settings.max_upload_bytes
    if size > limit:
        await blobs.delete(blob)
        raise Problem(413, "too-large", f"the upload is larger than {limit} bytes")
    if await _head(blobs, blob, len(uploads.MAGIC)) != uploads.MAGIC:
        await blobs.delete(blob)
        raise Problem(415, "not-a-pdf", "the upload is not a PDF (it does not start with %PDF-)")
    source = jobs.Input(
        blob=blob, content_type=CONTENT_TYPE, filename=filename, size=size, uri=blobs.url(blob)
    )
    checked = submission.new_job(
        fields,
        types=svc.runtime.types,
        job_id=upload_id,
        user_id=user,
        now=svc.clock(),
        input=source,
        idempotency=token,
    )
    match checked:
        case Failure(problems):
            raise invalid(problems.problems)
        case Success(draft):
            job = await commands.submit_new(store, draft, svc.clock(), svc.on_effect)
            if job is None:  # another request made the job from this upload meanwhile
                raced = await commands.owned(store, upload_id, user)
                if raced is None:
                    raise Problem(409, "conflict", "the upload is being submitted: try again")
                return _replayed(raced, token)
            svc.submitted(job)
            return accepted(job)
    raise AssertionError("unreachable")

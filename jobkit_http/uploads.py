"""PDF uploads: a multipart form streamed to the blob store, checked, never held whole in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
from starlette.datastructures import UploadFile
from starlette.requests import Request

from jobkit import errors, jobs, ports
from jobkit_http.limits import MAX_JSON_DEPTH, too_deep
from jobkit_http.problems import Problem, invalid

CHUNK = 1024 * 1024
FORM_OVERHEAD = 256 * 1024  # the form's fields and boundaries, beyond the file itself
MAGIC = b"%PDF-"
FILE_FIELD = "file"
TEXT_FIELDS = frozenset(
    {
        "instructions",
        "schema",
        "model",
        "priority",
        "queue",
        "runAt",
        "delaySeconds",
        "maxAttempts",
        "metadata",
    }
)
PARAMS = ("instructions", "schema", "model")
MAX_FILENAME = 255


@attrs.frozen(kw_only=True)
class Upload:
    fields: dict[str, str]
    sha256: str
    input: jobs.Input


async def receive_pdf(request: Request, blobs: ports.BlobStore, key: str, max_bytes: int) -> Upload:
    """Parse the form, stream its `file` part to `key`; `415` unless it starts with `%PDF-`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise Problem(
            415,
            "unsupported-media-type",
            "send the PDF as multipart/form-data, in a part named 'file'",
        )
    try:
        form = await request.form(max_files=1, max_fields=len(TEXT_FIELDS) + 1)
    except Problem:
        raise
    except Exception as exc:  # Starlette's parser refuses malformed forms with its own errors
        raise Problem(
            400, "malformed-form", f"the multipart form could not be read: {exc}"
        ) from None
    try:
        problems = [
            errors.Problem(field=name, message="unknown form field")
            for name in sorted(set(form.keys()) - TEXT_FIELDS - {FILE_FIELD})
        ]
        fields: dict[str, str] = {}
        for name in TEXT_FIELDS & set(form.keys()):
            value = form.get(name)
            if not isinstance(value, str):
                problems.append(
                    errors.Problem(field=name, message="must be a text field, not a file")
                )
            else:
                fields[name] = value
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            problems.append(
                errors.Problem(field=FILE_FIELD, message="a PDF file part named 'file' is required")
            )
        if problems or not isinstance(upload, UploadFile):
            raise invalid(problems, "the form is not a valid PDF submission")
        head = await upload.read(len(MAGIC))
        if head != MAGIC:
            raise Problem(415, "not-a-pdf", "the file is not a PDF (it does not start with %PDF-)")
        digest = hashlib.sha256(head)

        async def chunks() -> AsyncIterator[bytes]:
            yield head
            while chunk := await upload.read(CHUNK):
                digest.update(chunk)
                yield chunk

        try:
            size = await blobs.put(key, chunks(), "application/pdf", max_bytes=max_bytes)
        except ports.BlobTooLarge:
            raise Problem(413, "too-large", f"the PDF is larger than {max_bytes} bytes") from None
        filename = safe_name(upload.filename)
    finally:
        await form.close()
    return Upload(
        fields=fields,
        sha256=digest.hexdigest(),
        input=jobs.Input(
            blob=key,
            content_type="application/pdf",
            filename=filename,
            size=size,
            uri=blobs.url(key),
        ),
    )


def safe_name(name: str | None) -> str:
    """Kept only as a label: never part of a path."""
    if not name:
        return "document.pdf"
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable())[:MAX_FILENAME]
    return cleaned or "document.pdf"


def job_request(fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Form text fields -> (submission fields, PDF params), typed as `submission.new_job` wants."""
    problems: list[errors.Problem] = []
    request: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, raw in fields.items():
        target = params if name in PARAMS else request
        if name in {"schema", "metadata"}:
            try:
                target[name] = json.loads(raw)
            except (ValueError, RecursionError):
                problems.append(errors.Problem(field=name, message="must be JSON"))
            else:
                if too_deep(target[name]):
                    message = f"nests deeper than {MAX_JSON_DEPTH} levels"
                    problems.append(errors.Problem(field=name, message=message))
        elif name in {"priority", "maxAttempts"}:
            try:
                target[name] = int(raw)
            except ValueError:
                problems.append(errors.Problem(field=name, message="must be an integer"))
        elif name == "delaySeconds":
            try:
                target[name] = float(raw)
            except ValueError:
                problems.append(errors.Problem(field=name, message="must be a number"))
        else:
            target[name] = raw
    if problems:
        raise invalid(problems)
    return request, params

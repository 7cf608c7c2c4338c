"""The OpenAPI 3.1 document of the API; a test holds it to the route table, route for route."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobkit import listing
from jobkit_http.openapi_schemas import ANY_JSON, INSTANT, SCHEMAS, ref

P = "/api/v1"
JSON = "application/json"
PROBLEM = "application/problem+json"


def problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": ref("Problem")}}}


def body(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": ref(schema)}},
    }
    if headers:
        answer["headers"] = headers
    return answer


AUTH = {
    "401": problem("Missing or invalid bearer token"),
    "403": problem("The token lacks the required scope or role"),
}
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "The job's id (a UUID).",
}
NOT_FOUND = {"404": problem("No such job for this user (another user's job is not revealed)")}
HEADER = {"schema": {"type": "string"}}
ACCEPTED = body("Accepted; poll the status URL", "Accepted", {"Location": HEADER})
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "The same key and body return the first job; another body is 422;"
    " a concurrent twin is 409.",
}


def operation(
    summary: str, responses: dict[str, Any], *, secured: bool = True, **more: Any
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **more}
    if secured:
        op["security"] = [{"bearer": []}]
        op["responses"] = {**responses, **AUTH}
    return op


QUOTA = {
    **problem("Past your quota of submissions per minute or of jobs pending at once"),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before submitting again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def events(schema: str) -> dict[str, Any]:
    return {
        "description": "Server-Sent Events, until the stream ends or you leave",
        "content": {"text/event-stream": {"schema": ref(schema)}},
    }


STREAM_REFUSALS = {
    "422": problem("Invalid query parameters or Last-Event-ID"),
    "429": problem("You hold as many event streams as one user may; Retry-After says when"),
}
LAST_EVENT_ID = [
    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string", "pattern": "^[0-9]*$"}},
    {"name": "lastEventId", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]*$"}},
]

PATHS: dict[str, dict[str, Any]] = {
    f"{P}/jobs": {
        "post": operation(
            "Submit a job",
            {
                "202": ACCEPTED,
                "400": problem("Malformed JSON"),
                "404": problem("No such upload of yours (input.upload)"),
                "409": problem(
                    "A request with this Idempotency-Key is in progress, or the upload was"
                    " submitted already"
                ),
                "413": problem("Body too large, or the upload is larger than the limit"),
                "415": problem("Not application/json, or the upload is not a PDF"),
                "422": problem("Invalid fields, unknown job type, or a reused Idempotency-Key"),
                "429": QUOTA,
            },
            operationId="createJob",
            parameters=[IDEMPOTENCY],
            requestBody={"required": True, "content": {JSON: {"schema": ref("JobSubmission")}}},
        ),
        "get": operation(
            "List your jobs",
            {"200": body("A page of jobs", "JobList"), "422": problem("Invalid query parameters")},
            operationId="listJobs",
            parameters=[
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Comma-separated statuses.",
                },
                {
                    "name": "type",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Comma-separated job types.",
                },
                {"name": "createdFrom", "in": "query", "schema": INSTANT},
                {"name": "createdTo", "in": "query", "schema": INSTANT},
                {
                    "name": "sort",
                    "in": "query",
                    "schema": {"enum": ["createdAt", "-createdAt", "priority", "-priority"]},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": listing.MAX_LIMIT},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
        ),
    },
    f"{P}/pdf-processing": {
        "post": operation(
            "Upload a PDF for analysis",
            {
                "202": ACCEPTED,
                "400": problem("Malformed form"),
                "409": problem("A request with this Idempotency-Key is in progress"),
                "413": problem("The PDF is larger than the limit"),
                "415": problem("Not multipart/form-data, or the file is not a PDF"),
                "422": problem("Invalid fields"),
                "429": QUOTA,
            },
            operationId="createPdfJob",
            parameters=[IDEMPOTENCY],
            requestBody={
                "required": True,
                "content": {"multipart/form-data": {"schema": ref("PdfSubmission")}},
            },
        ),
    },
    f"{P}/uploads": {
        "post": operation(
            "Get a signed URL to upload a large PDF to",
            {
                "201": body("Where and how to upload; valid until expiresAt", "Upload"),
                "400": problem("Malformed JSON"),
                "413": problem("The size is larger than the limit"),
                "415": problem("Not application/json, or not a PDF's content type"),
                "422": problem("Invalid fields"),
                "503": problem("The URL could not be signed"),
            },
            operationId="createUpload",
            requestBody={"required": True, "content": {JSON: {"schema": ref("UploadRequest")}}},
        ),
    },
    f"{P}/uploads/{{owner}}/{{upload_id}}": {
        "put": operation(
            "Upload a file to a signed URL (the embedded default's; on GCP, the bucket's)",
            {
                "201": {"description": "Stored", "content": {JSON: {"schema": ANY_JSON}}},
                "403": problem("The signature does not match, or the URL has expired"),
                "404": problem("Not an upload URL of this service"),
                "409": problem("Already uploaded: ask for a new URL"),
                "413": problem("Larger than the URL allows"),
                "415": problem("Not application/pdf"),
            },
            secured=False,
            operationId="putUpload",
            parameters=[
                {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "upload_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                },
                *(
                    {"name": name, "in": "query", "required": True, "schema": {"type": kind}}
                    for name, kind in (
                        ("expires", "integer"),
                        ("max", "integer"),
                        ("signature", "string"),
                    )
                ),
            ],
            requestBody={
                "required": True,
                "content": {"application/pdf": {"schema": {"type": "string"}}},
            },
        ),
    },
    f"{P}/jobs/{{job_id}}": {
        "get": operation(
            "Get a job",
            {"200": body("The job", "Job"), **NOT_FOUND},
            operationId="getJob",
            parameters=[JOB_ID],
        ),
        "delete": operation(
            "Cancel a job that has not started",
            {
                "200": body("The cancelled job", "Job"),
                **NOT_FOUND,
                "409": problem("The job has started or finished"),
            },
            operationId="cancelJob",
            parameters=[JOB_ID],
        ),
    },
    f"{P}/jobs/{{job_id}}/retry": {
        "put": operation(
            "Retry a failed job now, with its attempts reset",
            {
                "200": body("The re-queued job", "Job"),
                **NOT_FOUND,
                "409": problem("The job has not failed"),
            },
            operationId="retryJob",
            parameters=[JOB_ID],
        ),
    },
    f"{P}/jobs/{{job_id}}/status": {
        "get": operation(
            "Poll a job's status (ETag, Retry-After, long-poll with ?wait=)",
            {
                "200": body("The status", "Status", {"ETag": HEADER, "Retry-After": HEADER}),
                "304": {"description": "Unchanged since the If-None-Match ETag"},
                **NOT_FOUND,
                "422": problem("Invalid query parameters"),
            },
            operationId="getJobStatus",
            parameters=[
                JOB_ID,
                {
                    "name": "wait",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 0, "maximum": 30},
                },
                {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
            ],
        ),
    },
    f"{P}/jobs/{{job_id}}/result": {
        "get": operation(
            "Download the result document",
            {
                "200": {
                    "description": "The result document",
                    "content": {JSON: {"schema": ANY_JSON}},
                },
                **NOT_FOUND,
                "409": problem("The job has not completed"),
            },
            operationId="getJobResult",
            parameters=[JOB_ID],
        ),
    },
    f"{P}/jobs/{{job_id}}/record": {
        "delete": operation(
            "Delete a finished job's record and its files",
            {
                "204": {"description": "Deleted"},
                **NOT_FOUND,
                "409": problem("The job has not finished"),
            },
            operationId="deleteJobRecord",
            parameters=[JOB_ID],
        ),
    },
    f"{P}/jobs/{{job_id}}/events": {
        "get": operation(
            "Follow a job as Server-Sent Events: `status` events (the Status document, `id:` its"
            " version) as it changes, then `end` once it is finished; comments as heartbeats",
            {"200": events("JobEvent"), **NOT_FOUND, **STREAM_REFUSALS},
            operationId="followJob",
            parameters=[JOB_ID, *LAST_EVENT_ID],
        ),
    },
    f"{P}/events": {
        "get": operation(
            "Follow all your jobs as Server-Sent Events: `ready` once watching, `job` events (the"
            " Job document) as they change, `deleted`, and `reset` (load the list again)",
            {"200": events("UserEvent"), **STREAM_REFUSALS},
            operationId="followJobs",
        ),
    },
    "/healthz": {
        "get": operation(
            "Liveness",
            {"200": {"description": "Alive", "content": {JSON: {"schema": ANY_JSON}}}},
            secured=False,
            operationId="healthz",
        )
    },
    "/readyz": {
        "get": operation(
            "Readiness: the job store answers",
            {
                "200": {"description": "Ready", "content": {JSON: {"schema": ANY_JSON}}},
                "503": problem("Not ready"),
            },
            secured=False,
            operationId="readyz",
        )
    },
    "/metrics": {
        "get": operation(
            "Prometheus metrics",
            {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
            secured=False,
            operationId="metrics",
        )
    },
    "/openapi.json": {
        "get": operation(
            "This document",
            {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": ANY_JSON}}}},
            secured=False,
            operationId="openapi",
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "jobkit",
        "version": "1",
        "description": "Asynchronous jobs: submit, poll, fetch results."
        " Errors are RFC 9457 problem documents.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    },
}


async def endpoint(request: Request) -> Response:
    return JSONResponse(DOCUMENT)

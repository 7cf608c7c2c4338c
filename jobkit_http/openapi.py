"""The OpenAPI 3.1 document of the API; a test holds it to the route table, route for route."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobkit import listing, submission
from jobkit_http import openapi_events, views

P = "/api/v1"
JSON = "application/json"
PROBLEM = "application/problem+json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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
ANY_JSON: dict[str, Any] = {}
NULLABLE_STRING = {"type": ["string", "null"]}
INSTANT = {"type": "string", "format": "date-time"}
NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
ERROR = {
    "type": "object",
    "required": ["code", "message", "retryable", "context", "at"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "retryable": {"type": "boolean"},
        "context": {"type": "object"},
        "at": NULLABLE_INSTANT,
    },
}
NULLABLE_ERROR = {"oneOf": [ref("Error"), {"type": "null"}]}
PROGRESS = {
    "oneOf": [
        {
            "type": "object",
            "required": ["current", "total", "message"],
            "properties": {
                "current": {"type": "integer", "minimum": 0},
                "total": {"type": "integer", "minimum": 0},
                "message": {"type": "string"},
            },
        },
        {"type": "null"},
    ]
}
SUBMISSION_PROPERTIES: dict[str, Any] = {
    "type": {"type": "string", "description": "A registered job type, e.g. pdf-analysis."},
    "params": {"type": "object", "description": "The job type's parameters."},
    "priority": {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "description": "Higher runs first.",
    },
    "queue": {"type": "string", "pattern": submission.QUEUE.pattern},
    "runAt": {**INSTANT, "description": "Run no earlier than this instant (with an offset)."},
    "delaySeconds": {"type": "number", "minimum": 0, "maximum": submission.MAX_DELAY_SECONDS},
    "maxAttempts": {"type": "integer", "minimum": 1, "maximum": submission.MAX_ATTEMPTS},
    "metadata": {"type": "object", "description": "Your own data, kept with the job."},
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "Error": ERROR,
    "Links": {
        "type": "object",
        "required": ["jobUrl", "statusUrl", "resultUrl"],
        "properties": {name: {"type": "string"} for name in ("jobUrl", "statusUrl", "resultUrl")},
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "status", "jobUrl", "statusUrl", "resultUrl"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string"},
            "jobUrl": {"type": "string"},
            "statusUrl": {"type": "string"},
            "resultUrl": {"type": "string"},
        },
    },
    "JobSubmission": {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": SUBMISSION_PROPERTIES,
    },
    "HistoryEntry": {
        "type": "object",
        "required": list(views.ENTRY_KEYS),  # every key, null when unset
        "properties": {
            "attempt": {"type": "integer", "minimum": 1},
            "startedAt": INSTANT,
            "endedAt": NULLABLE_INSTANT,
            "outcome": {"enum": ["succeeded", "failed", "stalled", "released", "deferred", None]},
            "error": NULLABLE_ERROR,
            "nextRunAt": NULLABLE_INSTANT,
            "delaySeconds": {"type": ["number", "null"]},
        },
    },
    "Job": {
        "type": "object",
        "required": list(views.FIELDS),
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "userId": {"type": "string"},
            "type": {"type": "string"},
            "status": {"enum": ["pending", "processing", "completed", "failed", "cancelled"]},
            "priority": {"type": "integer"},
            "queue": {"type": "string"},
            "runAt": INSTANT,
            "params": {"type": "object"},
            "input": {
                "type": ["object", "null"],
                "description": "The uploaded document: filename, size, contentType.",
            },
            "result": {
                "type": ["object", "null"],
                "description": "The job type's summary of its result (the document is at"
                " resultUrl).",
            },
            "error": NULLABLE_ERROR,
            "attempts": {"type": "integer", "minimum": 0},
            "maxAttempts": {"type": "integer", "minimum": 1},
            "history": {"type": "array", "items": ref("HistoryEntry")},
            "progress": PROGRESS,
            "leaseExpiresAt": NULLABLE_INSTANT,
            "version": {"type": "integer", "minimum": 1},
            "createdAt": INSTANT,
            "updatedAt": INSTANT,
            "metadata": {"type": "object"},
            "idempotency": {"type": ["object", "null"]},
            "resultUrl": NULLABLE_STRING,
            "links": ref("Links"),
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "nextCursor"],
        "properties": {
            "jobs": {"type": "array", "items": ref("Job")},
            "nextCursor": NULLABLE_STRING,
        },
    },
    "Status": {
        "type": "object",
        "required": list(views.STATUS_FIELDS),
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["pending", "processing", "completed", "failed", "cancelled"]},
            "progress": PROGRESS,
            "attempts": {"type": "integer"},
            "maxAttempts": {"type": "integer"},
            "nextRunAt": NULLABLE_INSTANT,
            "resultUrl": NULLABLE_STRING,
            "error": NULLABLE_ERROR,
            "updatedAt": INSTANT,
            "version": {"type": "integer"},
        },
    },
    "PdfSubmission": {
        "type": "object",
        "required": ["file"],
        "additionalProperties": False,
        "properties": {
            "file": {
                "type": "string",
                "contentMediaType": "application/pdf",
                "description": "The PDF.",
            },
            "instructions": {"type": "string"},
            "schema": {
                "type": "string",
                "description": "A JSON Schema for the answer, as JSON text.",
            },
            "model": {"type": "string"},
            "priority": {"type": "string", "description": "An integer 0..100."},
            "queue": {"type": "string"},
            "runAt": {"type": "string"},
            "delaySeconds": {"type": "string"},
            "maxAttempts": {"type": "string"},
            "metadata": {"type": "string", "description": "A JSON object, as JSON text."},
        },
    },
    "JobEvent": openapi_events.JOB_EVENT,
    "UserEvent": openapi_events.USER_EVENT,
}


def operation(
    summary: str, responses: dict[str, Any], *, secured: bool = True, **more: Any
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **more}
    if secured:
        op["security"] = [{"bearer": []}]
        op["responses"] = {**responses, **AUTH}
    return op


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
                "409": problem("A request with this Idempotency-Key is in progress"),
                "413": problem("Body too large"),
                "415": problem("Not application/json"),
                "422": problem("Invalid fields, unknown job type, or a reused Idempotency-Key"),
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
            },
            operationId="createPdfJob",
            parameters=[IDEMPOTENCY],
            requestBody={
                "required": True,
                "content": {"multipart/form-data": {"schema": ref("PdfSubmission")}},
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

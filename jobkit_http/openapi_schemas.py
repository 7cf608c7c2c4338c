"""The OpenAPI document's schemas: a job, its history entries, its status, errors, problems
and the submissions, each required key taken from the code that serves it."""

from __future__ import annotations

from typing import Any

from jobkit import submission
from jobkit_http import openapi_events, views


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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
    "input": {
        "$ref": "#/components/schemas/UploadInput",
        "description": "A direct upload as the document of a pdf-analysis job.",
    },
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
    "UploadRequest": {
        "type": "object",
        "required": ["size"],
        "additionalProperties": False,
        "properties": {
            "size": {"type": "integer", "minimum": 1, "description": "The file's size in bytes."},
            "contentType": {"const": "application/pdf"},
            "resumable": {
                "type": "boolean",
                "description": "Prefer a resumable upload (Cloud Storage only; the answer says"
                " which protocol to follow).",
            },
        },
    },
    "Upload": {
        "type": "object",
        "required": ["upload", "method", "url", "headers", "resumable", "expiresAt", "maxBytes"],
        "properties": {
            "upload": {
                "type": "string",
                "format": "uuid",
                "description": "Name it in a job's input; it becomes the job's id.",
            },
            "method": {"enum": ["PUT", "POST"]},
            "url": {"type": "string", "description": "Signed: no bearer token goes with it."},
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Send exactly these headers.",
            },
            "resumable": {"type": "boolean"},
            "expiresAt": INSTANT,
            "maxBytes": {"type": "integer"},
        },
    },
    "UploadInput": {
        "type": "object",
        "required": ["upload"],
        "additionalProperties": False,
        "properties": {
            "upload": {"type": "string", "format": "uuid"},
            "filename": {"type": "string", "description": "A label for the document."},
        },
    },
    "JobEvent": openapi_events.JOB_EVENT,
    "UserEvent": openapi_events.USER_EVENT,
}

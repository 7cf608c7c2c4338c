"""The event streams in the OpenAPI document: one schema per stream, describing each event.

An event is the object a Server-Sent Events client reads (`event`, `data`, `id`); `data` is
JSON text, described by `contentMediaType` and `contentSchema`. (OpenAPI 3.1 reads a
`text/event-stream` schema as the schema of one event; 3.2 would call it `itemSchema`.)
"""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _event(name: str, data: dict[str, Any], *, with_id: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "object",
        "required": ["event", "data", *(["id"] if with_id else [])],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }
    if with_id:
        event["properties"]["id"] = {"type": "string", "pattern": "^[0-9]+$"}
    return event


_ID = {"id": {"type": "string", "format": "uuid"}}
_EMPTY = {"type": "object", "maxProperties": 0}
_DELETED = {"type": "object", "required": ["id"], "properties": _ID}

JOB_EVENT = {
    "description": "`status` (the job's status; `id` is its version), `end` once it is"
    " finished, `deleted` if it is deleted meanwhile",
    "oneOf": [
        _event("status", _ref("Status"), with_id=True),
        _event(
            "end",
            {
                "type": "object",
                "required": ["id", "status", "version"],
                "properties": {**_ID, "status": {"type": "string"}, "version": {"type": "integer"}},
            },
        ),
        _event("deleted", _DELETED),
    ],
}

USER_EVENT = {
    "description": "`ready` once the stream watches, `job` (the job as the list shows it) as"
    " a job changes, `deleted`, and `reset` when more changed than the stream kept",
    "oneOf": [
        _event("ready", _EMPTY),
        _event("job", _ref("Job")),
        _event("deleted", _DELETED),
        _event("reset", _EMPTY),
    ],
}

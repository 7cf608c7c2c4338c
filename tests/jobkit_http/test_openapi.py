"""The OpenAPI document the real server serves: exactly the route table, and valid OpenAPI 3.1."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import referencing
import schemathesis
from referencing.jsonschema import DRAFT202012
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.routing import Route

from jobkit_http import views
from jobkit_http.routes import ROUTES
from tests.jobkit.conformance import at, claimed, new
from tests.jobkit_http.server import RunningServer, submit, wait_for
from tests.jobkit_http.sse_client import Stream, read, stream_of

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def routed() -> set[tuple[str, str]]:
    """(path, method) for every route; Starlette adds HEAD to each GET route on its own, and
    the document, like most, leaves that implicit."""
    pairs = set()
    for route in ROUTES:
        assert isinstance(route, Route)
        methods = {method.lower() for method in route.methods or ()}
        if "get" in methods:
            methods.discard("head")
        pairs |= {(route.path, method) for method in methods}
    return pairs


def documented(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {
        (path, method) for path, item in paths.items() for method in item if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_nothing_else(anonymous: httpx.Client) -> None:
    served = anonymous.get("/openapi.json").json()

    assert documented(served) == routed()


def test_operation_ids_are_unique(anonymous: httpx.Client) -> None:
    served = anonymous.get("/openapi.json").json()
    ids = [
        operation["operationId"]
        for item in served["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]

    assert len(ids) == len(set(ids)) == len(routed())


def test_the_document_is_valid_openapi_3_1(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")

    assert schema.raw_schema["openapi"].startswith("3.1.")
    schema.validate()  # against the OpenAPI 3.1 meta-schema; raises on the first problem
    loaded = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation does not load: {result.err()}"
        operation = result.ok()
        loaded.add((operation.path, operation.method.lower()))
    # Schemathesis leaves out the operation that served the document it loaded.
    assert loaded == routed() - {("/openapi.json", "get")}


def test_a_job_document_has_every_key_the_schema_requires(anonymous: httpx.Client) -> None:
    schemas = anonymous.get("/openapi.json").json()["components"]["schemas"]
    job = views.job_view(claimed(new(1), at(1)))  # as the API serves it
    assert set(schemas["Job"]["required"]) == set(job) == set(schemas["Job"]["properties"])
    entry = schemas["HistoryEntry"]
    assert set(entry["required"]) == set(job["history"][0]) == set(entry["properties"])
    assert set(schemas["Status"]["required"]) == set(views.status_view(claimed(new(1), at(1))))


def test_a_jobs_events_keep_to_the_documented_event_schema(
    server: RunningServer, client: httpx.Client
) -> None:
    job_id = submit(client, form={"delaySeconds": 0.5})
    wait_for(client, job_id)
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = schema["/api/v1/jobs/{job_id}/events"]["GET"]
    for last in (None, "1"):  # every version, then a reconnection's
        headers = {**client.headers, **({} if last is None else {"Last-Event-ID": last})}
        case = operation.Case(path_parameters={"job_id": job_id})
        case.call_and_validate(
            headers=dict(headers), checks=[response_schema_conformance], timeout=30
        )


def test_a_users_events_keep_to_the_documented_event_schema(
    anonymous: httpx.Client, client: httpx.Client
) -> None:
    document = anonymous.get("/openapi.json").json()
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        "urn:jobkit", referencing.Resource.from_contents(document, DRAFT202012)
    )
    with client.stream("GET", "/api/v1/events") as response:
        stream = read(stream_of(response), stop=lambda s: len(s.events) == 1)
        submit(client)

        def finished(s: Stream) -> bool:
            return s.events[-1].name == "job" and s.events[-1].data["status"] == "completed"

        read(stream, stop=finished)
    assert stream.events[0].name == "ready"
    branches = document["components"]["schemas"]["UserEvent"]["oneOf"]
    for event in stream.events:
        raw = {"event": event.name, "data": json.dumps(event.data)}
        jsonschema.validate(
            raw, {"$ref": "urn:jobkit#/components/schemas/UserEvent"}, registry=registry
        )
        (branch,) = [b for b in branches if b["properties"]["event"]["const"] == event.name]
        content = branch["properties"]["data"]["contentSchema"]
        if "$ref" in content:
            content = {"$ref": "urn:jobkit" + content["$ref"]}
        jsonschema.validate(event.data, content, registry=registry)

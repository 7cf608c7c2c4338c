"""The OpenAPI document the real server serves: exactly the route table, and valid OpenAPI 3.1."""

from __future__ import annotations

import httpx
import schemathesis
from schemathesis.core.result import Ok
from starlette.routing import Route

from jobkit_http import views
from jobkit_http.routes import ROUTES
from tests.jobkit.conformance import at, claimed, new
from tests.jobkit_http.server import RunningServer

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

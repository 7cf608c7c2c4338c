"""Schemathesis against the real server: requests generated from the served OpenAPI document
never meet a server error, and every answer matches what the document says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.jobkit_http.server import CORRUPT_PDF, RunningServer, serve, submit, wait_for

FUZZER = "fuzzer"
LONGEST_WAIT = 0.2
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve(tmp_path_factory.mktemp("fuzzed")) as running:
        yield running


@pytest.fixture(scope="module")
def known_jobs(fuzzed: RunningServer) -> list[str]:
    """Jobs of the fuzzing user in each state, so generated requests also meet real jobs."""
    with fuzzed.client(FUZZER) as client:
        completed = submit(client)
        failed = submit(client, CORRUPT_PDF)
        pending = submit(client, form={"delaySeconds": 3600, "priority": 80})
        for job_id in (completed, failed):
            wait_for(client, job_id)
    return [completed, failed, pending]


@pytest.fixture(scope="module")
def api_schema(fuzzed: RunningServer, known_jobs: list[str]) -> BaseSchema:
    config = SchemathesisConfig()
    project = config.projects.get_default()
    # Stateful runs are left out: they would chain calls for minutes; the rest is bounded.
    project.phases.update(phases=["examples", "coverage", "fuzzing"])
    project.generation.update(max_examples=MAX_EXAMPLES, database="none")
    return schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json", config=config)


@pytest.fixture(autouse=True)
def _node_id_shim(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's `from_fixture` reads `Function._nodeid` (to label each operation),
    # an attribute pytest 9 no longer has; pytest itself never reads it, so this is inert.
    request.node._nodeid = request.node.nodeid


@schemathesis.serializer("application/pdf")
def _pdf_bytes(ctx: Any, value: Any) -> bytes:
    """A direct upload's body (`PUT /uploads/...`): the generated text, as bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


# A user's event stream stays open for as long as the client wants it (tests/jobkit_http/
# test_streams.py covers it); a job's ends once the job is finished (see below).
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/events")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its curl anyway
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_to_its_document(
    case: Case[Any], fuzzed: RunningServer, known_jobs: list[str]
) -> None:
    job_id = case.path_parameters.get("job_id") if case.path_parameters else None
    if isinstance(job_id, str):
        try:
            chosen = uuid.UUID(job_id).int % (len(known_jobs) + 1)
        except ValueError:
            pass  # a malformed id: keep it, it must be a 404
        else:  # a well-formed id: mostly one of the known jobs, sometimes an unknown one
            if chosen < len(known_jobs):
                case.path_parameters["job_id"] = known_jobs[chosen]
            if case.path.endswith("/events"):  # a finished job's stream ends: follow one of those
                case.path_parameters["job_id"] = known_jobs[chosen % 2]
    if case.query and "wait" in case.query:
        # A long poll on an unchanging job holds for `wait` seconds (up to 30): correct, and
        # covered in test_reads; here it would only make the run slow.
        wait = case.query["wait"]
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > LONGEST_WAIT:
            case.query["wait"] = LONGEST_WAIT

    case.call_and_validate(
        headers=fuzzed.headers(FUZZER),
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )

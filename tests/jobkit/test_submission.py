"""Submission validation: one test per rule, problems reported together, type defaults."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap
from returns.result import Failure, Result, Success

from jobkit import errors, instants, jobs, registry, submission
from tests.jobkit import strategies

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DOCUMENT = jobs.Input(blob="inputs/job-1/document.pdf", content_type="application/pdf")
QUEUE_RULE = "must match ^[a-z0-9][a-z0-9_-]{0,62}$"
NOT_AN_INSTANT = "must be an ISO 8601 instant with an offset, e.g. 2030-01-01T09:00:00Z"
NOT_JSON = "must hold only finite JSON values"


def only_pages(params: Mapping[str, Any]) -> Result[PMap[str, Any], errors.Invalid]:
    """A job type's own validator: `pages` is a positive integer; it adds a default language."""
    problems = [
        errors.Problem(field=name, message="unknown parameter")
        for name in sorted(set(params) - {"pages"})
    ]
    pages = params.get("pages")
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        problems.insert(0, errors.Problem(field="pages", message="must be a positive integer"))
    if problems:
        return Failure(errors.Invalid(problems=tuple(problems)))
    return Success(pmap({"pages": pages, "language": "en"}))


PAGES = registry.JobType(
    name="pages", pipeline=strategies.ECHO.pipeline, validate_params=only_pages
)
TYPES = registry.of([strategies.ECHO, strategies.DOCUMENT, PAGES])


def submit(
    request: Mapping[str, Any],
    *,
    input: jobs.Input | None = None,  # noqa: A002 - the JSON name
    accepted: frozenset[str] = submission.ACCEPTED,
) -> Result[jobs.Job, errors.Invalid]:
    return submission.new_job(
        request,
        types=TYPES,
        job_id="job-1",
        user_id="user-1",
        now=T0,
        input=input,
        accepted=accepted,
    )


def refused(*problems: tuple[str, str]) -> Result[jobs.Job, errors.Invalid]:
    return Failure(
        errors.Invalid(problems=tuple(errors.Problem(field=f, message=m) for f, m in problems))
    )


def draft(**changes: Any) -> jobs.Job:
    """The draft an `echo` submission with nothing but its type makes, with `changes`."""
    values: dict[str, Any] = {
        "job_id": "job-1",
        "user_id": "user-1",
        "type_name": "echo",
        "params": pmap(),
        "priority": 20,
        "queue": "echoes",
        "run_at": T0,
        "max_attempts": 3,
        "metadata": pmap(),
        "input": None,
        "now": T0,
    }
    return jobs.draft(**{**values, **changes})


# -- what a valid submission makes --------------------------------------------


def test_defaults_come_from_the_job_type() -> None:
    assert submit({"type": "echo"}) == Success(draft())


def test_defaults_of_a_job_type_that_sets_none() -> None:
    assert submit({"type": "document"}, input=DOCUMENT) == Success(
        draft(
            type_name="document",
            priority=50,
            queue="default",
            max_attempts=5,
            input=DOCUMENT,
        )
    )


def test_given_values_override_the_defaults() -> None:
    request = {
        "type": "echo",
        "params": {"pages": [1, 2]},
        "priority": 0,
        "queue": "batch-2_x",
        "delaySeconds": 90.5,
        "maxAttempts": 100,
        "metadata": {"team": "docs"},
    }
    assert submit(request) == Success(
        draft(
            params={"pages": [1, 2]},
            priority=0,
            queue="batch-2_x",
            run_at=instants.plus(T0, 90.5),
            max_attempts=100,
            metadata={"team": "docs"},
        )
    )


def test_a_new_job_is_a_draft_not_yet_submitted() -> None:
    job = submit({"type": "echo"}).unwrap()
    assert (jobs.status_or_none(job), jobs.version(job), jobs.history(job)) == (None, 0, pvector())


# -- unknown fields ------------------------------------------------------------


def test_unknown_fields_are_each_reported_in_name_order() -> None:
    request = {"type": "echo", "zeta": 1, "status": "completed", "alpha": None}
    assert submit(request) == refused(
        ("alpha", "unknown field"), ("status", "unknown field"), ("zeta", "unknown field")
    )


def test_an_endpoint_may_accept_fields_it_handles_itself() -> None:
    request = {"type": "echo", "callbackUrl": "https://example.com/hook"}
    assert submit(request, accepted=submission.ACCEPTED | {"callbackUrl"}) == Success(draft())


# -- type ----------------------------------------------------------------------


@pytest.mark.parametrize("request_", [{}, {"type": None}, {"type": 7}, {"type": ["echo"]}])
def test_type_is_required_and_a_string(request_: dict[str, Any]) -> None:
    assert submit(request_) == refused(("type", "is required and must be a string"))


def test_an_unknown_type_names_the_known_ones() -> None:
    assert submit({"type": "nope", "params": {"pages": 0}}) == refused(
        ("type", "unknown job type 'nope' (known: document, echo, pages)")
    )


# -- priority ------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 100])
def test_priority_bounds_are_accepted(value: int) -> None:
    assert submit({"type": "echo", "priority": value}) == Success(draft(priority=value))


@pytest.mark.parametrize("value", [-1, 101, 10**6])
def test_priority_out_of_range(value: int) -> None:
    assert submit({"type": "echo", "priority": value}) == refused(
        ("priority", "must be within 0..100")
    )


@pytest.mark.parametrize("value", ["5", 5.0, True, False, None, [5]])
def test_priority_must_be_an_integer_and_not_a_bool(value: object) -> None:
    assert submit({"type": "echo", "priority": value}) == refused(
        ("priority", "must be an integer")
    )


# -- queue ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "0", "a-b_c", "z" * 63])
def test_queue_names_that_fit_the_pattern(value: str) -> None:
    assert submit({"type": "echo", "queue": value}) == Success(draft(queue=value))


@pytest.mark.parametrize(
    "value", ["", "Upper", "-lead", "_lead", "has space", "q/x", "z" * 64, 7, None]
)
def test_queue_names_that_do_not(value: object) -> None:
    assert submit({"type": "echo", "queue": value}) == refused(("queue", QUEUE_RULE))


def test_a_queue_name_with_a_trailing_newline_is_refused() -> None:
    # `$` also matches before a final newline; the pattern must anchor at the very end.
    assert submit({"type": "echo", "queue": "jobs\n"}) == refused(("queue", QUEUE_RULE))


# -- runAt and delaySeconds ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-06-01T12:00:00Z", datetime(2030, 6, 1, 12, tzinfo=UTC)),
        ("2030-06-01T14:00:00+02:00", datetime(2030, 6, 1, 12, tzinfo=UTC)),
        ("2030-06-01T12:00:00.250000+00:00", datetime(2030, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2020-01-01T00:00:00Z", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_run_at_is_an_instant_with_an_offset(text: str, expected: datetime) -> None:
    assert submit({"type": "echo", "runAt": text}) == Success(draft(run_at=expected))


@pytest.mark.parametrize(
    "value", ["2030-06-01T12:00:00", "2030-06-01", "tomorrow", "", 1_900_000_000, None]
)
def test_run_at_without_an_offset_or_not_an_instant(value: object) -> None:
    assert submit({"type": "echo", "runAt": value}) == refused(("runAt", NOT_AN_INSTANT))


@pytest.mark.parametrize("delay", [0, 10, -1, "x"])
def test_run_at_and_delay_seconds_together(delay: object) -> None:
    request = {"type": "echo", "runAt": "2030-06-01T12:00:00Z", "delaySeconds": delay}
    assert submit(request) == refused(("runAt", "give runAt or delaySeconds, not both"))


@pytest.mark.parametrize("delay", [0, 0.5, 90, submission.MAX_DELAY_SECONDS])
def test_delay_seconds_within_range(delay: float) -> None:
    assert submit({"type": "echo", "delaySeconds": delay}) == Success(
        draft(run_at=instants.plus(T0, delay))
    )


@pytest.mark.parametrize("delay", [-1, -0.001, submission.MAX_DELAY_SECONDS + 1])
def test_delay_seconds_out_of_range(delay: float) -> None:
    assert submit({"type": "echo", "delaySeconds": delay}) == refused(
        ("delaySeconds", "must be within 0..31622400")
    )


@pytest.mark.parametrize("delay", ["10", True, None, math.nan, math.inf, -math.inf, [1]])
def test_delay_seconds_must_be_a_finite_number(delay: object) -> None:
    assert submit({"type": "echo", "delaySeconds": delay}) == refused(
        ("delaySeconds", "must be a number")
    )


# -- maxAttempts ---------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 100])
def test_max_attempts_bounds_are_accepted(value: int) -> None:
    assert submit({"type": "echo", "maxAttempts": value}) == Success(draft(max_attempts=value))


@pytest.mark.parametrize("value", [0, -3, 101])
def test_max_attempts_out_of_range(value: int) -> None:
    assert submit({"type": "echo", "maxAttempts": value}) == refused(
        ("maxAttempts", "must be within 1..100")
    )


@pytest.mark.parametrize("value", ["3", 3.0, True, None])
def test_max_attempts_must_be_an_integer(value: object) -> None:
    assert submit({"type": "echo", "maxAttempts": value}) == refused(
        ("maxAttempts", "must be an integer")
    )


# -- params and metadata: objects of plain JSON, bounded in size ----------------

NOT_JSON_VALUES = [
    pytest.param({"x": math.nan}, id="nan"),
    pytest.param({"x": [math.inf]}, id="infinity"),
    pytest.param({"x": object()}, id="object"),
    pytest.param({"x": b"bytes"}, id="bytes"),
    pytest.param({"x": {1, 2}}, id="set"),
    pytest.param({"x": T0}, id="datetime"),
    pytest.param({1: "x"}, id="non-string key"),
]


@pytest.mark.parametrize("field", ["params", "metadata"])
@pytest.mark.parametrize("value", [[], ["a"], "x", 3, None])
def test_params_and_metadata_must_be_objects(field: str, value: object) -> None:
    assert submit({"type": "echo", field: value}) == refused((field, "must be an object"))


@pytest.mark.parametrize("field", ["params", "metadata"])
@pytest.mark.parametrize("value", NOT_JSON_VALUES)
def test_params_and_metadata_must_hold_plain_json(field: str, value: dict[Any, Any]) -> None:
    assert submit({"type": "echo", field: value}) == refused((field, NOT_JSON))


@pytest.mark.parametrize(
    ("field", "limit"),
    [("params", submission.MAX_PARAMS_BYTES), ("metadata", submission.MAX_METADATA_BYTES)],
)
def test_params_and_metadata_are_bounded_in_encoded_size(field: str, limit: int) -> None:
    overhead = len('{"k":""}')
    fits = {"k": "x" * (limit - overhead)}
    assert submit({"type": "echo", field: fits}) == Success(draft(**{field: fits}))
    too_big = {"k": "x" * (limit - overhead + 1)}
    assert submit({"type": "echo", field: too_big}) == refused(
        (field, f"is {limit + 1} bytes; at most {limit}")
    )


def test_metadata_holds_at_most_64_keys() -> None:
    most = {f"k{i}": i for i in range(64)}
    assert submit({"type": "echo", "metadata": most}) == Success(draft(metadata=most))
    assert submit({"type": "echo", "metadata": {**most, "one-more": 0}}) == refused(
        ("metadata", "at most 64 keys")
    )


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_metadata_keys_are_1_to_128_characters(key: str) -> None:
    assert submit({"type": "echo", "metadata": {"ok": 1, key: 2}}) == refused(
        ("metadata", "keys must be 1..128 characters")
    )


def test_a_128_character_metadata_key_is_accepted_and_bad_keys_are_reported_once() -> None:
    longest = {"k" * 128: 1}
    assert submit({"type": "echo", "metadata": longest}) == Success(draft(metadata=longest))
    many = {f"k{i}": i for i in range(65)} | {"": 0, "x" * 200: 1}
    assert submit({"type": "echo", "metadata": many}) == refused(
        ("metadata", "at most 64 keys"), ("metadata", "keys must be 1..128 characters")
    )


# -- the job type's own rules --------------------------------------------------


def test_the_job_types_params_problems_are_prefixed_with_params() -> None:
    assert submit({"type": "pages", "params": {"pages": 0, "colour": "red"}}) == refused(
        ("params/pages", "must be a positive integer"), ("params/colour", "unknown parameter")
    )


def test_the_job_types_checked_params_are_the_ones_kept() -> None:
    job = submit({"type": "pages", "params": {"pages": 3}}).unwrap()
    assert jobs.params(job) == pmap({"pages": 3, "language": "en"})


def test_the_job_types_validator_only_sees_an_object() -> None:
    assert submit({"type": "pages", "params": ["pages"]}) == refused(
        ("params", "must be an object")
    )


def test_a_job_type_that_needs_a_document() -> None:
    assert submit({"type": "document"}) == refused(
        ("input", "job type 'document' needs a document")
    )
    assert jobs.input(submit({"type": "document"}, input=DOCUMENT).unwrap()) == DOCUMENT


# -- every problem at once -----------------------------------------------------


def test_every_problem_is_reported_not_just_the_first() -> None:
    request = {
        "type": "pages",
        "extra": 1,
        "params": {"pages": -1},
        "priority": 500,
        "maxAttempts": "3",
        "queue": "Bad",
        "delaySeconds": -5,
        "metadata": {"": 1},
    }
    assert submit(request) == refused(
        ("extra", "unknown field"),
        ("params/pages", "must be a positive integer"),
        ("priority", "must be within 0..100"),
        ("maxAttempts", "must be an integer"),
        ("queue", QUEUE_RULE),
        ("delaySeconds", "must be within 0..31622400"),
        ("metadata", "keys must be 1..128 characters"),
    )


def test_a_missing_type_does_not_hide_other_problems() -> None:
    assert submit({"priority": "high", "runAt": "soon", "input": "x"}) == refused(
        ("input", "unknown field"),
        ("type", "is required and must be a string"),
        ("priority", "must be an integer"),
        ("runAt", NOT_AN_INSTANT),
    )


# -- never raises, and whatever it accepts is within bounds -------------------

requests = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["echo", "pages", "document", "nope"]) | strategies.json_values,
        "params": strategies.json_objects() | strategies.json_values,
        "priority": st.integers(min_value=-5, max_value=105) | strategies.json_values,
        "queue": strategies.queues | strategies.json_values,
        "runAt": strategies.utc_datetimes().map(instants.format) | strategies.json_values,
        "delaySeconds": st.floats(min_value=-10, max_value=1e8) | strategies.json_values,
        "maxAttempts": st.integers(min_value=-1, max_value=102) | strategies.json_values,
        "metadata": strategies.json_objects() | strategies.json_values,
        "unknown": strategies.json_values,
    },
)


@given(requests, st.none() | st.just(DOCUMENT))
def test_any_json_request_is_accepted_within_bounds_or_refused_with_reasons(
    request: dict[str, Any], document: jobs.Input | None
) -> None:
    match submit(request, input=document):
        case Success(job):
            assert jobs.status_or_none(job) is None
            assert jobs.type_name(job) in registry.names(TYPES)
            assert 0 <= jobs.priority(job) <= 100
            assert 1 <= jobs.max_attempts(job) <= submission.MAX_ATTEMPTS
            assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", jobs.queue(job))
            assert "unknown" not in request
        case Failure(invalid):
            assert invalid.problems

"""Valid submissions of a job type and the drafts `submission.new_job` makes of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from returns.result import Failure

from jobkit import instants, jobs, pipeline, registry, submission
from jobkit.testing.strategies import _values as values

Types = registry.JobType | registry.Registry

job_ids = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8).map(lambda s: f"job-{s}")
user_ids = st.sampled_from(("user-1", "user-2", "service"))
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
queues = st.builds(
    "{}{}".format, st.sampled_from(_LOWER), st.text(alphabet=_LOWER + "_-", max_size=62)
)


def as_registry(types: Types) -> registry.Registry:
    return registry.of([types]) if isinstance(types, registry.JobType) else types


def _params_for(job_type: registry.JobType) -> st.SearchStrategy[Mapping[str, Any]]:
    if job_type.validate_params is registry.accept_any:
        return values.json_objects()
    return st.just({})  # the defaults: a type that needs params must say which


@st.composite
def submissions(
    draw: st.DrawFn,
    types: Types,
    now: datetime,
    params: st.SearchStrategy[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A request body `submission.new_job` accepts at `now` for a type of `types`.

    `params` draws the job's parameters, sent every time; without it, a type that
    accepts any params sometimes gets a JSON object, and other types none (their
    defaults apply).
    """
    job_type = draw(
        st.sampled_from(sorted(as_registry(types).types.values(), key=lambda t: t.name))
    )
    request: dict[str, Any] = {"type": job_type.name}
    if params is not None:
        request["params"] = draw(params)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "params": _params_for(job_type),
        "priority": st.integers(min_value=0, max_value=100),
        "queue": queues,
        "maxAttempts": st.integers(min_value=1, max_value=4),
        "metadata": values.json_objects(),
    }
    for name, drawn in optional.items():
        if name not in request and draw(st.booleans()):
            request[name] = draw(drawn)
    match draw(st.sampled_from(("now", "delay", "runAt"))):
        case "delay":
            request["delaySeconds"] = draw(
                st.integers(0, 3600) | st.floats(min_value=0.0, max_value=3600.0)
            )
        case "runAt":
            offset = timezone(timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
            at = instants.plus(now, draw(st.floats(min_value=-3600.0, max_value=3600.0)))
            request["runAt"] = at.astimezone(offset).isoformat()
    return request


@st.composite
def documents(draw: st.DrawFn, job_id: str) -> jobs.Input:
    """An uploaded input document, as the API records it in a job's `input`."""
    return jobs.Input(
        blob=pipeline.input_key(job_id, "pdf"),
        content_type="application/pdf",
        filename=draw(st.text(min_size=1, max_size=20)) + ".pdf",
        size=draw(st.integers(min_value=0, max_value=50 * 2**20)),
    )


@st.composite
def drafts(
    draw: st.DrawFn,
    types: Types,
    params: st.SearchStrategy[Mapping[str, Any]] | None = None,
    inputs: Callable[[str], st.SearchStrategy[jobs.Input]] = documents,
) -> jobs.Job:
    """A job not yet submitted, made by `submission.new_job` from `submissions`; it has an
    input from `inputs(job_id)` when its type needs one, and sometimes when not."""
    now = draw(values.utc_datetimes())
    job_id = draw(job_ids)
    request = draw(submissions(types, now, params))
    job_type = registry.get(as_registry(types), request["type"])
    document = None
    if job_type.input_required or draw(st.booleans()):
        document = draw(inputs(job_id))
    made = submission.new_job(
        request,
        types=as_registry(types),
        job_id=job_id,
        user_id=draw(user_ids),
        now=now,
        input=document,
    )
    if isinstance(made, Failure):
        refused = made.failure().message
        raise ValueError(f"{job_type.name} refuses a drawn submission (check `params`): {refused}")
    draft: jobs.Job = made.unwrap()
    return draft

"""The embedded runtime's own helpers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import jobs, pipeline, registry
from jobkit.local import Runtime
from jobkit.status import Status


def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion(result={"priority": jobs.priority(job)}))


def test_submit_many_stores_the_valid_requests_and_reports_the_invalid(tmp_path: Path) -> None:
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])
    requests: list[dict[str, Any]] = [
        {"type": "noop"},
        {"type": "noop", "colour": "red"},  # an unknown field
        {"type": "nope"},  # an unknown type
        {"type": "noop", "priority": 90, "metadata": {"batch": 7}},
    ]

    async def main() -> None:
        async with Runtime(tmp_path, types=types) as rt:
            outcomes = await rt.submit_many(requests, user_id="loader")
            assert [type(outcome) for outcome in outcomes] == [Success, Failure, Failure, Success]
            refused = outcomes[1].failure()
            assert [(p.field, p.message) for p in refused.problems] == [("colour", "unknown field")]
            first, last = outcomes[0].unwrap(), outcomes[3].unwrap()
            assert jobs.id(first) != jobs.id(last)
            for job in (first, last):
                stored = await rt.get(jobs.id(job))
                assert stored == job
                assert (jobs.status(job), jobs.user_id(job)) == (Status.PENDING, "loader")
            assert jobs.metadata(last) == pmap({"batch": 7})
            assert await rt.submit_many([]) == []
            assert await rt.drain() == 2
            done = await rt.get(jobs.id(last))
            assert done is not None
            assert jobs.result(done) == pmap({"priority": 90})

    asyncio.run(main())

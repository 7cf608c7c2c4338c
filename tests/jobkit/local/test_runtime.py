"""The embedded runtime's own helpers."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import jobs, pipeline, registry
from jobkit.local import Runtime, runtime
from jobkit.status import Status


def test_new_ids_are_version_4_uuids_in_their_usual_text() -> None:
    ids = [runtime.new_id() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)
    assert {text[19] for text in ids} == set("89ab")  # every variant digit turns up


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    runtime.new_id()  # the parent now holds ids made but not handed out
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.close(reader)
        os.write(writer, " ".join(runtime.new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {runtime.new_id() for _ in range(300)}  # beyond what one read made
    assert len(child) == 3
    assert not child & parent


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

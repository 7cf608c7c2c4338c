"""The embedded runtime's own helpers, and the runtime on stores it is given."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import errors, jobs, pipeline, registry
from jobkit.local import FileBlobStore, Runtime, SqliteJobStore
from jobkit.status import Status
from jobkit.testing import MemoryJobStore


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


def test_a_runtime_runs_on_the_stores_it_is_given(tmp_path: Path) -> None:
    """No folder: the jobs in the reference store, the files in a folder of the caller's; the
    runtime opens what it is given (a context manager) and closes it."""
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])
    store = MemoryJobStore()
    blobs = FileBlobStore(tmp_path / "files")

    async def main() -> None:
        async with Runtime(store=store, blobs=blobs, types=types) as rt:
            assert rt.folder is None
            job = (await rt.submit({"type": "noop"}, document=b"%PDF-")).unwrap()
            assert store.get_now(jobs.id(job)) == job
            assert await rt.drain() == 1
            await rt.ready()
        sqlite = SqliteJobStore(tmp_path / "given.db")
        async with Runtime(store=sqlite, blobs=blobs, types=types) as rt:
            assert await rt.submit_many([{"type": "noop"}]) != []
        with pytest.raises(errors.JobkitError, match="not open"):
            await sqlite.get("x")  # the runtime closed it

    asyncio.run(main())
    assert list((tmp_path / "files").rglob("document.*"))
    assert not (tmp_path / "jobs.db").exists()


def test_a_runtime_needs_a_folder_or_both_stores() -> None:
    with pytest.raises(errors.ConfigurationError, match="folder"):
        Runtime(store=MemoryJobStore())
